"""Calibrated probabilities (issue 18, item 3): a copy of the shipped bundle whose manifest states a
temperature per ECG model (with `threshold_calibrated` and a `calibration` block), re-signed by the
test key the tests trust. Its probabilities are `sigmoid(logit / T)` of the raw ONNX output, its
calls are the uncalibrated bundle's, inconsistent calibration fields are refused with a
`CalibrationError`, a temperature changed after signing breaks the signature, and the shipped
(uncalibrated) bundle gives its reference outputs as before."""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from bundle_factory import REPO, edit_manifest, trust_test_key
from bundle_forgeries import shallow_copy

from engine.bundle import load_bundle
from engine.calibration import (calibrate_probability, calibrated_probability, calibrated_threshold,
                                logit_of)
from engine.cli import main
from engine.constants import PATHOLOGIES
from engine.errors import BundleError, CalibrationError
from engine.inference import Predictor, WindowScores, session_options
from engine.io import read_ecg
from engine.preprocess import preprocess_ecg

MODELS = REPO / "resources" / "models"
#: Below and above 1, as a fit on validation gives for over- and under-confident models.
TEMPERATURES = {"cardiomegaly": 1.7, "edema": 0.6, "pleural_effusion": 2.5}
ECGS = ("resources/demo/case1_cardiomegaly_edema_pleural_effusion_ecg.hea",
        "resources/demo/case2_no_finding_ecg.hea",
        "resources/demo/case3_dicom_cardiomegaly_pleural_effusion_ecg.dcm",
        "tests/data/ecg/wfdb/ptbxl/00001_lr.hea",
        "tests/data/ecg/dicom/pydicom_waveform_ecg.dcm")


def add_calibration(m: dict, temperatures: dict[str, float] = TEMPERATURES) -> None:
    """What `training.build.assemble` writes for a calibrated model, on every ECG entry."""
    for p, t in temperatures.items():
        e = m["pathologies"][p]["ecg"]
        e.update(temperature=t, threshold_calibrated=calibrated_threshold(e["threshold"], t),
                 calibration={"rule": "temperature scaling (test)", "bins": 10, "val_ece_raw": 0.12,
                              "val_ece_calibrated": 0.04, "test_ece_raw": 0.13,
                              "test_ece_calibrated": 0.05})


def calibrated_copy(dst: Path, edit=add_calibration) -> Path:
    """The shipped bundle copied to `dst` with `edit` applied to its manifest, signed by the
    (trusted) test key."""
    trust_test_key()
    d = shallow_copy(MODELS, dst)
    edit_manifest(d, edit)
    return d


@pytest.fixture(scope="module")
def calibrated(tmp_path_factory) -> Predictor:
    d = calibrated_copy(tmp_path_factory.mktemp("cal") / "bundle")
    return Predictor(d, threads=1, parallel_models=False)


@pytest.fixture(scope="module")
def shipped() -> Predictor:
    return Predictor(MODELS, threads=1, parallel_models=False)


def raw_logits(predictor: Predictor, p: str, windows: np.ndarray) -> np.ndarray:
    """float32 `[N]` logits of `windows` from an onnxruntime session of our own on the bundle file."""
    path = predictor.bundle.path(predictor.ecg_files[p])
    sess = ort.InferenceSession(str(path), sess_options=session_options(1),
                                providers=["CPUExecutionProvider"])
    return sess.run(["logit"], {"ecg": windows.astype(np.float32)})[0][:, 0]


def test_manifest_calibration_is_read_and_the_band_mapped(calibrated, shipped):
    for p, t in TEMPERATURES.items():
        spec, raw = calibrated.bundle.ecg[p], shipped.bundle.ecg[p]
        assert spec.calibrated and spec.temperature == t and not raw.calibrated
        assert spec.threshold == raw.threshold  # the raw threshold (ONNX metadata) is kept
        assert spec.shown_threshold == spec.threshold_calibrated == calibrated_threshold(raw.threshold, t)
        assert spec.calibration["test_ece_calibrated"] == 0.05
        # the shipped band was computed on raw probabilities: mapped with the temperature
        low, high = calibrate_probability(np.array(raw.band), t)
        assert spec.band == pytest.approx((low, high), abs=1e-15)
        assert spec.band[0] <= spec.shown_threshold <= spec.band[1]
    assert calibrated.describe()["calibrated"] is True
    assert calibrated.describe()["temperature"] == TEMPERATURES
    assert shipped.describe()["calibrated"] is False
    assert shipped.describe()["temperature"] == {p: None for p in PATHOLOGIES}


