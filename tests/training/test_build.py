"""`cromotex-train build` and `ablation` end to end on a tiny phantom (tiny preset, one step
per epoch): a bundle the engine loads and verifies, reference outputs it reproduces, demo
cases, model card, resumability; ablation tables over two seeds."""

import json
from pathlib import Path

import numpy as np
import pytest

from engine.bundle import load_bundle, sha256_file
from engine.constants import DEMO_DISCLAIMER, PATHOLOGIES
from engine.inference import Predictor
from engine.io import read_cxr, read_ecg

FAST = ["--set", "teacher.epochs=1", "--set", "ssl.epochs=1", "--set", "align.epochs=1",
        "--set", "finetune.epochs=1", "--set", "max_steps_per_epoch=1"]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """The built bundle, signed with a throwaway site key that a temporary settings folder
    trusts (its trusted_keys/ folder, as a site would set it up)."""
    from training.build import main as build_main
    from training.cohort.build import main as cohort_main
    from training.keys import keygen_main
    from training.phantom.cli import main as phantom_main
    root = tmp_path_factory.mktemp("build")
    assert keygen_main(["--out", str(root / "keys"), "--name", "test-site"]) == 0
    (root / "config" / "trusted_keys").mkdir(parents=True)
    (root / "config" / "trusted_keys" / "test-site.pub").write_bytes(
        (root / "keys" / "test-site-ed25519.pub").read_bytes())
    assert phantom_main(["--subjects", "45", "--seed", "2", "--out", str(root / "ph"), "--quiet",
                         "--workers", "1"]) == 0
    assert cohort_main(["--mimic-root", str(root / "ph"), "--out", str(root / "co"), "-q"]) == 0
    argv = ["--preset", "tiny", "--cohort", str(root / "co"), "--out", str(root / "bundle"),
            "--work", str(root / "work"), "--demo-out", str(root / "demo"), "--results", str(root / "results"),
            "--no-progress", "--signing-key", str(root / "keys" / "test-site-ed25519.pem"), *FAST]
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CROMOTEX_REVIEW_CONFIG_DIR", str(root / "config"))
        assert build_main(argv) == 0
        yield {"root": root, "argv": argv}


def test_bundle_loads_verifies_and_describes_its_training(built):
    root = built["root"]
    b = load_bundle(root / "bundle")
    assert b.data == "phantom" and b.demo and b.disclaimer == DEMO_DISCLAIMER
    m = b.manifest
    listed = set(m["files"])
    on_disk = {f.name for f in (root / "bundle").iterdir()} - {"manifest.json", "manifest.json.sig"}
    assert listed == on_disk and "MODEL_CARD.md" in listed and "reference_outputs.json" in listed
    for name, digest in m["files"].items():
        assert sha256_file(root / "bundle" / name) == digest
    for p in PATHOLOGIES:
        e = m["pathologies"][p]["ecg"]
        assert 0 < e["threshold"] < 1 and e["ood_cutoff"] > 0
        auc, lo, hi = e["metrics"]["test"]["auroc"]
        assert 0 <= auc <= 1 and e["metrics"]["n_test"] > 0
        if e["metrics"]["n_test_positive"] not in (0, e["metrics"]["n_test"]):  # both classes: a CI exists
            assert lo <= auc <= hi
        assert m["pathologies"][p]["cxr"]["file"] == "cxr_teacher.onnx"
        assert m["pathologies"][p]["cxr"]["output_index"] == PATHOLOGIES.index(p)
        with np.load(root / "bundle" / e["embedding_stats"]) as z:
            assert z["mean"].shape == (256,) and z["precision"].shape == (256, 256)
            assert np.all(np.linalg.eigvalsh(z["precision"]) > 0)
    t = m["training"]
    assert t["preset"] == "tiny" and t["config"]["edema"]["pathology"] == "edema"
    assert {"teacher", "ssl", "align_edema", "finetune_edema", "export", "evaluate"} <= set(t["stages"])
    assert t["cpu_differences"]["ecg.ff_dim"]["why"]
    assert t["phantom"]["subjects"] == 45 and t["overrides"]["max_steps_per_epoch"] == "1"
    assert m["code_version"].startswith("0.1.0")
    from engine.signing import key_id, load_public_key
    kid = key_id(load_public_key(root / "keys" / "test-site-ed25519.pub"))
    assert b.signer == f"test-site ({kid})"


