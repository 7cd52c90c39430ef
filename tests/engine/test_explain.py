"""engine.explain on the shipped bundle's real onnxruntime sessions: every map value is a
probability drop that a direct recomputation reproduces; maps are deterministic; flagged
predictions give invalid maps; a model with randomised weights gives a different map."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from engine.constants import CXR_SIZE, LEADS, PATHOLOGIES
from engine.explain import (EcgOcclusion, Explainer, cxr_patches, explain_cxr, explain_ecg,
                            lead_summary, not_assessable_reason, occlude_cxr, occlude_ecg)
from engine.inference import Predictor
from engine.io import read_cxr, read_ecg
from engine.preprocess import preprocess_cxr, preprocess_ecg
from engine.records import QualityFlags

REPO = Path(__file__).resolve().parents[2]
ECG = REPO / "tests/data/ecg/wfdb/ptbxl/00001_lr.hea"
CXR = REPO / "tests/data/cxr/png/nih/00000001_000.png"


@pytest.fixture(scope="module")
def predictor() -> Predictor:
    return Predictor(precision="fp32", parallel_models=False)


@pytest.fixture(scope="module")
def ecg_input():
    return preprocess_ecg(read_ecg(ECG))


@pytest.fixture(scope="module")
def cxr_input():
    image = read_cxr(CXR)
    return image, preprocess_cxr(image)


@pytest.fixture(scope="module")
def ecg_maps(predictor, ecg_input):
    return explain_ecg(predictor, ecg_input, mode="grid", segment_s=2.0)


def test_ecg_grid_value_equals_direct_recomputation(predictor, ecg_input, ecg_maps):
    lead, start, stop = LEADS.index("V5"), 400, 600          # V5, 4-6 s
    occluded = ecg_input.windows.copy()
    occluded[0, lead, start:stop] = np.median(ecg_input.windows[0, lead])
    base = predictor.predict_ecg_inputs(ecg_input.windows)
    occ = predictor.predict_ecg_inputs(occluded)
    for p in PATHOLOGIES:
        m = ecg_maps[p]
        assert m.values.shape == (12, 1000) and m.values.dtype == np.float32
        assert m.times_s.shape == (1000,) and m.times_s[-1] == pytest.approx(9.99)
        direct = base[p].probabilities[0] - occ[p].probabilities[0]
        assert np.all(m.values[lead, start:stop] == m.values[lead, start])
        assert m.values[lead, start] == pytest.approx(direct, abs=2e-6)
        assert m.probability == pytest.approx(base[p].probabilities[0], abs=2e-6)


def test_occlude_ecg_replaces_only_the_patch(ecg_input):
    occ = occlude_ecg(ecg_input.windows, [EcgOcclusion(0, (3,), 100, 200)])
    diff = occ[0] != ecg_input.windows[0]
    assert not diff[:3].any() and not diff[4:].any()
    assert not diff[3, :100].any() and not diff[3, 200:].any()
    assert np.all(occ[0, 3, 100:200] == np.median(ecg_input.windows[0, 3]))


def test_ecg_maps_deterministic_and_summary(predictor, ecg_input, ecg_maps):
    again = explain_ecg(predictor, ecg_input, mode="grid", segment_s=2.0)
    for p in PATHOLOGIES:
        np.testing.assert_array_equal(again[p].values, ecg_maps[p].values)
        scores = ecg_maps[p].lead_scores
        top = LEADS[int(np.argmax(scores))]
        assert ecg_maps[p].summary.startswith(top)


def test_separable_map_is_sqrt_of_lead_and_segment_drops(predictor, ecg_input):
    maps = explain_ecg(predictor, ecg_input, mode="separable", segment_s=2.0)
    w = ecg_input.windows
    lead = LEADS.index("I")
    lead_occ = w.copy()
    lead_occ[0, lead] = np.median(w[0, lead])
    seg_occ = w.copy()
    seg_occ[0, :, 200:400] = np.median(w[0], axis=1)[:, None]
    base = predictor.predict_ecg_inputs(w)
    a, b = predictor.predict_ecg_inputs(lead_occ), predictor.predict_ecg_inputs(seg_occ)
    for p in PATHOLOGIES:
        dl = base[p].probabilities[0] - a[p].probabilities[0]
        ds = base[p].probabilities[0] - b[p].probabilities[0]
        assert maps[p].values[lead, 300] == pytest.approx(np.sqrt(max(dl, 0) * max(ds, 0)), abs=1e-5)


def test_cxr_value_equals_direct_recomputation(predictor, cxr_input):
    image, x = cxr_input
    maps = explain_cxr(predictor, x, image_shape=image.pixels.shape, grid=4)
    r0, r1, c0, c1 = cxr_patches(4)[6]
    by_hand = x.copy()
    by_hand[0, r0:r1, c0:c1] = x.mean()
    logits = predictor.cxr_logits(np.stack([x, by_hand]))
    for p in predictor.cxr_pathologies:
        m = maps[p]
        assert m.values.shape == (CXR_SIZE, CXR_SIZE)
        direct = 1 / (1 + np.exp(-logits[p][0].astype(np.float64))) \
            - 1 / (1 + np.exp(-logits[p][1].astype(np.float64)))
        assert m.values[(r0 + r1) // 2, (c0 + c1) // 2] == pytest.approx(direct, abs=2e-6)
        assert m.extent == (0, 0, min(image.pixels.shape))
    assert occlude_cxr(x, cxr_patches(4)).shape == (16, 1, CXR_SIZE, CXR_SIZE)
    again = explain_cxr(predictor, x, image_shape=image.pixels.shape, grid=4)
    for p in predictor.cxr_pathologies:
        np.testing.assert_array_equal(again[p].values, maps[p].values)


def test_flagged_predictions_give_invalid_maps(predictor, ecg_input):
    preds = predictor.predict_ecg_input(ecg_input, QualityFlags(noisy_leads=("V2",)))
    maps = explain_ecg(predictor, ecg_input, preds, mode="separable", segment_s=5.0)
    for p in PATHOLOGIES:
        assert not maps[p].valid and maps[p].reason == preds[p].call_reason
        assert preds[p].call == "not_assessable" and "noisy lead V2" in maps[p].reason
    ok = predictor.predict_ecg_input(ecg_input, QualityFlags())["cardiomegaly"]
    assert not_assessable_reason(replace(ok, ood=False)) == ""
    assert not_assessable_reason(replace(ok, ood=True, ood_distance=40.0, ood_cutoff=30.0)) == \
        "out of distribution (d=40.0 > 30.0)"
    engine_call = SimpleNamespace(**{**ok.__dict__, "ood": False, "call": "not_assessable",
                                     "call_reason": "trust gate: lateral CXR"})
    assert not_assessable_reason(engine_call) == "trust gate: lateral CXR"


def test_multi_window_record_maps_back_to_the_record_time_axis(predictor):
    inp = preprocess_ecg(read_ecg(REPO / "tests/data/ecg/wfdb/ptb_diagnostic/s0010_re.hea"))
    n_w = inp.windows.shape[0]
    assert n_w >= 2
    maps = explain_ecg(predictor, inp, mode="grid", segment_s=5.0)
    lead = LEADS.index("II")
    occluded = inp.windows.copy()
    occluded[1, lead, 500:1000] = np.median(inp.windows[1, lead])
    base = predictor.predict_ecg_inputs(inp.windows)
    occ = predictor.predict_ecg_inputs(occluded)
    for p in PATHOLOGIES:
        m = maps[p]
        assert m.values.shape == (12, 1000 * n_w) and m.times_s[1500] == pytest.approx(15.0)
        record_drop = np.mean(base[p].probabilities) - np.mean(occ[p].probabilities)
        assert m.values[lead, 1500] == pytest.approx(record_drop, abs=2e-6)   # window 1, 15-20 s
        assert m.probability == pytest.approx(np.mean(base[p].probabilities), abs=2e-6)


def test_explainer_uses_fp32_models_of_the_same_bundle():
    int8 = Predictor(precision="int8", parallel_models=False)
    ex = Explainer(int8)
    assert ex.predictor.precision == "fp32" and ex.predictor.bundle is int8.bundle
    assert all(not f.endswith(".int8.onnx") for f in ex.predictor.ecg_files.values())


def test_lead_summary_text():
    scores = np.zeros(12)
    scores[[LEADS.index("V5"), LEADS.index("V6"), LEADS.index("I")]] = [3.0, 2.0, 1.0]
    assert lead_summary(scores) == "V5, V6 and I contribute most"
    assert lead_summary(np.zeros(12)).startswith("no lead")


def test_cli_predict_explain_writes_arrays_and_pngs(tmp_path, ecg_input, predictor):
    from PIL import Image

    from engine.cli import main

    out = tmp_path / "maps"
    rc = main(["predict", str(ECG), "--explain", str(out), "--explain-mode", "separable",
               "--precision", "fp32", "--no-progress", "-o", str(tmp_path / "p.jsonl")])
    assert rc == 0
    direct = explain_ecg(predictor, ecg_input, mode="separable")
    for p in PATHOLOGIES:
        arr = np.load(out / f"00001_lr.{p}.npy")
        assert arr.shape == (12, 1000) and arr.dtype == np.float32
        np.testing.assert_allclose(arr, direct[p].values, atol=2e-6)
        assert Image.open(out / f"00001_lr.{p}.png").size == (40 + 1000, 13 * 18)
    import json
    side = json.loads((out / "00001_lr.explain.json").read_text())
    assert side["maps"]["cardiomegaly"]["summary"] == direct["cardiomegaly"].summary