@pytest.mark.parametrize("ecg", ECGS)
def test_probabilities_are_sigmoid_of_the_raw_logit_over_t_and_calls_unchanged(calibrated, shipped, ecg):
    record = read_ecg(REPO / ecg)
    windows = preprocess_ecg(record).windows
    assert windows.shape[0] == 1
    cal, raw = calibrated.predict_ecg(record), shipped.predict_ecg(record)
    for p, t in TEMPERATURES.items():
        lg = float(raw_logits(calibrated, p, windows)[0])
        assert cal[p].probability == pytest.approx(1.0 / (1.0 + math.exp(-lg / t)), abs=1e-12)
        assert raw[p].probability == pytest.approx(1.0 / (1.0 + math.exp(-lg)), abs=1e-12)
        assert cal[p].window_probabilities == (cal[p].probability,)
        assert cal[p].threshold == calibrated.bundle.ecg[p].threshold_calibrated
        assert cal[p].temperature == t and raw[p].temperature is None
        assert (cal[p].positive, cal[p].call) == (raw[p].positive, raw[p].call)
        assert (cal[p].probability >= cal[p].threshold) == cal[p].positive
        assert cal[p].ood_distance == raw[p].ood_distance
        if cal[p].call != "not_assessable":
            assert "calibrated probability" in cal[p].call_reason
            assert "calibrated" not in raw[p].call_reason


def test_a_record_of_several_windows_maps_its_raw_mean(calibrated, shipped):
    """W > 1: each window sigmoid(logit_w / T); the record = its raw mean mapped with T
    (a monotone map, so the decision is the raw mean's against the raw threshold)."""
    windows = np.concatenate([preprocess_ecg(read_ecg(REPO / f)).windows for f in ECGS[:3]])
    scores_c = calibrated.predict_ecg_inputs(windows)
    scores_r = shipped.predict_ecg_inputs(windows)
    cal, raw = calibrated.ecg_predictions(scores_c), shipped.ecg_predictions(scores_r)
    for p, t in TEMPERATURES.items():
        lg = raw_logits(calibrated, p, windows).astype(np.float64)
        assert np.allclose(cal[p].window_probabilities, 1.0 / (1.0 + np.exp(-lg / t)), rtol=0, atol=1e-12)
        raw_mean = float(np.mean(1.0 / (1.0 + np.exp(-lg))))
        assert raw[p].probability == pytest.approx(raw_mean, abs=1e-12)
        expected = 1.0 / (1.0 + math.exp(-math.log(raw_mean / (1.0 - raw_mean)) / t))
        assert cal[p].probability == pytest.approx(expected, abs=1e-12)
        assert (cal[p].positive, cal[p].call) == (raw[p].positive, raw[p].call)


def test_decisions_equal_the_raw_ones_at_every_logit_including_next_to_the_threshold(calibrated, shipped):
    """Synthetic logits over the whole range and float32 neighbours of logit(threshold): the
    calibrated bundle's positive / call equal the uncalibrated one's on every one, and the shown
    probability against the shown threshold agrees except within 1e-6 of it."""
    emb = calibrated.predict_ecg_inputs(preprocess_ecg(read_ecg(REPO / ECGS[1])).windows)
    for p, t in TEMPERATURES.items():
        thr = shipped.bundle.ecg[p].threshold
        centre = np.float32(logit_of(thr))
        near = [centre]
        for direction in (np.inf, -np.inf):
            v = centre
            for _ in range(40):
                v = np.nextafter(v, np.float32(direction))
                near.append(v)
        logits = np.concatenate([np.linspace(-12, 12, 1201, dtype=np.float32), np.array(near, np.float32)])
        e = emb[p].embeddings[:1]
        n_edge = 0
        for lg in logits:
            one = np.array([lg], np.float32)
            sc = {p: WindowScores(one, calibrated_probability(one, t), e)}
            sr = {p: WindowScores(one, 1.0 / (1.0 + np.exp(-one.astype(np.float64))), e)}
            c, r = calibrated.ecg_predictions(sc)[p], shipped.ecg_predictions(sr)[p]
            assert c.positive == r.positive == bool(r.probability >= thr)
            assert c.call == r.call
            if (c.probability >= c.threshold) != c.positive:
                assert abs(c.probability - c.threshold) < 1e-6
                n_edge += 1
        assert n_edge <= 2


