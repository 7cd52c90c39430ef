"""Temperature-scaled (calibrated) ECG probabilities: the one formula the engine and training share.

The bundle's ECG ONNX models output the **raw logit** (`training/export.py`: output `logit`
`[N, 1]`, no sigmoid in the graph). Training fits one temperature `T > 0` per model on the
validation split (`training.calibration.fit_temperature`, Guo et al. 2017) and the manifest's
ECG entry carries it (`temperature`) with `threshold_calibrated` (docs/bundle.md). The
calibrated probability is `sigmoid(logit / T)`; the threshold is mapped with the same
monotone map, so every decision `sigmoid(logit / T) >= threshold_calibrated` is the decision
`sigmoid(logit) >= threshold` of the uncalibrated model.

A record of W > 1 windows: its raw probability is the mean of the windows' `sigmoid(logit)`
(`engine.inference`), which is not a sigmoid of one logit; its calibrated probability is
`calibrate_probability(raw, T)` = `sigmoid(logit(raw) / T)`, the same monotone map applied
to the record's raw probability (so the record's decision is unchanged too); each window's
own calibrated probability is `sigmoid(logit_w / T)`. With W = 1 both are `sigmoid(logit / T)`.

All arithmetic in float64; `logit(p)` of a probability that rounded to 0 or 1 is clipped
to the float64 logit of 1e-300 / 1 - 2**-53 (finite), which keeps the map monotone.
"""

from __future__ import annotations

import math

import numpy as np

from engine.numeric import sigmoid

#: Temperatures a bundle may state (the range `training.calibration.fit_temperature` searches).
TEMPERATURE_RANGE: tuple[float, float] = (0.05, 20.0)
#: Largest |threshold_calibrated - calibrated_threshold(threshold, T)| a manifest may show.
THRESHOLD_TOLERANCE: float = 1e-6
#: Probabilities are clipped to [_P_MIN, _P_MAX] before taking their logit.
_P_MIN, _P_MAX = 1e-300, 1.0 - 2.0 ** -53


def calibrated_probability(logit: np.ndarray, temperature: float) -> np.ndarray:
    """float64, shape of `logit`: `sigmoid(logit / temperature)` (logit: raw model output)."""
    return sigmoid(np.asarray(logit, dtype=np.float64) / float(temperature))


def logit_of(probability: np.ndarray) -> np.ndarray:
    """float64 `log(p / (1 - p))` of probabilities in [0, 1] (clipped, so always finite)."""
    p = np.clip(np.asarray(probability, dtype=np.float64), _P_MIN, _P_MAX)
    return np.log(p) - np.log1p(-p)


def calibrate_probability(probability: np.ndarray, temperature: float) -> np.ndarray:
    """float64: the raw probability `p` mapped to `sigmoid(logit(p) / temperature)` (monotone)."""
    return calibrated_probability(logit_of(probability), temperature)


def calibrated_threshold(threshold: float, temperature: float) -> float:
    """The threshold on `sigmoid(logit / T)` that makes the same decisions as `threshold` on
    `sigmoid(logit)` (0 < threshold < 1). Same formula as the bundle builder's."""
    t = min(max(float(threshold), 1e-12), 1.0 - 1e-12)
    return float(1.0 / (1.0 + math.exp(-math.log(t / (1.0 - t)) / temperature)))


def temperature_problem(temperature: object) -> str | None:
    """Why `temperature` (a manifest value) is not usable, or None when it is a finite number
    within `TEMPERATURE_RANGE`."""
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)):
        return f"must be a number, got {temperature!r}"
    low, high = TEMPERATURE_RANGE
    # slack of 1e-9 (relative): the fit searches log(T), and exp(log(0.05)) need not be 0.05 exactly
    if not math.isfinite(temperature) or not (low * (1 - 1e-9) <= temperature <= high * (1 + 1e-9)):
        return f"= {temperature!r} is not a finite temperature within {low:g}-{high:g}"
    return None
