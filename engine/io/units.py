"""Voltage units to millivolts, shared by the WFDB and DICOM readers."""

from __future__ import annotations

_TO_MV: dict[str, float] = {
    "mv": 1.0, "millivolt": 1.0, "millivolts": 1.0,
    "uv": 1e-3, "µv": 1e-3, "μv": 1e-3, "microvolt": 1e-3, "microvolts": 1e-3,
    "nv": 1e-6, "nanovolt": 1e-6, "nanovolts": 1e-6,
    "v": 1e3, "volt": 1e3, "volts": 1e3,
}


def mv_factor(units: str | None) -> float | None:
    """Factor that converts a value in `units` to millivolts, or None if not a voltage.

    An empty or missing unit means mV (the WFDB default). Matching ignores case,
    so "mv", "mV" and "MV" are all millivolts (no ECG is recorded in megavolts).
    """
    if units is None or not str(units).strip():
        return 1.0
    return _TO_MV.get(str(units).strip().lower())
