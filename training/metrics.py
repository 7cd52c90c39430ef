"""Binary classification metrics as plain numpy functions (no sklearn at run time).

Inputs: `y` int/bool `[n]` with 0/1 labels, `score` float `[n]` (logit or
probability: AUROC/AUPRC depend only on the order). Tested against sklearn.
"""

from __future__ import annotations

import numpy as np

from engine.numeric import sigmoid  # noqa: F401  (re-exported)


def _check(y: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y).astype(np.int64).ravel()
    score = np.asarray(score, dtype=np.float64).ravel()
    if y.shape != score.shape:
        raise ValueError(f"labels {y.shape} and scores {score.shape} differ in length")
    return y, score


def _curve(y: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cumulative true and false positives at each distinct threshold (descending), and the thresholds."""
    order = np.argsort(-score, kind="mergesort")
    s, t = score[order], y[order]
    distinct = np.r_[np.flatnonzero(np.diff(s)), len(s) - 1]
    tps = np.cumsum(t)[distinct]
    fps = (distinct + 1) - tps
    return tps.astype(np.float64), fps.astype(np.float64), s[distinct]


def roc_curve(y: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(fpr, tpr, thresholds), starting at (0, 0) with threshold +inf; ties handled as sklearn."""
    y, score = _check(y, score)
    tps, fps, thr = _curve(y, score)
    tps, fps = np.r_[0.0, tps], np.r_[0.0, fps]
    thr = np.r_[np.inf, thr]
    p, n = tps[-1], fps[-1]
    tpr = tps / p if p > 0 else np.full_like(tps, np.nan)
    fpr = fps / n if n > 0 else np.full_like(fps, np.nan)
    return fpr, tpr, thr


def auroc(y: np.ndarray, score: np.ndarray) -> float:
    """Area under the ROC curve (trapezoidal, ties count one half); NaN with a single class."""
    y, score = _check(y, score)
    if y.min(initial=0) == y.max(initial=0) or len(y) == 0:
        return float("nan")
    fpr, tpr, _ = roc_curve(y, score)
    return float(np.trapezoid(tpr, fpr))


def auprc(y: np.ndarray, score: np.ndarray) -> float:
    """Average precision (step-wise area under the precision-recall curve, as sklearn's
    `average_precision_score`); NaN without positives."""
    y, score = _check(y, score)
    if y.sum() == 0:
        return float("nan")
    tps, fps, _ = _curve(y, score)
    precision = tps / (tps + fps)
    recall = tps / tps[-1]
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def f1_at(y: np.ndarray, score: np.ndarray, threshold: float) -> float:
    """F1 of the predictions `score >= threshold` (0 when there is no positive at all)."""
    y, score = _check(y, score)
    pred = score >= threshold
    tp = float(np.sum(pred & (y == 1)))
    fp = float(np.sum(pred & (y == 0)))
    fn = float(np.sum(~pred & (y == 1)))
    denom = 2 * tp + fp + fn
    return 2 * tp / denom if denom > 0 else 0.0


def best_f1_threshold(y: np.ndarray, score: np.ndarray) -> tuple[float, float]:
    """(threshold, F1): the score threshold maximising F1 of `score >= threshold` on (y, score).

    Chosen among the observed scores; with ties in F1 the highest threshold wins.
    """
    y, score = _check(y, score)
    if len(y) == 0:
        raise ValueError("no samples to choose a threshold on")
    tps, fps, thr = _curve(y, score)
    p = tps[-1] if len(tps) else 0.0
    f1 = np.where(2 * tps + fps + (p - tps) > 0, 2 * tps / np.maximum(2 * tps + fps + (p - tps), 1e-300), 0.0)
    i = int(np.argmax(f1))  # first maximum = highest threshold (descending order)
    return float(thr[i]), float(f1[i])


def bootstrap_ci(y: np.ndarray, score: np.ndarray, metric, n_resamples: int = 1000, seed: int = 0,
                 level: float = 0.95) -> tuple[float, float, float]:
    """(value, low, high): `metric(y, score)` and its percentile bootstrap CI over
    `n_resamples` resamples of the samples with replacement (seeded). Resamples where the
    metric is undefined (NaN, e.g. a single class) are dropped."""
    y, score = _check(y, score)
    value = float(metric(y, score))
    rng = np.random.default_rng(seed)
    n = len(y)
    stats = np.empty(n_resamples)
    for b in range(n_resamples):
        i = rng.integers(0, n, n)
        stats[b] = metric(y[i], score[i])
    stats = stats[np.isfinite(stats)]
    if len(stats) == 0:
        return value, float("nan"), float("nan")
    a = (1.0 - level) / 2.0
    lo, hi = np.quantile(stats, [a, 1.0 - a])
    return value, float(lo), float(hi)
