"""Signal primitives of the ECG pipeline: polyphase resampling, median-filter
baseline removal and per-lead min-max scaling.

All functions work on 2-D float arrays `[rows, n_samples]` along the last axis
(one row per lead, or per lead of one window) and are vectorised over rows.
"""

from __future__ import annotations

from fractions import Fraction
from functools import lru_cache

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

#: Largest denominator of the rational resampling factor `target_fs / fs`.
#: Any rate that is an integer or a simple fraction (100, 250, 257, 360, 500,
#: 1000, 1000/3 Hz ...) is represented exactly; an odd rate such as
#: 256.3 Hz is approximated to better than 1e-6 relative, which keeps the
#: polyphase filter short (the FIR length is 20 * max(up, down) + 1).
MAX_RESAMPLE_DENOMINATOR: int = 1000

#: Kaiser window parameter of the anti-aliasing FIR filter: scipy's default for
#: `resample_poly`, spelled out because the filter is designed here and cached.
KAISER_BETA: float = 5.0

#: A lead whose peak-to-peak range (after baseline removal, in mV) is at or
#: below this is treated as flat and scaled to all 0 instead of stretching
#: floating-point round-off to [-1, 1]. 1 nV is far below any ECG ADC step.
FLAT_RANGE_MV: float = 1e-6


@lru_cache(maxsize=64)
def resample_factors(fs: float, target_fs: float) -> tuple[int, int]:
    """Rational `(up, down)` with `up / down ~= target_fs / fs`, in lowest terms.

    Uses `Fraction(target_fs / fs).limit_denominator(MAX_RESAMPLE_DENOMINATOR)`.
    """
    frac = Fraction(target_fs / fs).limit_denominator(MAX_RESAMPLE_DENOMINATOR)
    return frac.numerator, frac.denominator


def _pad_edge(x: np.ndarray, before: int, after: int) -> np.ndarray:
    """`np.pad(x, ((0, 0), (before, after)), mode="edge")` for 2-D float64 `x`,
    without np.pad's general-case overhead (it dominated for 12 x 1000 arrays)."""
    rows, n = x.shape
    out = np.empty((rows, before + n + after), dtype=np.float64)
    out[:, before:before + n] = x
    out[:, :before] = x[:, :1]
    out[:, before + n:] = x[:, -1:]
    return out


@lru_cache(maxsize=32)
def _fir(up: int, down: int) -> np.ndarray:
    """The anti-aliasing low-pass filter `scipy.signal.resample_poly` designs by
    default for these factors (cached: designing it costs as much as filtering)."""
    max_rate = max(up, down)
    taps = firwin_lowpass(2 * 10 * max_rate + 1, 1.0 / max_rate, KAISER_BETA)
    taps.setflags(write=False)
    return taps


def firwin_lowpass(numtaps: int, cutoff: float, beta: float) -> np.ndarray:
    """`scipy.signal.firwin(numtaps, cutoff, window=("kaiser", beta))` (low-pass, scaled,
    cutoff relative to Nyquist), float64 `[numtaps]`, computed with scipy's own steps
    (sinc, Kaiser window from `scipy.special.i0`, unit DC gain): bit-identical to it
    (tests/engine/test_filters_fir.py), without importing `scipy.signal`, which pulls in
    `scipy.stats` and costs ~1.6 s on the app's start path. numpy's `i0` is not used: it
    differs from scipy's in the last bits."""
    from scipy import special

    alpha = 0.5 * (numtaps - 1)
    m = np.arange(0, numtaps, dtype=np.float64) - alpha
    h = 0
    h += cutoff * np.sinc(cutoff * m)
    h -= 0.0 * np.sinc(0.0 * m)  # the band's left edge, as firwin computes it
    n = np.arange(0, numtaps, dtype=np.float64)
    win = special.i0(beta * np.sqrt(1 - ((n - alpha) / alpha) ** 2.0)) / \
        special.i0(np.asarray(beta, dtype=np.float64))
    h *= win
    h /= np.sum(h * np.cos(np.pi * m * 0.0))
    return h


def resample(x: np.ndarray, fs: float, target_fs: float) -> np.ndarray:
    """Resample `x` `[rows, n]` from `fs` to `target_fs` Hz along the last axis.

    Polyphase FIR filtering (`scipy.signal.resample_poly`) with the rational
    factor of `resample_factors`; the signal is extended at both ends by its
    edge value (`padtype="edge"`) so that a DC offset does not produce a
    filter transient at the start and end. Output length is
    `ceil(n * up / down)`; the input is returned unchanged (as float64) when
    `up == down`.

    Returns:
        float64 `[rows, ceil(n * up / down)]`.
    """
    up, down = resample_factors(fs, target_fs)
    x = np.asarray(x, dtype=np.float64)
    if up == down:
        return x
    if up == 1:
        return _decimate(x, down)
    from scipy import signal  # imported where used: keeps `import engine.inference` fast

    return signal.resample_poly(x, up, down, axis=-1, window=_fir(up, down), padtype="edge")