def test_bundle_signed_by_a_key_the_workstation_does_not_trust_is_refused(built, monkeypatch, tmp_path):
    from engine.errors import BundleError
    monkeypatch.setenv("CROMOTEX_REVIEW_CONFIG_DIR", str(tmp_path / "other-workstation"))
    with pytest.raises(BundleError, match=r"manifest\.json\.sig: signed with key [0-9a-f]{16}, which is "
                                          r"not in the trust list \(trusted: CroMoTEX project"):
        load_bundle(built["root"] / "bundle")


def test_engine_reproduces_reference_outputs_of_demo_cases(built):
    root = built["root"]
    pred = Predictor(root / "bundle")
    ref = pred.bundle.reference
    assert ref["cases"]
    for case in ref["cases"]:
        preds = pred.predict_ecg(read_ecg(case["ecg"]))
        for p, want in case["probabilities"].items():
            assert preds[p].probability == pytest.approx(want, abs=ref["atol"])
            assert not preds[p].ood
        cx = pred.predict_cxr(read_cxr(case["cxr"]))
        for p, want in case["cxr_probabilities"].items():
            assert cx[p].probability == pytest.approx(want, abs=ref["atol"])
    # demo cases: test-split phantom pairs named by the rule that picked them
    from training.data import load_cohort
    co = load_cohort(root / "co")
    names = {c["case"]: c["labels"] for c in ref["cases"]}
    assert "case2_no_finding" in names and not any(names["case2_no_finding"].values())
    full = [lab for n, lab in names.items() if n.startswith("case1_")]
    has_full = any(all(co.labels[p][i] for p in PATHOLOGIES) for i in co.indices("test"))
    assert bool(full) == has_full and all(all(lab.values()) for lab in full)
    readme = (root / "demo" / "README.md").read_text()
    assert "synthetic" in readme.lower()
    header = (root / "demo" / "case2_no_finding_ecg.hea").read_text().splitlines()
    assert header[0].startswith("case2_no_finding_ecg ") and header[1].startswith("case2_no_finding_ecg.dat ")


def test_model_card_first_line_and_contents(built):
    card = (built["root"] / "bundle" / "MODEL_CARD.md").read_text()
    first = card.splitlines()[0]
    assert "DEMONSTRATION" in first and "SYNTHETIC" in first and "NOT FOR DIAGNOSIS" in first
    for text in ("cromotex-train cohort --mimic-root", "--preset paper", "cromotex-train evaluate --onnx",
                 "beta_mode", "Known failure modes", "ecg.ff_dim", "teacher.multi_label",
                 "## Signature", "cromotex-train keygen", "trusted_keys/",
                 "## Saliency maps", "cromotex-train explain-eval"):
        assert text in card, text
    from engine.signing import fingerprint, key_id, load_public_key
    pub = load_public_key(built["root"] / "keys" / "test-site-ed25519.pub")
    assert f"by a site key (not the CroMoTEX project key): key id `{key_id(pub)}`" in card
    assert fingerprint(pub) in card


def test_thresholds_in_onnx_metadata_match_the_manifest(built):
    import onnx
    root = built["root"]
    m = json.loads((root / "bundle" / "manifest.json").read_text())
    for p in PATHOLOGIES:
        e = m["pathologies"][p]["ecg"]
        for f in [e["file"]] + ([e["int8_file"]] if "int8_file" in e else []):
            meta = {x.key: x.value for x in onnx.load(str(root / "bundle" / f)).metadata_props}
            assert json.loads(meta["cromotex.threshold"]) == [pytest.approx(e["threshold"])]


def test_ecg_probabilities_thresholds_and_bands_are_calibrated(built):
    """build fits a temperature per ECG model on validation; calibrate-bundle bootstraps the
    borderline band on the calibrated probabilities; the engine shows them and the card says so."""
    from engine.calibration import calibrated_threshold
    pred = Predictor(built["root"] / "bundle")
    m = pred.bundle.manifest["pathologies"]
    calibrated = [p for p in PATHOLOGIES if m[p]["ecg"].get("temperature") is not None]
    assert calibrated
    case = pred.bundle.reference["cases"][0]
    preds = pred.predict_ecg(read_ecg(case["ecg"]))
    for p in calibrated:
        e = m[p]["ecg"]
        assert e["threshold_calibrated"] == pytest.approx(calibrated_threshold(e["threshold"], e["temperature"]),
                                                          abs=1e-12)
        band = e.get("borderline")
        if band:
            assert band["scale"] == "calibrated" and band["low"] <= e["threshold_calibrated"] <= band["high"]
            assert pred.bundle.ecg[p].band == (band["low"], band["high"])
        assert preds[p].temperature == e["temperature"] and preds[p].threshold == e["threshold_calibrated"]
    card = (built["root"] / "bundle" / "MODEL_CARD.md").read_text()
    assert card.count("## Calibrated probabilities") == 1
    assert "The ECG probabilities are **calibrated** by temperature scaling" in card


