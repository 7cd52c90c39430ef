"""Display filters for the ECG paper (numpy/scipy). They change only what is drawn:
the models always see `engine.preprocess`'s pipeline, never these.

All filters are zero-phase (forward-backward) so waves are not shifted in time.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

log = logging.getLogger(__name__)

BASELINE_CHOICES_HZ: tuple[float | None, ...] = (None, 0.05, 0.5)
LOWPASS_CHOICES_HZ: tuple[float | None, ...] = (None, 40.0)
NOTCH_CHOICES_HZ: tuple[float | None, ...] = (None, 50.0, 60.0)


@dataclass(frozen=True)
class DisplayFilters:
    """Which display filters are on. `None` means off.

    Attributes:
        baseline_hz: high-pass corner (0.05 or 0.5 Hz) against baseline wander.
        lowpass_hz: low-pass corner (40 Hz) against muscle noise.
        notch_hz: mains notch (50 or 60 Hz).
    """

    baseline_hz: float | None = None
    lowpass_hz: float | None = None
    notch_hz: float | None = None

    @property
    def active(self) -> bool:
        return any(v is not None for v in (self.baseline_hz, self.lowpass_hz, self.notch_hz))


def filter_label(applied: list[str]) -> str:
    """Human label of the filters actually applied (the labels `apply_display_filters`
    returns), e.g. "HP 0.5 Hz, LP 40 Hz"; "no filter" when none was."""
    return ", ".join(applied) if applied else "no filter"


def apply_display_filters(signal: np.ndarray, fs: float,
                          filters: DisplayFilters) -> tuple[np.ndarray, list[str]]:
    """Filter ECG samples for display.

    Args:
        signal: float `[n_leads, n_samples]` in mV.
        fs: sampling rate, Hz.
        filters: which filters to apply.
    Returns:
        (filtered float32 `[n_leads, n_samples]` in mV, labels of the filters applied).
        A filter whose corner is at or above the Nyquist frequency (e.g. a 50 Hz
        notch on a 100 Hz record) is skipped and labelled "n/a".
    """
    x = np.asarray(signal, dtype=np.float64)
    labels: list[str] = []
    if not filters.active or x.shape[-1] < 16:
        return np.asarray(signal, dtype=np.float32), labels
    from scipy import signal as sps  # here: ~1.6 s to import, needed only once a filter is on

    nyq = fs / 2.0
    pad = int(min(x.shape[-1] - 1, 3 * fs))
    if filters.baseline_hz is not None:
        sos = sps.butter(2, filters.baseline_hz / nyq, btype="highpass", output="sos")
        x = sps.sosfiltfilt(sos, x, axis=-1, padlen=pad)
        labels.append(f"HP {filters.baseline_hz:g} Hz")
    if filters.lowpass_hz is not None:
        if filters.lowpass_hz < nyq * 0.98:
            sos = sps.butter(4, filters.lowpass_hz / nyq, btype="lowpass", output="sos")
            x = sps.sosfiltfilt(sos, x, axis=-1, padlen=pad)
            labels.append(f"LP {filters.lowpass_hz:g} Hz")
        else:
            labels.append(f"LP {filters.lowpass_hz:g} Hz n/a at {fs:g} Hz")
    if filters.notch_hz is not None:
        if filters.notch_hz < nyq * 0.98:
            b, a = sps.iirnotch(filters.notch_hz, Q=30.0, fs=fs)
            x = sps.filtfilt(b, a, x, axis=-1, padlen=pad)
            labels.append(f"notch {filters.notch_hz:g} Hz")
        else:
            labels.append(f"notch {filters.notch_hz:g} Hz n/a at {fs:g} Hz")
    return x.astype(np.float32), labels
