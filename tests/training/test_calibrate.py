"""training.calibrate.threshold_band: the bootstrap band of the F1-maximising threshold.
(The whole `calibrate-bundle` runs inside `cromotex-train build` in tests/training/test_build.py.)"""

from __future__ import annotations

import numpy as np

from training.calibrate import threshold_band
from training.metrics import best_f1_threshold


def scores(n: int, separation: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.3).astype(int)
    logit = rng.normal(size=n) + separation * y
    return y, 1.0 / (1.0 + np.exp(-logit))


def test_band_holds_the_threshold():
    for n in (100, 2000):
        y, p = scores(n, 2.0)
        t = best_f1_threshold(y, p)[0]
        band = threshold_band(y, p, t, n_boot=300)
        assert band["low"] <= t <= band["high"] and band["val_threshold"] == t
        assert band["resamples"] == 300 and band["n_val"] == n and band["level"] == 0.95
        assert 0.0 < band["high"] - band["low"] < 0.5


def test_band_is_deterministic_and_widened_to_a_threshold_outside_it():
    y, p = scores(300, 2.0)
    t = best_f1_threshold(y, p)[0]
    a, b = threshold_band(y, p, t, n_boot=200), threshold_band(y, p, t, n_boot=200)
    assert a == b and a["low"] < t < a["high"]
    far = threshold_band(y, p, 0.999, n_boot=200)
    assert far["high"] == 0.999 and far["low"] == a["low"]


def test_no_band_without_both_classes():
    assert threshold_band(np.zeros(50, int), np.linspace(0, 1, 50), 0.5, n_boot=100) is None