def _decimate(x: np.ndarray, down: int) -> np.ndarray:
    """`resample_poly(x, 1, down, padtype="edge")` for an integer factor, computed
    only at the kept output samples as one `einsum` over a strided view (about
    twice as fast as `upfirdn` for 500 -> 100 Hz; equal to it within float
    round-off, which tests check).

    Output sample i is the centred FIR sum `sum_j h[j] * xe[i*down - half + j]`,
    `xe` being `x` extended by its edge values.
    """
    taps = _fir(1, down)
    half = (taps.size - 1) // 2
    n = x.shape[-1]
    n_out = -(-n // down)
    padded = _pad_edge(x, half, half + down)
    view = sliding_window_view(padded, taps.size, axis=-1)[:, ::down][:, :n_out]
    return np.einsum("rnk,k->rn", view, taps)


def median_filter_rows(x: np.ndarray, kernel: int) -> np.ndarray:
    """Running median of odd length `kernel` along the last axis of `x` `[rows, n]`.

    Exact median semantics; edges are handled by repeating the first / last
    sample of each row (`mode="nearest"`), so a row never mixes with its
    neighbours or with zeros. Implemented as one 1-D `scipy.ndimage.median_filter`
    call over all rows laid end to end, each row extended by `kernel // 2` edge
    samples on both sides (scipy's 1-D path is an order of magnitude faster than
    its 2-D path with a `(1, kernel)` footprint).

    Returns:
        float64 `[rows, n]`.
    """
    if kernel % 2 != 1 or kernel < 1:
        raise ValueError(f"median kernel must be a positive odd integer, got {kernel}")
    x = np.asarray(x, dtype=np.float64)
    half = kernel // 2
    if half == 0:
        return x.copy()
    n = x.shape[-1]
    padded = _pad_edge(x, half, half)
    from scipy import ndimage  # imported where used (see resample)

    filtered = ndimage.median_filter(padded.ravel(), size=kernel, mode="nearest")
    return filtered.reshape(padded.shape)[:, half:half + n]


def median_kernel(seconds: float, fs: float) -> int:
    """Odd median-filter length in samples for a span of `seconds` at `fs` Hz
    (0.2 s and 0.6 s at 100 Hz give 21 and 61)."""
    return 2 * int(seconds * fs / 2.0 + 1e-9) + 1


def remove_baseline(x: np.ndarray, fs: float, spans_s: tuple[float, ...]) -> np.ndarray:
    """Subtract the baseline wander estimated by successive median filters.

    The baseline is `median_{spans_s[-1]}( ... median_{spans_s[0]}(x))`: each
    filter is applied to the output of the previous one (the paper: 0.2 s then
    0.6 s), and the result is subtracted from `x`.

    Args:
        x: `[rows, n]` signal, mV.
        fs: sampling rate of `x` in Hz.
        spans_s: filter lengths in seconds.

    Returns:
        float64 `[rows, n]`, mV, baseline removed.
    """
    baseline = np.asarray(x, dtype=np.float64)
    for span in spans_s:
        baseline = median_filter_rows(baseline, median_kernel(span, fs))
    return x - baseline


def minmax_scale(x: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Scale each row of `x` `[rows, n]` linearly so its min is exactly `lo` and
    its max exactly `hi`; a row whose range is <= FLAT_RANGE_MV becomes all
    `(lo + hi) / 2` (0 for [-1, 1]).

    `(x - min) / (max - min)` is exactly 0 at the min and exactly 1 at the max
    in IEEE arithmetic, so the extremes land exactly on `lo` and `hi`.

    Returns:
        float64 `[rows, n]` within `[lo, hi]`.
    """
    x = np.asarray(x, dtype=np.float64)
    mn = x.min(axis=-1, keepdims=True)
    rng = x.max(axis=-1, keepdims=True) - mn
    flat = rng <= FLAT_RANGE_MV
    out = x - mn  # then in place: ((x - min) / range) * (hi - lo) + lo
    out /= np.where(flat, 1.0, rng)
    out *= hi - lo
    out += lo
    if flat.any():
        out[np.broadcast_to(flat, out.shape)] = (lo + hi) / 2.0
    return np.clip(out, lo, hi, out=out)
