"""training.metrics against sklearn and brute force."""

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, f1_score, roc_auc_score, roc_curve as sk_roc

from training.metrics import auprc, auroc, best_f1_threshold, bootstrap_ci, f1_at, roc_curve, sigmoid


@pytest.mark.parametrize("seed", range(5))
def test_auroc_auprc_match_sklearn_with_ties(seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, 200)
    s = np.round(rng.normal(y * 0.7, 1.0), 1)  # rounding creates ties
    assert auroc(y, s) == pytest.approx(roc_auc_score(y, s), abs=1e-12)
    assert auprc(y, s) == pytest.approx(average_precision_score(y, s), abs=1e-12)
    fpr, tpr, thr = roc_curve(y, s)
    sf, st, _ = sk_roc(y, s, drop_intermediate=False)
    np.testing.assert_allclose(fpr, sf)
    np.testing.assert_allclose(tpr, st)


def test_f1_and_best_threshold_match_brute_force():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 150)
    s = rng.normal(y, 1.0)
    t, f = best_f1_threshold(y, s)
    brute = max(f1_score(y, s >= c) for c in np.unique(s))
    assert f == pytest.approx(brute, abs=1e-12)
    assert f1_at(y, s, t) == pytest.approx(f1_score(y, s >= t), abs=1e-12)


def test_degenerate_cases():
    assert np.isnan(auroc([1, 1, 1], [0.1, 0.2, 0.3]))
    assert np.isnan(auprc([0, 0], [0.1, 0.2]))
    assert auroc([0, 1], [0.1, 0.9]) == 1.0
    assert f1_at([0, 0], [0.1, 0.2], 0.5) == 0.0
    np.testing.assert_allclose(sigmoid(np.array([-1000.0, 0.0, 1000.0])), [0.0, 0.5, 1.0])


def test_bootstrap_ci_is_seeded_and_brackets_value():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 300)
    s = rng.normal(y, 1.0)
    a = bootstrap_ci(y, s, auroc, n_resamples=300, seed=7)
    b = bootstrap_ci(y, s, auroc, n_resamples=300, seed=7)
    assert a == b
    value, lo, hi = a
    assert lo < value < hi and hi - lo < 0.2
