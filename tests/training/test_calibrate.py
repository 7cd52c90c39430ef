"""training.calibrate.threshold_band: the bootstrap band of the F1-maximising threshold.
(The whole `calibrate-bundle` runs inside `cromotex-train build` in tests/training/test_build.py.)"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

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


# ------------------------------------------------------------------ calibrate-bundle, calibrated models

#: Temperatures written into a copy of the shipped bundle's manifest (as `build` writes them).
TEMPERATURES = {"cardiomegaly": 1.7, "edema": 0.6, "pleural_effusion": 2.5}
MODELS = Path(__file__).resolve().parents[2] / "resources" / "models"


@pytest.fixture(scope="module")
def cohort(tmp_path_factory) -> Path:
    """A 45-subject phantom v2 cohort (as tests/training/test_stages.py makes it)."""
    from training.cohort import build as cohort_build
    from training.phantom import cli as phantom_cli
    root = tmp_path_factory.mktemp("calibrate")
    assert phantom_cli.main(["--subjects", "45", "--seed", "2", "--out", str(root / "phantom"), "--quiet",
                             "--workers", "1"]) == 0
    assert cohort_build.main(["--mimic-root", str(root / "phantom"), "--out", str(root / "cohort"), "-q"]) == 0
    return root / "cohort"


def _bundle_copy(dst: Path, temperatures: dict[str, float] | None) -> Path:
    """A full copy (not hard links: calibrate-bundle rewrites files) of the shipped bundle without
    its teacher entries (the ECG bands are under test), with `temperatures` as build writes them."""
    import json
    import shutil

    from training.calibration import calibrated_threshold
    shutil.copytree(MODELS, dst)
    m = json.loads((dst / "manifest.json").read_text(encoding="utf-8"))
    for p, entry in m["pathologies"].items():
        entry.pop("cxr", None)
        if temperatures:
            e = entry["ecg"]
            t = temperatures[p]
            e.update(temperature=t, threshold_calibrated=calibrated_threshold(e["threshold"], t),
                     calibration={"rule": "test", "bins": 10, "val_ece_raw": 0.2, "val_ece_calibrated": 0.05,
                                  "test_ece_raw": 0.21, "test_ece_calibrated": 0.06})
    (dst / "manifest.json").write_text(json.dumps(m, indent=1), encoding="utf-8")
    return dst


def test_calibrate_bundle_computes_the_bands_on_the_calibrated_probabilities(cohort, tmp_path):
    """The same bootstrap on sigmoid(logit / T): the same records chosen (the validation threshold
    is the raw one mapped with T), the band around threshold_calibrated and marked calibrated, the
    engine uses it as written; the model card says the probabilities are calibrated, with T and ECE."""
    import json

    from engine.bundle import load_bundle
    from engine.calibration import calibrate_probability
    from engine.inference import Predictor
    from engine.signing import generate_keypair, load_public_key
    from engine.trust import load_trust
    from training.calibrate import CALIBRATION_HEADING, calibrate_bundle
    key, pub = generate_keypair(tmp_path / "keys", "site")
    raw_dir = _bundle_copy(tmp_path / "raw", None)
    cal_dir = _bundle_copy(tmp_path / "cal", TEMPERATURES)
    calibrate_bundle(raw_dir, cohort, key)
    calibrate_bundle(cal_dir, cohort, key)
    trust = load_trust(site=False)
    trust.add(load_public_key(pub), "site", "test")
    raw_m = json.loads((raw_dir / "manifest.json").read_text())["pathologies"]
    cal_m = json.loads((cal_dir / "manifest.json").read_text())["pathologies"]
    bundle = load_bundle(cal_dir, trust)
    n_bands = 0
    for p, t in TEMPERATURES.items():
        e, band_r, band_c = cal_m[p]["ecg"], raw_m[p]["ecg"].get("borderline"), cal_m[p]["ecg"].get("borderline")
        assert (band_r is None) == (band_c is None)
        if band_c is None:  # this tiny validation split lacks a class
            continue
        n_bands += 1
        assert band_r["scale"] == "raw" and band_c["scale"] == "calibrated"
        assert band_c["resamples"] == band_r["resamples"] and band_c["n_val"] == band_r["n_val"]
        assert band_c["val_threshold"] == pytest.approx(
            float(calibrate_probability(band_r["val_threshold"], t)), abs=1e-9)
        assert band_c["low"] <= e["threshold_calibrated"] <= band_c["high"]
        assert float(calibrate_probability(band_r["low"], t)) == pytest.approx(band_c["low"], abs=1e-3)
        assert float(calibrate_probability(band_r["high"], t)) == pytest.approx(band_c["high"], abs=1e-3)
        assert bundle.ecg[p].band == (band_c["low"], band_c["high"])
        assert bundle.ecg[p].temperature == t
    assert n_bands >= 2
    assert Predictor(bundle, threads=1, parallel_models=False).describe()["calibrated"] is True
    card = (cal_dir / "MODEL_CARD.md").read_text()
    assert card.count(CALIBRATION_HEADING) == 1
    assert "The ECG probabilities are **calibrated** by temperature scaling" in card
    for p, t in TEMPERATURES.items():
        e = cal_m[p]["ecg"]
        assert (f"| {p} | {t:.3f} | {e['threshold']:.3f} -> {e['threshold_calibrated']:.3f} | "
                "0.210 -> 0.060 |") in card
    raw_card = (raw_dir / "MODEL_CARD.md").read_text()
    assert "The ECG probabilities are **uncalibrated**" in raw_card
