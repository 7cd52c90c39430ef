"""Multi-lead QRS detection (Pan & Tompkins 1985, on the sum of the leads' energy).

Each lead is band-passed 5-25 Hz (the QRS band; P and T waves are mostly below
5 Hz), differentiated and squared; the squares are summed over leads and
integrated over a 80 ms moving window. Peaks of this envelope that exceed
DETECT_FRACTION of a robust reference height and lie at least REFRACTORY_S
apart are beats. The reference is the median of the tallest peaks (one per
second of record), so a few large ectopic beats or artefacts do not hide the
ordinary ones.
"""

from __future__ import annotations

import numpy as np

from engine.measure.prep import FS_HZ, zero_phase

#: Minimum distance between two beats (s): 250 ms, i.e. rates up to 240 bpm.
REFRACTORY_S: float = 0.25
#: A beat's envelope peak must reach this fraction of the reference height.
DETECT_FRACTION: float = 0.2
#: Moving-window integration length (s).
INTEGRATION_S: float = 0.08


def qrs_envelope(x: np.ndarray) -> np.ndarray:
    """Pan-Tompkins envelope of `x` `[rows, n]` (mV at FS_HZ): float64 `[n]`, mV^2/s^2."""
    band = zero_phase(x, "bandpass", (5.0, 25.0), order=2)
    d = np.diff(band, axis=-1, prepend=band[:, :1]) * FS_HZ
    energy = np.einsum("rn,rn->n", d, d)
    w = int(round(INTEGRATION_S * FS_HZ))
    kernel = np.full(w, 1.0 / w)
    return np.convolve(energy, kernel, mode="same")


def detect_qrs(x: np.ndarray) -> np.ndarray:
    """Sample indices (int64, ascending) of the QRS complexes in `x` `[rows, n]`
    (mV at FS_HZ): the envelope peak of each beat (near the middle of the QRS)."""
    from scipy.signal import find_peaks

    env = qrs_envelope(x)
    peaks, props = find_peaks(env, distance=int(REFRACTORY_S * FS_HZ), height=0.0)
    if peaks.size == 0:
        return peaks.astype(np.int64)
    heights = props["peak_heights"]
    n_ref = max(3, int(x.shape[-1] / FS_HZ))
    ref = float(np.median(np.sort(heights)[-n_ref:]))
    if ref <= 0:
        return np.empty(0, dtype=np.int64)
    keep = heights >= DETECT_FRACTION * ref
    return peaks[keep].astype(np.int64)