def test_results_written(built):
    res = built["root"] / "results"
    for f in ("metrics.md", "metrics.json", "training_curves.png", "roc_edema.png", "embedding_edema.png"):
        assert (res / f).is_file() and (res / f).stat().st_size > 100, f


def test_build_resumes_without_retraining(built):
    from training.build import main as build_main
    work = built["root"] / "work"
    before = {f.name: f.read_text() for f in work.glob("*.done")}
    assert build_main(built["argv"]) == 0
    after = {f.name: f.read_text() for f in work.glob("*.done")}
    assert before == after  # every stage was skipped; markers untouched
    load_bundle(built["root"] / "bundle")


def test_ablation_tables_over_two_seeds(built):
    from training.ablation import main as ablation_main
    root = built["root"]
    out = root / "ablation"
    assert ablation_main(["--preset", "tiny", "--cohort", str(root / "co"), "--work", str(root / "work"),
                          "--out", str(out), "--seeds", "0", "1", "--pathologies", "cardiomegaly",
                          "--rows", "direct_ecg", "cromotex", "direct_cxr", "linear", "ssl_finetune", "--n-boot", "50",
                          "--no-progress", *FAST]) == 0
    res = json.loads((out / "ablation.json").read_text())
    rows = res["rows"]
    assert set(rows) == {"direct_ecg", "cromotex", "direct_cxr", "linear", "ssl_finetune"}
    # the control row fine-tunes the SSL encoder without an alignment stage
    ssl_ft = root / "work" / "ablation" / "seed1" / "ssl_finetune"
    assert (ssl_ft / "finetune_cardiomegaly.done").is_file() and not (ssl_ft / "align_cardiomegaly").exists()
    assert json.loads((ssl_ft / "finetune_cardiomegaly" / "history.json").read_text())
    assert len(res["difference_vs_ssl_finetune"]["cardiomegaly"]) == 3
    assert len(rows["cromotex"]["cardiomegaly"]["runs"]) == 2 and len(rows["direct_cxr"]["cardiomegaly"]["runs"]) == 1
    agg = rows["direct_ecg"]["cardiomegaly"]["aggregate"]["auroc"]
    assert agg["mean"] == pytest.approx(np.mean(agg["values"])) and len(agg["values"]) == 2
    # seed 0 of the full row is the build's own run (same config), not a retrained copy
    assert not (root / "work" / "ablation" / "seed0" / "cromotex").exists()
    assert (root / "work" / "ablation" / "seed1" / "cromotex" / "finetune_cardiomegaly.done").is_file()
    assert not (root / "work" / "ablation" / "seed0" / "direct_ecg" / "align_cardiomegaly").exists()
    d = res["difference"]["cardiomegaly"]
    assert len(d) == 3
    md = (out / "ablation.md").read_text()
    assert "Table 1" in md and "Table 2" in md and "Direct ECG classification" in md
    assert (out / "roc_cardiomegaly.png").is_file() and (out / "embedding_cardiomegaly_cromotex.png").is_file()
    # --only-finished trains nothing: finished runs are tabulated, the others listed as not run
    markers = sorted(p.name for p in (root / "work").rglob("*.done"))
    out2 = root / "ablation_collect"
    assert ablation_main(["--preset", "tiny", "--cohort", str(root / "co"), "--work", str(root / "work"),
                          "--out", str(out2), "--seeds", "0", "1", "2", "--pathologies", "cardiomegaly",
                          "--rows", "direct_ecg", "cromotex", "supcon", "--n-boot", "50", "--no-progress",
                          "--only-finished", *FAST]) == 0
    assert sorted(p.name for p in (root / "work").rglob("*.done")) == markers
    res2 = json.loads((out2 / "ablation.json").read_text())
    assert res2["rows"]["direct_ecg"]["cardiomegaly"]["runs"] == rows["direct_ecg"]["cardiomegaly"]["runs"]
    assert set(res2["not_run"]) == {"direct_ecg/cardiomegaly/seed2", "cromotex/cardiomegaly/seed2",
                                    "supcon/cardiomegaly/seed0", "supcon/cardiomegaly/seed1",
                                    "supcon/cardiomegaly/seed2"}
    md2 = (out2 / "ablation.md").read_text()
    assert "| SupCon alignment | not run |" in md2 and "(n=2)" in md2