def _set(p: str, **fields):
    def edit(m):
        add_calibration(m)
        m["pathologies"][p]["ecg"].update(fields)
    return edit


def _drop(p: str, key: str, calibrate: bool = True):
    def edit(m):
        if calibrate:
            add_calibration(m)
        m["pathologies"][p]["ecg"].pop(key)
    return edit


def _only_calibration_block(m):
    add_calibration(m)
    for key in ("temperature", "threshold_calibrated"):
        m["pathologies"]["edema"]["ecg"].pop(key)


def _only_threshold_calibrated(m):
    m["pathologies"]["edema"]["ecg"]["threshold_calibrated"] = 0.3


def _calibrated_band(low, high):
    def edit(m):
        add_calibration(m)
        m["pathologies"]["edema"]["ecg"]["borderline"].update(low=low, high=high, scale="calibrated")
    return edit


REFUSED = {
    "temperature_zero": (_set("edema", temperature=0), r"pathologies\.edema\.ecg\.temperature = 0 is not a "
                                                      r"finite temperature within 0\.05-20"),
    "temperature_negative": (_set("edema", temperature=-1.5), "is not a finite temperature"),
    "temperature_nan": (_set("edema", temperature=float("nan")), "is not a finite temperature"),
    "temperature_infinite": (_set("edema", temperature=float("inf")), "is not a finite temperature"),
    "temperature_huge": (_set("edema", temperature=150.0), "is not a finite temperature"),
    "temperature_string": (_set("edema", temperature="0.6"), r"temperature must be a number, got '0\.6'"),
    "temperature_bool": (_set("edema", temperature=True), "temperature must be a number"),
    "threshold_calibrated_missing": (_drop("edema", "threshold_calibrated"),
                                     r"threshold_calibrated must be a probability in \(0, 1\)"),
    "threshold_calibrated_off": (_set("edema", threshold_calibrated=0.21),
                                 r"threshold_calibrated 0\.21 disagrees with threshold .* would make "
                                 "different calls"),
    "threshold_calibrated_nan": (_set("edema", threshold_calibrated=float("nan")), "must be a probability"),
    "threshold_calibrated_alone": (_only_threshold_calibrated,
                                   r"threshold_calibrated is given but pathologies\.edema\.ecg\.temperature is not"),
    "calibration_alone": (_only_calibration_block, r"ecg\.calibration is given but"),
    "temperature_dropped": (_drop("edema", "temperature"), "threshold_calibrated is given but"),
    "ece_out_of_range": (_set("edema", calibration={"test_ece_raw": 1.5}),
                         r"calibration\.test_ece_raw must be a number in \[0, 1\]"),
    "band_misses_threshold": (_calibrated_band(0.01, 0.02), r"borderline .* \(calibrated\) does not hold "
                                                            "threshold_calibrated"),
    "band_unknown_scale": (_set("edema", borderline={"low": 0.1, "high": 0.5, "scale": "logit"}),
                           r"borderline\.scale is 'logit'"),
}


@pytest.mark.parametrize("case", list(REFUSED))
def test_inconsistent_calibration_is_refused(case, tmp_path):
    edit, message = REFUSED[case]
    d = calibrated_copy(tmp_path / "b", edit)
    with pytest.raises(CalibrationError, match=message) as err:
        load_bundle(d)
    assert isinstance(err.value, BundleError)  # the CLI and the app report it as a bundle error
    assert str(d) in str(err.value) and "inconsistent" in str(err.value)


