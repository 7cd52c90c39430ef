"""Signal conditioning for measurement: one internal rate, zero-phase filters.

Every record is brought to `FS_HZ` (500 Hz, the rate IEC 60601-2-25 assumes for
interval measurement) with `engine.preprocess.filters.resample`, then
zero-phase band-limited: a 0.5 Hz high-pass (2nd-order Butterworth run forward
and backward, no phase shift, so ST levels and wave timing are preserved as the
AHA 2007 recommendations ask of a zero-phase filter) and a 100 Hz low-pass.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

#: Internal sampling rate of every measurement (Hz).
FS_HZ: float = 500.0
#: High-pass corner (Hz) of the baseline-wander filter (zero phase).
HIGHPASS_HZ: float = 0.5
#: Low-pass corner (Hz) of the measurement signal (zero phase).
LOWPASS_HZ: float = 100.0


@lru_cache(maxsize=8)
def _sos(kind: str, corners: tuple[float, ...], order: int) -> np.ndarray:
    from scipy.signal import butter

    wn = corners[0] if len(corners) == 1 else list(corners)
    return butter(order, wn, btype=kind, fs=FS_HZ, output="sos")


def zero_phase(x: np.ndarray, kind: str, corners: tuple[float, ...], order: int = 2) -> np.ndarray:
    """Butterworth filter `kind` ("highpass", "lowpass", "bandpass") of `order`,
    corners in Hz at FS_HZ, run forward and backward along the last axis of
    `x` `[rows, n]`. Returns float64 `[rows, n]`."""
    from scipy.signal import sosfiltfilt

    return sosfiltfilt(_sos(kind, corners, order), x, axis=-1)


def condition(signal: np.ndarray, fs: float) -> np.ndarray:
    """Resample `signal` (float `[rows, n]`, mV, at `fs` Hz) to FS_HZ and filter it
    0.5-100 Hz with zero phase. Returns float64 `[rows, m]`, mV, at FS_HZ."""
    from engine.preprocess.filters import resample

    x = resample(np.asarray(signal, dtype=np.float64), float(fs), FS_HZ)
    x = x - x.mean(axis=-1, keepdims=True)
    return zero_phase(x, "bandpass", (HIGHPASS_HZ, LOWPASS_HZ))
