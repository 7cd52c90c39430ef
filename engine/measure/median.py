"""Median (representative) beats: the sample-wise median of the dominant beats,
time-aligned on their (realigned) detection points, lead by lead.

The window runs from `pre` before to `post` after the alignment point, both
set from the median RR so that a slow heart's long PR and QT fit and a fast
heart's window does not reach deep into the neighbouring beats:
pre = clip(0.5 RR, 250, 450) ms, post = clip(0.8 RR, 400, 700) ms.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.measure.prep import FS_HZ

PRE_S: tuple[float, float, float] = (0.5, 0.25, 0.45)
POST_S: tuple[float, float, float] = (0.8, 0.40, 0.70)


@dataclass(frozen=True)
class MedianBeats:
    """Attributes:
        beats: float64 `[rows, L]`, mV at FS_HZ, one median beat per lead.
        origin: index in `beats` of the alignment point (time 0).
        n_beats: number of beats the median was taken over.
        noise_mv: float64 `[rows]`, median over beats of the RMS difference
            between a beat and the median beat, mV (beat-to-beat noise).
    """

    beats: np.ndarray
    origin: int
    n_beats: int
    noise_mv: np.ndarray


def window_samples(rr_ms: float) -> tuple[int, int]:
    """(pre, post) window lengths in samples at FS_HZ for a median RR in ms."""
    rr = rr_ms / 1000.0
    pre = min(max(PRE_S[0] * rr, PRE_S[1]), PRE_S[2])
    post = min(max(POST_S[0] * rr, POST_S[1]), POST_S[2])
    return int(round(pre * FS_HZ)), int(round(post * FS_HZ))


def median_beats(x: np.ndarray, peaks: np.ndarray, rr_ms: float) -> MedianBeats | None:
    """Median beats of `x` `[rows, n]` (mV at FS_HZ) over the beats at `peaks`
    (those whose whole window lies inside the record). None if no beat fits."""
    pre, post = window_samples(rr_ms)
    peaks = peaks[(peaks - pre >= 0) & (peaks + post < x.shape[-1])]
    if peaks.size == 0:
        return None
    idx = peaks[:, None] + np.arange(-pre, post)[None, :]
    stack = x[:, idx]  # [rows, n_beats, L]
    med = np.median(stack, axis=1)
    resid = stack - med[:, None, :]
    noise = np.median(np.sqrt(np.mean(resid * resid, axis=2)), axis=1)
    return MedianBeats(med, pre, int(peaks.size), noise)


def beat_stack(x: np.ndarray, peaks: np.ndarray, med: MedianBeats) -> np.ndarray:
    """The single beats behind `med`: float64 `[rows, n_beats, L]`."""
    pre = med.origin
    post = med.beats.shape[1] - pre
    peaks = peaks[(peaks - pre >= 0) & (peaks + post < x.shape[-1])]
    idx = peaks[:, None] + np.arange(-pre, post)[None, :]
    return x[:, idx]
