"""The device's own measurements beside ours.

`device_values(meta)` gives a record's device measurements in the computed keys
(`engine.measure.GLOBAL_KEYS`): `meta["device_measurements"]` where the reader
provides it (MUSE, Philips, HL7 aECG), else the recognised names of a DICOM
waveform's `meta["measurements"]` list. `differences` compares them with ours;
QTc is compared with our Bazett QTc, the correction carts report as their main
one (GE QTCorrected and Philips qtcb are Bazett; see engine.io.ecg_common), so a
different formula is not mistaken for a different measurement.
"""

from __future__ import annotations

from typing import Any

from engine.measure.result import EcgMeasurements

#: The formula device QTc values are compared with.
DEVICE_QTC_FORMULA: str = "bazett"

#: Device measurement names (DICOM / vendor wording, lower case) -> computed key.
DEVICE_NAMES: dict[str, str] = {
    "rr interval": "rr_ms", "pr interval": "pr_ms", "qrs duration": "qrs_ms",
    "qt interval": "qt_ms", "qtc interval": "qtc_ms", "p axis": "p_axis_deg",
    "qrs axis": "qrs_axis_deg", "t axis": "t_axis_deg", "heart rate": "hr_bpm",
    "ventricular rate": "hr_bpm", "p duration": "p_ms",
}


def device_values(meta: dict[str, Any]) -> dict[str, float]:
    """Device values by computed key (a 0 from a DICOM list is "not measured" and left out)."""
    dev = meta.get("device_measurements")
    if isinstance(dev, dict):
        return {k: float(v) for k, v in dev.items() if isinstance(v, (int, float))}
    out: dict[str, float] = {}
    for m in meta.get("measurements") or []:
        if not isinstance(m, dict):
            continue
        key = DEVICE_NAMES.get(str(m.get("name", "")).strip().lower())
        v = m.get("value")
        if key and isinstance(v, (int, float)) and v != 0 and key not in out:
            out[key] = float(v)
    return out


def comparable_value(m: EcgMeasurements, key: str) -> float | None:
    """Our value to set beside the device's `key`: Bazett QTc for qtc_ms, else ours."""
    if key == "qtc_ms":
        return m.qtc_all.get(DEVICE_QTC_FORMULA)
    return m.values.get(key)


def differences(m: EcgMeasurements, device: dict[str, float]) -> dict[str, float]:
    """key -> ours - device (ms, bpm, degrees wrapped to [-180, 180)) where both exist."""
    out = {}
    for key, d in device.items():
        v = comparable_value(m, key)
        if v is None:
            continue
        diff = v - d
        if key.endswith("_deg"):
            diff = (diff + 180.0) % 360.0 - 180.0
        out[key] = round(diff, 1)
    return out
