"""training.explain_eval: the model-randomisation check (Adebayo et al.) tells a trained
model's occlusion map from that of the same network with randomised weights, and the
pointing-game regions follow the phantom's geometry."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnx")

from engine.bundle import load_bundle, read_verified  # noqa: E402
from engine.io import read_ecg  # noqa: E402
from engine.preprocess import preprocess_ecg  # noqa: E402
from training.explain_eval import (_spearman, ecg_map, randomised_model, region_mask,  # noqa: E402
                                   session_scorers)

REPO = Path(__file__).resolve().parents[2]
ECG = REPO / "tests/data/ecg/wfdb/ptbxl/00001_lr.hea"


def test_randomised_model_changes_the_map_and_the_trained_one_does_not():
    bundle = load_bundle(None)
    raw = read_verified(bundle, bundle.ecg["cardiomegaly"].file)
    window = preprocess_ecg(read_ecg(ECG)).windows[0]
    trained = session_scorers(raw, "ecg", raw=True)
    again = session_scorers(raw, "ecg", raw=True)
    rand = session_scorers(raw, "ecg", raw=True, randomise_seed=0)
    m1, _, _ = ecg_map(lambda b: trained(b)["p"], window)
    m2, _, _ = ecg_map(lambda b: again(b)["p"], window)
    m0, _, _ = ecg_map(lambda b: rand(b)["p"], window)
    assert m1.shape == (12, 1000) and np.isfinite(m0).all()
    assert _spearman(m1, m2) == pytest.approx(1.0)            # same weights: same map
    assert abs(_spearman(m1, m0)) < 0.5                        # randomised: a different map
    assert randomised_model(raw, 0) != raw and randomised_model(raw, 0) == randomised_model(raw, 0)


def test_regions_follow_the_phantom_layout():
    heart, effusion, edema = (region_mask(p) for p in ("cardiomegaly", "pleural_effusion", "edema"))
    assert heart[int(0.6 * 224), int(0.55 * 224)] and not heart[20, 20]
    assert effusion[int(0.75 * 224), int(0.2 * 224)] and effusion[int(0.75 * 224), int(0.8 * 224)]
    assert not effusion[int(0.75 * 224), int(0.5 * 224)]        # not the spine / heart base
    assert edema[int(0.44 * 224), int(0.3 * 224)]
    assert 0.1 < heart.mean() < 0.2 and 0.15 < effusion.mean() < 0.25
