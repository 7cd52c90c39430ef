"""Beat classification: dominant (normal-morphology) beats, ectopy, pacing, rhythm.

A beat belongs to the dominant class when its QRS (all leads, -60..+80 ms
around the detection point) correlates with the class seed at
MORPHOLOGY_CORR or more; the seed is the beat that most other beats resemble
(so in bigeminy the more frequent morphology wins). Premature beats (RR to the
previous beat < PREMATURE_FRACTION of the median RR, as a PAC or PVC is) are
ectopic even when their QRS looks normal, and so is the beat after a
pause. Only dominant, non-premature beats enter the median beat.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.measure.prep import FS_HZ

#: Correlation of a beat's 12-lead QRS with the dominant seed to count as dominant.
MORPHOLOGY_CORR: float = 0.90
#: A beat whose preceding RR is shorter than this fraction of the median RR is premature.
PREMATURE_FRACTION: float = 0.80
#: QRS window compared between beats (s before, s after the detection point).
QRS_WINDOW_S: tuple[float, float] = (0.06, 0.08)
#: Largest realignment of a beat onto the template (s).
MAX_SHIFT_S: float = 0.01
#: Pacing spike: a one-sample second difference of at least this fraction of
#: the lead's peak-to-peak range, in at least PACE_MIN_LEADS leads at once...
PACE_D2_FRACTION: float = 0.6
PACE_MIN_LEADS: int = 3
#: ... within this many seconds before a QRS detection point, before at least
#: engine.measure.core.PACED_FRACTION of the beats. Normal LUDB records reach 0.65 in one lead at most, the
#: paced record 8 reaches 0.9-1.1 in four leads.
PACE_WINDOW_S: float = 0.12
#: Normalised RMSSD of RR (RMSSD / mean RR) above which the rhythm is irregular
#: (Dash et al. 2009 use 0.1 for atrial fibrillation).
IRREGULAR_NRMSSD: float = 0.10


@dataclass(frozen=True)
class BeatClasses:
    """Result of `classify_beats`.

    Attributes:
        peaks: int64 `[n]`, detection points (samples at FS_HZ), realigned.
        dominant: bool `[n]`, beats used for the median beat.
        premature: bool `[n]`.
        morphology_ok: bool `[n]`, QRS like the dominant class.
    """

    peaks: np.ndarray
    dominant: np.ndarray
    premature: np.ndarray
    morphology_ok: np.ndarray


def _qrs_stack(x: np.ndarray, peaks: np.ndarray) -> np.ndarray:
    a, b = (int(round(s * FS_HZ)) for s in QRS_WINDOW_S)
    idx = peaks[:, None] + np.arange(-a, b)[None, :]
    return x[:, idx].transpose(1, 0, 2)  # [n, rows, w]


def _corr_rows(v: np.ndarray, ref: np.ndarray) -> np.ndarray:
    v = v - v.mean(axis=-1, keepdims=True)
    ref = ref - ref.mean()
    num = v @ ref
    den = np.sqrt(np.einsum("ij,ij->i", v, v) * float(ref @ ref)) + 1e-12
    return num / den


def classify_beats(x: np.ndarray, peaks: np.ndarray) -> BeatClasses:
    """Classify the beats at `peaks` of `x` `[rows, n]` (mV at FS_HZ).

    Beats too close to the record edges for the QRS window are dropped."""
    a, b = (int(round(s * FS_HZ)) for s in QRS_WINDOW_S)
    s = int(round(MAX_SHIFT_S * FS_HZ))
    peaks = peaks[(peaks - a - s >= 0) & (peaks + b + s < x.shape[-1])]
    n = peaks.size
    if n == 0:
        e = np.zeros(0, dtype=bool)
        return BeatClasses(peaks, e, e, e)
    flat = _qrs_stack(x, peaks).reshape(n, -1)
    c = flat - flat.mean(axis=1, keepdims=True)
    c /= np.linalg.norm(c, axis=1, keepdims=True) + 1e-12
    cm = c @ c.T
    seed = int(np.argmax((cm >= MORPHOLOGY_CORR).sum(axis=1)))
    morph = cm[seed] >= MORPHOLOGY_CORR
    template = np.median(flat[morph], axis=0)
    # realign each beat on the template (lag of best correlation within +-MAX_SHIFT_S)
    best = np.full(n, -np.inf)
    shift = np.zeros(n, dtype=np.int64)
    for lag in range(-s, s + 1):
        r = _corr_rows(_qrs_stack(x, peaks + lag).reshape(n, -1), template)
        better = r > best
        best[better] = r[better]
        shift[better] = lag
    peaks = peaks + shift
    morph = best >= MORPHOLOGY_CORR
    rr = np.diff(peaks)
    premature = np.zeros(n, dtype=bool)
    if rr.size:
        med = np.median(rr)
        premature[1:] = rr < PREMATURE_FRACTION * med
    dominant = morph & ~premature
    return BeatClasses(peaks, dominant, premature, morph)


def rr_intervals_ms(peaks: np.ndarray) -> np.ndarray:
    """RR intervals (float64 ms) between consecutive detection points."""
    return np.diff(peaks).astype(np.float64) * (1000.0 / FS_HZ)


def nn_intervals_ms(classes: BeatClasses) -> np.ndarray:
    """Normal-to-normal intervals (float64 ms): RR between consecutive beats that are
    both dominant (the HRV convention: ectopic beats and the pauses after them out)."""
    rr = rr_intervals_ms(classes.peaks)
    both = classes.dominant[1:] & classes.dominant[:-1]
    return rr[both]


def is_irregular(rr_ms: np.ndarray) -> bool:
    """True when RMSSD / mean RR of `rr_ms` (normal-to-normal intervals, see
    `nn_intervals_ms`) exceeds IRREGULAR_NRMSSD (needs >= 3 intervals)."""
    if rr_ms.size < 3:
        return False
    rmssd = float(np.sqrt(np.mean(np.diff(rr_ms) ** 2)))
    return rmssd / float(rr_ms.mean()) > IRREGULAR_NRMSSD


def paced_fraction(raw: np.ndarray, fs: float, peaks_s: np.ndarray) -> float:
    """Fraction of beats (detection times `peaks_s`, s) preceded by a pacing spike
    in `raw` (float `[rows, n]`, mV, at its own rate `fs`, unfiltered: filters
    smear the spike). 0 when `fs` < 500 Hz (spikes are not resolved)."""
    if fs < 499.0 or peaks_s.size == 0:
        return 0.0
    x = np.asarray(raw, dtype=np.float64)
    ptp = np.ptp(x, axis=1, keepdims=True)
    ok = ptp[:, 0] > 0
    if ok.sum() < PACE_MIN_LEADS:
        return 0.0
    d2 = np.zeros_like(x[ok])
    d2[:, 1:-1] = np.abs(np.diff(x[ok], 2, axis=1)) / ptp[ok]
    spikes = (d2 >= PACE_D2_FRACTION)
    # spread over +-2 samples so leads need not agree to the sample
    k = np.ones(5)
    count = np.zeros(x.shape[1])
    for row in spikes:
        count += np.convolve(row.astype(np.float64), k, mode="same") > 0
    hit = count >= PACE_MIN_LEADS
    w = int(round(PACE_WINDOW_S * fs))
    paced = 0
    for p in peaks_s:
        i = int(round(p * fs))
        if hit[max(0, i - w):i + 1].any():
            paced += 1
    return paced / peaks_s.size
