"""Temperature scaling, ECE and the reliability diagram (training.calibration)."""

from __future__ import annotations

import numpy as np
import pytest

from training.calibration import (calibrated_probability, calibrated_threshold, calibration_report,
                                  expected_calibration_error, fit_temperature, plot_reliability,
                                  reliability_bins)
from training.evaluate import evaluate_one
from training.metrics import auroc, sigmoid


def _overconfident(n: int = 4000, scale: float = 3.0, seed: int = 0):
    """Labels drawn from sigmoid(z); logits reported as scale * z (overconfident by `scale`)."""
    rng = np.random.default_rng(seed)
    z = rng.normal(0.0, 1.5, n)
    y = (rng.random(n) < sigmoid(z)).astype(int)
    return scale * z, y


def test_temperature_recovers_the_overconfidence_factor():
    logit, y = _overconfident()
    t = fit_temperature(logit, y)
    assert t == pytest.approx(3.0, rel=0.12)
    assert fit_temperature(*_overconfident(scale=1.0)) == pytest.approx(1.0, rel=0.12)


def test_calibration_lowers_ece_and_keeps_ranking():
    logit, y = _overconfident(seed=1)
    t_logit, t_y = _overconfident(seed=2)
    rep = calibration_report(logit, y, t_logit, t_y, threshold=0.4)
    assert rep["test_ece_calibrated"] < 0.03 < rep["test_ece_raw"]
    assert auroc(t_y, calibrated_probability(t_logit, rep["temperature"])) == pytest.approx(auroc(t_y, t_logit))
    # the mapped threshold makes the same decisions
    thr_c = rep["threshold_calibrated"]
    assert np.array_equal(sigmoid(t_logit) >= 0.4, calibrated_probability(t_logit, rep["temperature"]) >= thr_c)


def test_ece_of_a_perfect_and_a_constant_predictor():
    p = np.array([0.1] * 10 + [0.9] * 10)
    y = np.array([0] * 9 + [1] + [1] * 9 + [0])
    assert expected_calibration_error(p, y) == pytest.approx(0.0, abs=1e-12)
    assert expected_calibration_error(np.full(10, 0.5), np.ones(10)) == pytest.approx(0.5)
    b = reliability_bins(p, y)
    assert b["count"].sum() == 20 and b["count"][1] == 10 and b["count"][9] == 10


def test_single_class_is_refused():
    with pytest.raises(ValueError, match="single class"):
        fit_temperature(np.array([0.1, 2.0]), np.array([1, 1]))


def test_evaluate_one_reports_calibration_and_threshold_mapping():
    logit, y = _overconfident(600, seed=3)
    r = evaluate_one({"val_logit": logit[:300], "val_label": y[:300], "test_logit": logit[300:],
                      "test_label": y[300:]}, n_boot=20)
    c = r["calibration"]
    assert 2.0 < c["temperature"] < 4.5 and c["test_ece_calibrated"] < c["test_ece_raw"]
    assert c["threshold_calibrated"] == pytest.approx(calibrated_threshold(r["threshold"], c["temperature"]))


def test_reliability_png(tmp_path):
    logit, y = _overconfident(500)
    plot_reliability({"raw": (sigmoid(logit), y)}, tmp_path / "r.png", "t")
    assert (tmp_path / "r.png").stat().st_size > 5000