def test_a_band_stated_on_the_calibrated_scale_is_used_as_written(tmp_path):
    t = TEMPERATURES["edema"]
    thr = json.loads((MODELS / "manifest.json").read_text())["pathologies"]["edema"]["ecg"]["threshold"]
    tc = calibrated_threshold(thr, t)
    d = calibrated_copy(tmp_path / "b", _calibrated_band(tc - 0.05, tc + 0.07))
    assert load_bundle(d).ecg["edema"].band == (tc - 0.05, tc + 0.07)
    uncal = shallow_copy(MODELS, tmp_path / "u")
    edit_manifest(uncal, lambda m: m["pathologies"]["edema"]["ecg"]["borderline"].update(scale="calibrated"))
    with pytest.raises(CalibrationError, match="on the calibrated scale but"):
        load_bundle(uncal)


def test_a_temperature_added_after_signing_breaks_the_signature(tmp_path):
    """The signature covers the whole manifest, calibration fields included."""
    d = shallow_copy(MODELS, tmp_path / "b")
    edit_manifest(d, add_calibration, signed=False)  # still carries the project's signature
    with pytest.raises(BundleError, match="the manifest was changed after it was signed"):
        load_bundle(d)


def test_the_shipped_uncalibrated_bundle_gives_its_reference_outputs(shipped):
    ref = json.loads((MODELS / "reference_outputs.json").read_text())
    cases = [c for c in ref["cases"] if "ecg" in c and c.get("precision") == shipped.precision]
    assert cases
    for case in cases:
        preds = shipped.predict_ecg(read_ecg(REPO / case["ecg"]))
        for p in PATHOLOGIES:
            assert preds[p].probability == pytest.approx(case["probabilities"][p], abs=ref["atol"])
            assert preds[p].positive == case["positive"][p]
            assert preds[p].temperature is None and preds[p].threshold == shipped.bundle.ecg[p].threshold
            assert preds[p].band == shipped.bundle.ecg[p].band


def _cli(argv, capsys) -> tuple[int, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    assert code == 0, err
    return code, out


def test_cli_json_and_csv_say_whether_probabilities_are_calibrated(calibrated, capsys, monkeypatch):
    monkeypatch.chdir(REPO)
    ecg = ECGS[3]
    argv = ["predict", ecg, "--models", str(calibrated.bundle.directory), "--no-progress",
            "--workers", "1", "--precision", "int8"]
    obj = json.loads(_cli(argv, capsys)[1])
    assert obj["model"]["calibrated"] is True and obj["model"]["temperature"] == TEMPERATURES
    preds = calibrated.predict_ecg(read_ecg(REPO / ecg))
    for p in PATHOLOGIES:
        assert obj["probabilities"][p] == preds[p].probability
        assert obj["thresholds"][p] == calibrated.bundle.ecg[p].threshold_calibrated
        assert obj["call"][p] == preds[p].call
    row = next(csv.DictReader(io.StringIO(_cli(argv + ["--format", "csv"], capsys)[1])))
    assert row["calibrated"] == "True"
    row = next(csv.DictReader(io.StringIO(_cli(["predict", ecg, "--no-progress", "--workers", "1",
                                                "--format", "csv"], capsys)[1])))
    assert row["calibrated"] == "False"


def test_temperatures_at_the_ends_of_the_fitted_range_are_accepted(tmp_path):
    """`fit_temperature` searches log(T) in [log 0.05, log 20]: a fit at either end loads."""
    from training.calibration import _LOG_T_RANGE
    ends = {"cardiomegaly": math.exp(_LOG_T_RANGE[0]), "edema": math.exp(_LOG_T_RANGE[1]),
            "pleural_effusion": 1.0}
    d = calibrated_copy(tmp_path / "b", lambda m: add_calibration(m, ends))
    assert {p: s.temperature for p, s in load_bundle(d).ecg.items()} == ends


def test_the_cli_refuses_an_inconsistent_calibration_with_the_reason(tmp_path, capsys):
    d = calibrated_copy(tmp_path / "b", _set("edema", threshold_calibrated=0.21))
    code = main(["predict", str(REPO / ECGS[0]), "--models", str(d), "--no-progress", "--workers", "1"])
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    assert "threshold_calibrated 0.21 disagrees with threshold" in err and "inconsistent" in err
