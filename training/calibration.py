"""Probability calibration of a binary classifier: temperature scaling, ECE, reliability.

Temperature scaling (Guo et al., ICML 2017) fits one scalar `T > 0` on the validation
split so that `sigmoid(logit / T)` minimises the binary cross-entropy (negative log
likelihood) of the validation labels. It rescales confidence without changing the ranking,
so AUROC, AUPRC and every threshold decision are unchanged when the threshold is mapped
with the same `T` (`calibrated_threshold`).

The ONNX models still output the raw logit; the manifest's ECG entry carries `temperature`
(and `threshold_calibrated`, `calibration`), and the engine shows `p = sigmoid(logit /
temperature)` compared with `threshold_calibrated`, which gives the decision of
`sigmoid(logit)` against `threshold` (`engine.calibration`, `engine.inference`).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from scipy.optimize import minimize_scalar

# One formula for training and the engine: `sigmoid(logit / T)` and the mapped threshold
# (engine/calibration.py, which the engine uses to show calibrated probabilities).
from engine.calibration import (TEMPERATURE_RANGE, calibrated_probability,  # noqa: F401
                                calibrated_threshold)

#: Search range of log(T): T in [0.05, 20] (`engine.calibration.TEMPERATURE_RANGE`, which the
#: engine accepts in a manifest).
_LOG_T_RANGE: tuple[float, float] = (math.log(TEMPERATURE_RANGE[0]), math.log(TEMPERATURE_RANGE[1]))
ECE_BINS: int = 10


def _nll(logit: np.ndarray, y: np.ndarray, t: float) -> float:
    z = logit / t
    # BCE with logits, stable: max(z, 0) - z*y + log(1 + exp(-|z|))
    return float(np.mean(np.maximum(z, 0.0) - z * y + np.log1p(np.exp(-np.abs(z)))))


def fit_temperature(logit: np.ndarray, y: np.ndarray) -> float:
    """Temperature `T` (float, 0.05-20) minimising the NLL of `sigmoid(logit / T)`.

    Args:
        logit: float `[N]` raw logits (validation split).
        y: int `[N]` labels in {0, 1}; both classes needed.

    Raises:
        ValueError: empty input, non-finite logits, or a single class.
    """
    logit = np.asarray(logit, dtype=np.float64).ravel()
    y = np.asarray(y, dtype=np.float64).ravel()
    if len(logit) == 0 or len(logit) != len(y):
        raise ValueError("fit_temperature needs equally long, non-empty logits and labels")
    if not np.isfinite(logit).all():
        raise ValueError("fit_temperature: non-finite logits")
    if y.min() == y.max():
        raise ValueError("fit_temperature: the labels hold a single class; temperature is undefined")
    res = minimize_scalar(lambda lt: _nll(logit, y, math.exp(lt)), bounds=_LOG_T_RANGE, method="bounded",
                          options={"xatol": 1e-6})
    return float(math.exp(res.x))


def reliability_bins(prob: np.ndarray, y: np.ndarray, n_bins: int = ECE_BINS) -> dict[str, np.ndarray]:
    """Equal-width bins of predicted probability over [0, 1].

    Returns {"count": int `[n_bins]`, "mean_prob": float `[n_bins]`, "frac_pos": float
    `[n_bins]`} (NaN where a bin is empty); the last bin includes 1.0.
    """
    prob = np.asarray(prob, dtype=np.float64).ravel()
    y = np.asarray(y, dtype=np.float64).ravel()
    idx = np.clip((prob * n_bins).astype(int), 0, n_bins - 1)
    count = np.bincount(idx, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_prob = np.bincount(idx, weights=prob, minlength=n_bins) / count
        frac_pos = np.bincount(idx, weights=y, minlength=n_bins) / count
    return {"count": count, "mean_prob": mean_prob, "frac_pos": frac_pos}


def expected_calibration_error(prob: np.ndarray, y: np.ndarray, n_bins: int = ECE_BINS) -> float:
    """ECE: sum over equal-width bins of (bin share) x |mean probability - fraction positive|."""
    b = reliability_bins(prob, y, n_bins)
    n = b["count"].sum()
    if n == 0:
        return float("nan")
    keep = b["count"] > 0
    return float(np.sum(b["count"][keep] / n * np.abs(b["mean_prob"][keep] - b["frac_pos"][keep])))


def calibration_report(val_logit: np.ndarray, val_y: np.ndarray, test_logit: np.ndarray,
                       test_y: np.ndarray, threshold: float | None = None) -> dict:
    """Temperature fitted on validation and ECE before / after on validation and test.

    Returns a JSON-ready dict: temperature, val_ece_raw, val_ece_calibrated, test_ece_raw,
    test_ece_calibrated, bins (ECE_BINS), and threshold_calibrated when `threshold` (on the
    raw `sigmoid(logit)` scale) is given.
    """
    from training.metrics import sigmoid

    t = fit_temperature(val_logit, val_y)
    out = {"temperature": t, "bins": ECE_BINS,
           "val_ece_raw": expected_calibration_error(sigmoid(val_logit), val_y),
           "val_ece_calibrated": expected_calibration_error(calibrated_probability(val_logit, t), val_y),
           "test_ece_raw": expected_calibration_error(sigmoid(test_logit), test_y),
           "test_ece_calibrated": expected_calibration_error(calibrated_probability(test_logit, t), test_y),
           "rule": "temperature scaling (one T, NLL on the validation split); calibrated probability = "
                   "sigmoid(logit / temperature); ECE over 10 equal-width bins"}
    if threshold is not None:
        out["threshold_calibrated"] = calibrated_threshold(threshold, t)
    return out


def plot_reliability(curves: dict[str, tuple[np.ndarray, np.ndarray]], path: str | Path, title: str) -> None:
    """PNG reliability diagram: for each name -> (probability `[N]`, labels `[N]`) the
    fraction of positives against the mean predicted probability per bin, with the ECE
    in the legend and the diagonal of perfect calibration."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.6, 4.4))
    ax.plot([0, 1], [0, 1], color="0.6", lw=1, ls="--", label="perfect")
    for name, (prob, y) in curves.items():
        b = reliability_bins(prob, y)
        keep = b["count"] > 0
        ax.plot(b["mean_prob"][keep], b["frac_pos"][keep], marker="o", ms=3,
                label=f"{name} (ECE {expected_calibration_error(prob, y):.3f})")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("mean predicted probability")
    ax.set_ylabel("fraction positive")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7, loc="upper left")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
