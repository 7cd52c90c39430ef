"""engine.inference on real onnxruntime sessions of a tiny bundle whose numbers are
recomputed independently in numpy (bundle_factory.TinyEcg / TinyCxr)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from bundle_factory import (REPO, cxr_model, ecg_models, make_bundle, synthetic_windows,
                            white_noise_windows)

from engine.constants import DEMO_DISCLAIMER, PATHOLOGIES
from engine.errors import InferenceError
from engine.inference import Predictor, sigmoid
from engine.io import read_cxr, read_ecg
from engine.preprocess import preprocess_cxr, preprocess_ecg
from engine.quality import assess_quality
from engine.records import EcgRecord, Source

ECG_FILES = ("tests/data/ecg/wfdb/ptb_diagnostic/s0010_re.hea", "tests/data/ecg/wfdb/ptbxl/00001_lr.hea",
             "tests/data/ecg/wfdb/ludb/1.hea", "tests/data/ecg/wfdb_mat/cinc2021/E07505.hea",
             "tests/data/ecg/dicom/pydicom_waveform_ecg.dcm")
CXR_FILES = ("tests/data/cxr/png/nih/00000001_000.png",)
PTB = REPO / "tests/data/ecg/wfdb/ptb_diagnostic/s0010_re.hea"


@pytest.fixture(scope="module")
def bundle_dir(tmp_path_factory) -> Path:
    return make_bundle(tmp_path_factory.mktemp("b") / "bundle", reference_ecgs=ECG_FILES,
                       reference_cxrs=CXR_FILES)


@pytest.fixture(scope="module")
def predictor(bundle_dir) -> Predictor:
    return Predictor(bundle_dir)


def noise_record(seed: int = 0, seconds: float = 10.0, fs: float = 500.0) -> EcgRecord:
    """12 leads of Gaussian white noise (1 mV rms): nothing like an ECG."""
    rng = np.random.default_rng(seed)
    sig = rng.normal(size=(12, int(seconds * fs))).astype(np.float32)
    return EcgRecord(signal=sig, fs=fs, leads=("I", "II", "III", "aVR", "aVL", "aVF",
                                                "V1", "V2", "V3", "V4", "V5", "V6"),
                     source=Source("white-noise", "synthetic"))


def test_sample_files_match_the_bundles_reference_outputs(predictor):
    cases = predictor.bundle.reference["cases"]
    ecg_cases = [c for c in cases if "ecg" in c]
    assert [c["ecg"] for c in ecg_cases] == list(ECG_FILES)
    for case in ecg_cases:
        preds = predictor.predict_ecg(read_ecg(REPO / case["ecg"]))
        assert tuple(preds) == PATHOLOGIES
        for p, v in preds.items():
            assert v.probability == pytest.approx(case["probabilities"][p], abs=1e-5), (case, p)
            assert v.positive == (v.probability >= v.threshold)
            assert v.model_name == f"ecg_{p}.onnx" and v.modality == "ecg"


def test_38s_ptb_record_is_three_windows_and_probability_is_their_mean(predictor):
    record = read_ecg(PTB)
    assert record.duration_s == pytest.approx(38.4, abs=0.01)
    ecg_input = preprocess_ecg(record)
    assert ecg_input.windows.shape == (3, 12, 1000)
    assert ecg_input.report["window_starts_s"] == [0.0, 10.0, 20.0]
    preds = predictor.predict_ecg(record)
    for p, m in ecg_models().items():
        logits, embs = m.forward(ecg_input.windows)
        window_probs = 1 / (1 + np.exp(-logits))
        v = preds[p]
        assert len(v.window_probabilities) == 3
        np.testing.assert_allclose(v.window_probabilities, window_probs, atol=2e-6)
        assert v.probability == pytest.approx(float(np.mean(v.window_probabilities)), abs=1e-15)
        np.testing.assert_allclose(v.embedding, embs.mean(axis=0), atol=2e-6)
        assert v.embedding.dtype == np.float32 and v.embedding.shape == (256,)
    # the three windows really differ, so the mean is not trivially one of them
    assert len(set(preds["edema"].window_probabilities)) == 3


def test_quality_flags_come_from_engine_quality(predictor):
    record = read_ecg(PTB)
    expected = assess_quality(record, preprocess_ecg(record))
    assert all(v.quality == expected for v in predictor.predict_ecg(record).values())


def test_ood_fires_on_white_noise_and_not_on_real_records(predictor):
    for seed in range(3):
        preds = predictor.predict_ecg(noise_record(seed))
        assert all(v.ood and v.ood_distance > v.ood_cutoff for v in preds.values()), preds
    for rel in ECG_FILES:
        preds = predictor.predict_ecg(read_ecg(REPO / rel))
        assert not any(v.ood for v in preds.values()), rel
        assert all(0 < v.ood_distance < v.ood_cutoff for v in preds.values())


def test_ood_on_model_inputs_uses_manifest_statistics(predictor):
    scores = predictor.predict_ecg_inputs(white_noise_windows(2, 1))
    preds = predictor.ecg_predictions(scores)
    stats = predictor.bundle.ecg["edema"].stats
    emb = scores["edema"].embeddings.astype(np.float64).mean(axis=0)
    d = emb - stats.mean
    assert preds["edema"].ood_distance == pytest.approx(float(np.sqrt(d @ stats.precision @ d)),
                                                        rel=1e-9)
    assert preds["edema"].ood_cutoff == stats.cutoff


def test_deterministic_across_runs_and_predictor_instances(bundle_dir, predictor):
    record = read_ecg(PTB)
    a = predictor.predict_ecg(record)
    b = predictor.predict_ecg(record)
    c = Predictor(bundle_dir).predict_ecg(record)
    for p in PATHOLOGIES:
        for other in (b, c):
            assert other[p].probability == a[p].probability
            assert other[p].window_probabilities == a[p].window_probabilities
            assert other[p].embedding.tobytes() == a[p].embedding.tobytes()
            assert other[p].ood_distance == a[p].ood_distance


def test_tiny_model_outputs_do_not_depend_on_batch_composition_or_chunking(bundle_dir, predictor):
    # (true of these tiny graphs; a Transformer's GEMMs differ in the last bits with the
    # batch size, which is why the CLI runs each record alone by default)
    x = synthetic_windows(7, seed=5)
    together = predictor.predict_ecg_inputs(x)
    chunked = Predictor(bundle_dir, max_batch=3).predict_ecg_inputs(x)
    for i in (0, 4, 6):
        alone = predictor.predict_ecg_inputs(x[i:i + 1])
        for p in PATHOLOGIES:
            assert alone[p].logits[0] == together[p].logits[i] == chunked[p].logits[i]
            assert alone[p].embeddings[0].tobytes() == together[p].embeddings[i].tobytes()


def test_demo_bundle_marks_every_prediction(predictor, bundle_dir, tmp_path):
    preds = predictor.predict_ecg(read_ecg(PTB))
    assert all(v.demo and v.provenance == "phantom" for v in preds.values())
    assert predictor.describe()["disclaimer"] == DEMO_DISCLAIMER
    site = Predictor(make_bundle(tmp_path / "mimic", demo=False, data="mimic", cxr=False))
    preds = site.predict_ecg(read_ecg(PTB))
    assert not any(v.demo for v in preds.values())
    assert all(v.provenance == "mimic" for v in preds.values())
    assert site.describe()["disclaimer"] is None
    with pytest.raises(InferenceError, match="no chest X-ray teacher"):
        site.predict_cxr(read_cxr(REPO / CXR_FILES[0]))


def test_cxr_teacher_predictions_match_reference(predictor):
    case = next(c for c in predictor.bundle.reference["cases"] if "cxr" in c)
    image = read_cxr(REPO / case["cxr"])
    preds = predictor.predict_cxr(image)
    assert tuple(preds) == PATHOLOGIES
    logits, emb = cxr_model().forward(preprocess_cxr(image)[None])
    for i, (p, v) in enumerate(preds.items()):
        assert v.probability == pytest.approx(case["cxr_probabilities"][p], abs=1e-5)
        assert v.probability == pytest.approx(float(sigmoid(logits[0, i])), abs=1e-5)
        assert v.modality == "cxr" and v.demo and v.embedding.shape == (1024,)
        np.testing.assert_allclose(v.embedding, emb[0], atol=1e-5)


def test_wrong_input_shape_is_an_inference_error(predictor):
    with pytest.raises(InferenceError, match=r"\[N, 12, 1000\]"):
        predictor.predict_ecg_inputs(np.zeros((2, 12, 500), np.float32))
    with pytest.raises(InferenceError, match=r"\[1, 224, 224\]"):
        predictor.predict_cxr_input(np.zeros((224, 224), np.float32))


def test_int8_models_are_used_when_present_and_stay_close(tmp_path, bundle_dir):
    d = make_bundle(tmp_path / "q", int8=True)
    auto, fp32 = Predictor(d), Predictor(d, precision="fp32")
    assert auto.precision == "int8" and fp32.precision == "fp32"
    assert auto.ecg_files["edema"] == "ecg_edema.int8.onnx"
    x = synthetic_windows(4, seed=9)
    qa, fa = auto.predict_ecg_inputs(x), fp32.predict_ecg_inputs(x)
    for p in PATHOLOGIES:
        np.testing.assert_allclose(qa[p].probabilities, fa[p].probabilities, atol=0.02)
    with pytest.raises(Exception, match="no int8"):
        Predictor(bundle_dir, precision="int8")


def test_cuda_device(bundle_dir):
    if "CUDAExecutionProvider" in ort.get_available_providers():
        assert Predictor(bundle_dir, device="cuda").describe()["device"] == "cuda"
    else:
        with pytest.raises(InferenceError, match="onnxruntime-gpu"):
            Predictor(bundle_dir, device="cuda")
        assert Predictor(bundle_dir, device="auto").describe()["device"] == "cpu"


# --------------------------------------------------------------------------- the shipped bundle
SHIPPED = REPO / "resources" / "models"
needs_shipped = pytest.mark.skipif(
    not (SHIPPED / "manifest.json").exists(),
    reason="the shipped bundle resources/models/ is not committed yet (these tests must run "
           "once it is)")


@pytest.fixture(scope="module")
def shipped() -> Predictor:
    return Predictor()  # default location, fully verified


@needs_shipped
def test_shipped_bundle_reproduces_its_reference_outputs(shipped):
    ref = shipped.bundle.reference
    assert ref is not None and ref["cases"], "the shipped bundle must carry reference outputs"
    atol = float(ref.get("atol", 1e-5))
    checked = 0
    for case in ref["cases"]:
        if case.get("ecg"):
            preds = shipped.predict_ecg(read_ecg(REPO / case["ecg"]))
            for p, want in case["probabilities"].items():
                assert preds[p].probability == pytest.approx(want, abs=atol), (case["ecg"], p)
                assert preds[p].demo == shipped.bundle.demo
            checked += 1
        if case.get("cxr") and case.get("cxr_probabilities"):
            preds = shipped.predict_cxr(read_cxr(REPO / case["cxr"]))
            for p, want in case["cxr_probabilities"].items():
                assert preds[p].probability == pytest.approx(want, abs=atol), (case["cxr"], p)
    assert checked >= 1


@needs_shipped
def test_shipped_bundle_ood_fires_on_noise_not_on_demo_cases(shipped):
    for seed in range(2):
        assert all(v.ood for v in shipped.predict_ecg(noise_record(seed)).values())
    cases = [c for c in shipped.bundle.reference["cases"] if c.get("ecg")]
    for case in cases:
        preds = shipped.predict_ecg(read_ecg(REPO / case["ecg"]))
        assert not any(v.ood for v in preds.values()), case["ecg"]


@needs_shipped
def test_shipped_bundle_is_deterministic_and_batch_independent(shipped):
    record = read_ecg(PTB)
    a, b = shipped.predict_ecg(record), Predictor().predict_ecg(record)
    for p in PATHOLOGIES:
        assert a[p].probability == b[p].probability
        assert a[p].embedding.tobytes() == b[p].embedding.tobytes()
    # the CLI's default path (each record in its own run) gives the app's exact bits
    from engine.batch import InputItem, score_files
    [result] = list(score_files(shipped, [InputItem(str(PTB))]))
    for p in PATHOLOGIES:
        assert result.predictions[p].probability == a[p].probability
        assert result.predictions[p].window_probabilities == a[p].window_probabilities
