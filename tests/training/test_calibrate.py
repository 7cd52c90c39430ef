"""training.calibrate.threshold_band: the bootstrap band of the F1-maximising threshold.
(The whole `calibrate-bundle` runs inside `cromotex-train build` in tests/training/test_build.py.)"""

from __future__ import annotations

from pathlib import Path

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


def test_model_card_states_the_gate_the_teacher_ood_check_and_every_band():
    """The shipped card carries the section `update_model_card` writes from the manifest, and
    writing it again replaces it rather than adding a second copy."""
    import json

    from training.model_card import TRUST_HEADING, replace_section, trust_section
    bundle = Path(__file__).resolve().parents[2] / "resources" / "models"
    manifest = json.loads((bundle / "manifest.json").read_text(encoding="utf-8"))
    card = (bundle / "MODEL_CARD.md").read_text(encoding="utf-8")
    section = trust_section(manifest)
    assert "\n".join(section).strip() in card
    assert "Real chest films (NIH ChestX-ray14, SIIM) flagged: 5/5" in card
    bands = [line for line in section if line.startswith("| ") and ".onnx" in line]
    assert len(bands) == 6  # ECG and teacher, three pathologies
    again = replace_section(card, TRUST_HEADING, section, before="## Demo cases")
    assert again == card and again.count(TRUST_HEADING) == 1
