"""training.export: ONNX parity on real preprocessed records, metadata, int8 drift, loud failure."""

import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch

from engine.constants import preprocessing_constants
from training import export as ex
from training.models import DenseNet121, EcgClassifier, EcgEncoder, MlpClassifier

DATA = Path(__file__).resolve().parents[1] / "data"
ECG_FILES = [DATA / "ecg/wfdb/ptbxl/00001_lr.hea", DATA / "ecg/wfdb/ludb/1.hea"]


@pytest.fixture(scope="module")
def ecg_records():
    x = ex.records_from_files(ECG_FILES, "ecg")
    assert x.shape == (2, 12, 1000) and x.dtype == np.float32
    return x


def _ecg_model():
    torch.manual_seed(0)
    return EcgClassifier(EcgEncoder(ff_dim=64), MlpClassifier(hidden=32)).eval()


def test_ecg_export_matches_torch_with_metadata_and_int8(tmp_path, ecg_records):
    model = _ecg_model()
    rep = ex.export_ecg(model, tmp_path / "ecg_edema.onnx", "edema", 0.37, ecg_records, data="phantom",
                        bundle_id="test-bundle", int8=True)
    assert rep.max_abs_logit_diff <= ex.PARITY_ATOL
    sess = ort.InferenceSession(str(tmp_path / "ecg_edema.onnx"), providers=["CPUExecutionProvider"])
    assert [i.name for i in sess.get_inputs()] == ["ecg"]
    assert [o.name for o in sess.get_outputs()] == ["logit", "embedding"]
    meta = sess.get_modelmeta().custom_metadata_map
    assert json.loads(meta["cromotex.preprocessing"]) == preprocessing_constants()
    assert json.loads(meta["cromotex.pathologies"]) == ["edema"]
    assert json.loads(meta["cromotex.threshold"]) == [0.37]
    assert meta["cromotex.data"] == "phantom" and meta["cromotex.bundle_id"] == "test-bundle"
    batch = np.concatenate([ecg_records] * 3)  # dynamic batch: 6 records
    logit, emb = sess.run(None, {"ecg": batch})
    with torch.no_grad():
        ref_logit, ref_emb = model(torch.from_numpy(batch))
    assert logit.shape == (6, 1) and emb.shape == (6, 256)
    assert np.max(np.abs(logit - ref_logit.numpy())) <= 1e-4
    # int8 copy: written, same metadata, measured drift small
    q = ort.InferenceSession(rep.int8_path, providers=["CPUExecutionProvider"])
    assert q.get_modelmeta().custom_metadata_map["cromotex.bundle_id"] == "test-bundle"
    q_logit, _ = q.run(None, {"ecg": ecg_records})
    assert rep.int8_max_abs_logit_diff == pytest.approx(float(np.max(np.abs(q_logit - logit[:2]))), abs=1e-6)
    assert rep.int8_max_abs_prob_diff < 0.05


def test_parity_failure_raises_and_writes_nothing(tmp_path, ecg_records, monkeypatch):
    real = ex._run_ort

    def drifting(*args, **kwargs):
        logit, emb = real(*args, **kwargs)
        return logit + 1e-3, emb

    monkeypatch.setattr(ex, "_run_ort", drifting)
    with pytest.raises(ex.ExportParityError, match="differs from torch"):
        ex.export_ecg(_ecg_model(), tmp_path / "bad.onnx", "edema", 0.5, ecg_records)
    assert not (tmp_path / "bad.onnx").exists()


def test_cxr_teacher_export_on_a_real_image(tmp_path):
    x = ex.records_from_files([DATA / "cxr/png/nih/00000001_000.png"], "cxr")
    assert x.shape == (1, 1, 224, 224) and -1024 <= x.min() and x.max() <= 1024
    torch.manual_seed(0)
    teacher = DenseNet121(num_classes=3).eval()
    paths = ["cardiomegaly", "edema", "pleural_effusion"]
    rep = ex.export_cxr(teacher, tmp_path / "cxr_teacher.onnx", paths, [0.5, 0.4, 0.3], x)
    assert rep.max_abs_logit_diff <= ex.PARITY_ATOL
    sess = ort.InferenceSession(str(tmp_path / "cxr_teacher.onnx"), providers=["CPUExecutionProvider"])
    logit, emb = sess.run(["logit", "embedding"], {"cxr": x})
    assert logit.shape == (1, 3) and emb.shape == (1, 1024)
    assert json.loads(sess.get_modelmeta().custom_metadata_map["cromotex.pathologies"]) == paths


def test_bad_metadata_is_refused():
    with pytest.raises(ex.CromotexError, match="phantom"):
        ex.metadata(["edema"], [0.5], "synthetic", "x")
