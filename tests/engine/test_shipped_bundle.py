"""The shipped demo bundle (resources/models/) and demo cases (resources/demo/), as built by
`cromotex-train build`: every hash re-computed here, every ONNX file opened with onnxruntime,
the demo cases scored in both precisions and compared with the reference outputs stored at
export time, the disclaimer and the metrics the manifest promises. The bundle is committed,
so these always run."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from engine.constants import DEMO_DISCLAIMER, PATHOLOGIES
from engine.inference import Predictor
from engine.io import read_cxr, read_ecg

REPO = Path(__file__).resolve().parents[2]
MODELS = REPO / "resources" / "models"
DEMO = REPO / "resources" / "demo"


@pytest.fixture(scope="module")
def manifest() -> dict:
    return json.loads((MODELS / "manifest.json").read_text())


def test_every_file_is_listed_and_its_sha256_matches(manifest):
    on_disk = {f.name for f in MODELS.iterdir() if f.is_file()} - {"manifest.json", "manifest.json.sig"}
    assert set(manifest["files"]) == on_disk
    for name, digest in manifest["files"].items():
        assert hashlib.sha256((MODELS / name).read_bytes()).hexdigest() == digest, name
    total = sum((MODELS / n).stat().st_size for n in on_disk) + (MODELS / "manifest.json").stat().st_size
    assert total < 60e6, f"bundle is {total / 1e6:.1f} MB"


def test_every_onnx_file_runs_in_onnxruntime(manifest):
    x = np.zeros((2, 12, 1000), np.float32)
    for p in PATHOLOGIES:
        e = manifest["pathologies"][p]["ecg"]
        for f in [e["file"]] + ([e["int8_file"]] if e.get("int8_file") else []):
            sess = ort.InferenceSession(str(MODELS / f), providers=["CPUExecutionProvider"])
            logit, emb = sess.run(["logit", "embedding"], {"ecg": x})
            assert logit.shape == (2, 1) and emb.shape == (2, 256) and np.isfinite(logit).all()
    cxr = {manifest["pathologies"][p]["cxr"]["file"] for p in PATHOLOGIES if "cxr" in manifest["pathologies"][p]}
    for f in cxr:
        sess = ort.InferenceSession(str(MODELS / f), providers=["CPUExecutionProvider"])
        logit, emb = sess.run(["logit", "embedding"], {"cxr": np.zeros((1, 1, 224, 224), np.float32)})
        assert emb.shape == (1, 1024) and np.isfinite(logit).all()


def test_demo_cases_reproduce_reference_outputs_in_both_precisions(manifest):
    ref = json.loads((MODELS / manifest["reference"]).read_text())
    atol = float(ref["atol"])
    default = Predictor(MODELS)
    fp32 = Predictor(MODELS, precision="fp32")
    assert len({c["case"] for c in ref["cases"]}) >= 2
    for case in ref["cases"]:
        ecg = read_ecg(REPO / case["ecg"])
        assert (REPO / case["ecg"]).parent == DEMO
        got = default.predict_ecg(ecg)
        other = fp32.predict_ecg(ecg)
        for p in PATHOLOGIES:
            assert got[p].probability == pytest.approx(case["probabilities"][p], abs=atol)
            assert got[p].demo and got[p].provenance == "phantom"
            assert not got[p].ood
            # int8 and fp32 agree closely (the int8 copies are shipped only when their AUROC change is small)
            assert abs(got[p].probability - other[p].probability) < 0.05
        cx = default.predict_cxr(read_cxr(REPO / case["cxr"]))
        for p, want in case["cxr_probabilities"].items():
            assert cx[p].probability == pytest.approx(want, abs=atol)


def test_manifest_promises(manifest):
    assert manifest["data"] == "phantom" and manifest["demo"] is True
    assert manifest["disclaimer"] == DEMO_DISCLAIMER
    card = (MODELS / "MODEL_CARD.md").read_text().splitlines()[0]
    assert "DEMONSTRATION" in card and "SYNTHETIC" in card and "NOT FOR DIAGNOSIS" in card
    for p in PATHOLOGIES:
        for mod in ("ecg", "cxr"):
            m = manifest["pathologies"][p][mod]["metrics"]
            for k in ("auroc", "auprc", "f1"):
                v, lo, hi = m["test"][k]
                assert 0 <= lo <= v <= hi <= 1, (p, mod, k)
            assert m["n_test"] > 50 and 0 < m["n_test_positive"] < m["n_test"]
        e = manifest["pathologies"][p]["ecg"]
        if e.get("int8_file"):
            assert abs(e["export"]["int8_test_auroc_change"]) <= 0.005
    t = manifest["training"]
    assert t["preset"] == "cpu" and t["phantom"]["subjects"] > 0
    assert {"teacher", "ssl", "export", "evaluate"} <= set(t["stages"])


def test_demo_folder_is_documented_as_synthetic():
    text = (DEMO / "README.md").read_text().lower()
    assert "synthetic" in text and "not" in text
    assert sorted(DEMO.glob("*.hea")) and sorted(DEMO.glob("*_cxr.jpg"))
