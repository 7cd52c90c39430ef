"""Global wave boundaries on the time-aligned median beats of all usable leads.

IEC 60601-2-25 and commercial programs define a global interval from the
earliest onset to the latest offset over the 12 leads. Here:

- QRS onset and offset: on the spatial velocity of the median beats,
  SV(t) = sqrt(sum_leads (dx/dt)^2) after a 40 Hz zero-phase low-pass (the
  method of the Marquette/GE and Philips programs, e.g. Xue 2006; also
  Laguna 1994 for the multi-lead boundary rule). The QRS core is where SV
  exceeds floor + QRS_ANCHOR_FRACTION * (max - floor), floor being the SV
  level of the isoelectric segments (its 10th percentile over the beat); the
  onset and offset are the knees of SV before and after the core: the points
  furthest below the chord from the core's edge to QRS_KNEE_SPAN_S away (the
  maximum-distance-to-chord rule used for wave ends, e.g. Vazquez-Seisdedos
  2011), which does not depend on a small threshold that the ST slope may never
  fall below. Being a sum over leads, SV rises as soon as any lead departs from
  baseline, which is the "earliest onset over the leads" of the definition;
  a single noisy lead is kept out of the sum by the usable-lead rule of
  `engine.measure.core` (noise at most 1/NOISE_RATIO of its QRS).
- T end: the tangent method (the steepest slope after the T peak, extended
  to the isoelectric PR level) lead by lead on a 25 Hz low-passed median,
  in every usable lead whose T wave reaches T_MIN_FRACTION of its QRS
  amplitude. The global T end is the latest lead T end that at least
  AGREE_LEADS - 1 other leads confirm within AGREE_S (a lone late lead
  is an outlier, not the latest offset).
- P onset and offset: on the root-mean-square over leads of the median
  beats (20 Hz low-passed, each lead's linear trend across the P search
  window removed), the P wave is the stretch around the RMS maximum
  above floor + P_FRACTION * (max - floor), floor being the RMS's
  median in the window (the P wave fills at most a third of it, so the median is
  the level of noise and residual trend). The P wave is accepted only if it stands above
  the median beat's noise (P_MIN_SNR) and is present in the single beats
  (median correlation of each beat's P segment with the median's at least
  P_MIN_CORR): the fibrillatory waves of atrial fibrillation and random
  noise average out and do not correlate from beat to beat.

All boundaries are sample indices into the median beat (FS_HZ).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.measure.prep import FS_HZ, zero_phase

#: The QRS core: SV above floor + this fraction of (max - floor).
QRS_ANCHOR_FRACTION: float = 0.2
#: Knee search spans (s) before the core's start and after its end.
QRS_KNEE_SPAN_S: tuple[float, float] = (0.10, 0.16)
#: QRS search limits around the alignment point (s before, s after).
QRS_SEARCH_S: tuple[float, float] = (0.15, 0.20)
T_MIN_FRACTION: float = 0.05
AGREE_LEADS: int = 2
AGREE_S: float = 0.02
P_FRACTION: float = 0.10
P_MIN_SNR: float = 4.0
P_MIN_CORR: float = 0.5
#: P search window: from this long (s) before the QRS onset ...
P_SEARCH_S: float = 0.40
#: ... to this long before it.
P_GAP_S: float = 0.01


@dataclass(frozen=True)
class Fiducials:
    """Global boundaries as sample indices into the median beat; None when absent.

    `p_reason` / `t_reason` say why a P wave / T end is absent."""

    qrs_on: int | None
    qrs_off: int | None
    p_on: int | None = None
    p_off: int | None = None
    t_off: int | None = None
    p_reason: str | None = None
    t_reason: str | None = None
    qrs_reason: str | None = None


def _ms(s: float) -> int:
    return int(round(s * FS_HZ))


def spatial_velocity(beats: np.ndarray) -> np.ndarray:
    """sqrt(sum over rows of (d/dt)^2) of `beats` `[rows, L]` after a 40 Hz
    zero-phase low-pass; float64 `[L]`, mV/s."""
    y = zero_phase(beats, "lowpass", (40.0,), order=2)
    d = np.gradient(y, axis=-1) * FS_HZ
    return np.sqrt(np.einsum("rl,rl->l", d, d))


def _boundary(curve: np.ndarray, start: int, stop: int, thr: float, step: int, quiet: int) -> int | None:
    """Walk from `start` towards `stop` (exclusive) by `step` (+1/-1); the first
    index where `curve` stays below `thr` for `quiet` samples."""
    run = 0
    i = start
    while i != stop:
        if curve[i] < thr:
            run += 1
            if run >= quiet:
                return i - step * (quiet - 1)
        else:
            run = 0
        i += step
    return None


def _knee(curve: np.ndarray, a: int, b: int) -> int:
    """Index between `a` and `b` where `curve` lies furthest below the chord joining
    curve[a] and curve[b] (the knee of a decaying curve)."""
    if a == b:
        return a
    idx = np.arange(min(a, b), max(a, b) + 1)
    chord = curve[a] + (curve[b] - curve[a]) * (idx - a) / (b - a)
    return int(idx[np.argmax(chord - curve[idx])])


def qrs_boundaries(beats: np.ndarray, origin: int) -> tuple[int | None, int | None]:
    """(onset, offset) of the QRS on the median beats `beats` `[rows, L]`.

    The QRS core runs from the first to the last sample of the search window
    where the spatial velocity exceeds floor + QRS_ANCHOR_FRACTION * (max - floor)
    (so the dip between R and S, or S and R', stays inside); the onset is the knee of SV in the
    QRS_KNEE_SPAN_S[0] before the core (maximum distance below the chord from
    the core's first sample to the span's start), the offset the knee in the
    QRS_KNEE_SPAN_S[1] after it. None when the core touches the search limits."""
    sv = spatial_velocity(beats)
    lo = max(1, origin - _ms(QRS_SEARCH_S[0]))
    hi = min(sv.size - 1, origin + _ms(QRS_SEARCH_S[1]))
    w = _ms(0.05)
    pk = origin - w + int(np.argmax(sv[origin - w:origin + w + 1]))
    floor = float(np.percentile(sv, 10))
    thr = floor + QRS_ANCHOR_FRACTION * (float(sv[pk]) - floor)
    above = np.nonzero(sv[lo:hi + 1] >= thr)[0] + lo
    core_on, core_off = int(above[0]), int(above[-1])
    if core_on <= lo or core_off >= hi:
        return None, None
    on = _knee(sv, core_on, max(lo, core_on - _ms(QRS_KNEE_SPAN_S[0])))
    off = _knee(sv, core_off, min(hi, core_off + _ms(QRS_KNEE_SPAN_S[1])))
    return on, off


def t_end(beats: np.ndarray, qrs_on: int, qrs_off: int, limit: int) -> tuple[int | None, str | None]:
    """Global T end (sample) on `beats` `[rows, L]`, searching up to `limit`."""
    y = zero_phase(beats, "lowpass", (25.0,), order=2)
    d = np.gradient(y, axis=-1)
    b0 = max(0, qrs_on - _ms(0.02))
    base = y[:, b0:max(b0 + 1, qrs_on - _ms(0.004))].mean(axis=1)
    lo = qrs_off + _ms(0.04)
    limit = min(limit, y.shape[1] - 1)
    if limit - lo < _ms(0.08):
        return None, "T wave outside the beat window"
    qrs_amp = np.ptp(y[:, qrs_on:qrs_off + 1], axis=1) if qrs_off > qrs_on else np.ptp(y, axis=1)
    ends = []
    for r in range(y.shape[0]):
        dev = y[r, lo:limit] - base[r]
        k = int(np.argmax(np.abs(dev)))
        amp = dev[k]
        if abs(amp) < T_MIN_FRACTION * qrs_amp[r] or k >= dev.size - 2:
            continue
        pk = lo + k
        seg = d[r, pk:limit]
        j = int(np.argmin(seg)) if amp > 0 else int(np.argmax(seg))
        ts = pk + j
        slope = d[r, ts]
        if slope == 0 or np.sign(slope) == np.sign(amp):
            continue
        te = ts + (base[r] - y[r, ts]) / slope
        if ts < te <= limit + _ms(0.05):
            ends.append(te)
    if len(ends) < AGREE_LEADS:
        return None, "no T wave end found in enough leads"
    ends = np.sort(np.asarray(ends))[::-1]
    tol = AGREE_S * FS_HZ
    for i, e in enumerate(ends):
        if np.sum(np.abs(ends - e) <= tol) >= AGREE_LEADS:
            return int(round(e)), None
    return None, "T wave ends disagree between leads"


def p_wave(beats: np.ndarray, stack: np.ndarray, noise_mv: np.ndarray, qrs_on: int,
           n_beats: int) -> tuple[int | None, int | None, str | None]:
    """(onset, offset, reason) of the P wave before `qrs_on` on `beats` `[rows, L]`;
    `stack` `[rows, n_beats, L]` holds the single beats (consistency check)."""
    s0 = max(0, qrs_on - _ms(P_SEARCH_S))
    s1 = qrs_on - _ms(P_GAP_S)
    if s1 - s0 < _ms(0.1):
        return None, None, "P wave search window too short"
    y = zero_phase(beats, "lowpass", (20.0,), order=2)[:, s0:s1]
    m = y.shape[1]
    e = _ms(0.01)
    t = np.linspace(0.0, 1.0, m)
    a = y[:, :e].mean(axis=1, keepdims=True)
    b = y[:, -e:].mean(axis=1, keepdims=True)
    yd = y - (a + (b - a) * t[None, :])
    rms = np.sqrt(np.mean(yd * yd, axis=0))
    k = int(np.argmax(rms[e:m - e])) + e
    peak = float(rms[k])
    noise = float(np.sqrt(np.mean(noise_mv ** 2)) / np.sqrt(max(n_beats, 1)))
    if peak < P_MIN_SNR * noise:
        return None, None, "no P wave above the noise"
    floor = float(np.median(rms))
    thr = floor + P_FRACTION * (peak - floor)
    on = _boundary(rms, k, -1, thr, -1, 1)
    off = _boundary(rms, k, m, thr, +1, 1)
    if on is None or off is None:
        return None, None, "P wave boundaries not found"
    # consistency: each single beat's P segment against the median's
    seg = yd[:, on:off + 1]
    if seg.shape[1] < 3:
        return None, None, "P wave too short"
    singles = stack[:, :, s0 + on:s0 + off + 1]
    singles = singles - singles.mean(axis=2, keepdims=True)
    ref = seg - seg.mean(axis=1, keepdims=True)
    num = np.einsum("rbl,rl->b", singles, ref)
    den = np.sqrt(np.einsum("rbl,rbl->b", singles, singles) * float(np.sum(ref * ref))) + 1e-12
    if float(np.median(num / den)) < P_MIN_CORR:
        return None, None, "no consistent P wave from beat to beat"
    return s0 + on, s0 + off, None
