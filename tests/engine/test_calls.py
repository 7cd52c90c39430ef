"""engine.calls: positive / negative / borderline / not_assessable, on Predictions built by hand
at known values and through a real onnxruntime session of the shipped bundle."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from engine.calls import CALLS, not_assessable
from engine.inference import Predictor
from engine.io import read_ecg
from engine.records import Prediction, QualityFlags

REPO = Path(__file__).resolve().parents[2]


def pred(probability: float, threshold: float = 0.207, band=(0.15, 0.26), **kw) -> Prediction:
    return Prediction(pathology="cardiomegaly", modality="ecg", probability=probability,
                      threshold=threshold, positive=probability >= threshold,
                      embedding=np.zeros(4, np.float32), model_name="m.onnx", provenance="phantom",
                      demo=True, band=band, **kw)


def test_at_the_threshold_is_borderline_and_far_from_it_is_not():
    at = pred(0.207)
    assert at.positive and at.call == "borderline"
    assert at.call_reason == ("borderline: probability 0.207 lies within the threshold's uncertainty "
                              "band 0.150-0.260 (threshold 0.207)")
    assert pred(0.9).call == "positive" and "outside the uncertainty band" in pred(0.9).call_reason
    assert pred(0.05).call == "negative"
    assert pred(0.15).call == "borderline" and pred(0.26).call == "borderline"
    assert pred(0.149).call == "negative" and pred(0.261).call == "positive"


def test_without_a_band_the_call_says_none_is_stated():
    p = pred(0.207, band=None)
    assert p.call == "positive" and "states no uncertainty band" in p.call_reason


def test_flags_make_a_finding_not_assessable():
    q = QualityFlags(flat_leads=("V4", "V5"), short_record=True)
    p = pred(0.9, quality=q)
    assert p.positive and p.call == "not_assessable"
    assert p.call_reason == ("not assessable: signal quality of the ECG (flat leads V4, V5; record "
                             "shorter than 10 s (padded))")
    o = pred(0.9, ood=True, ood_distance=31.2, ood_cutoff=27.3)
    assert o.call == "not_assessable" and "distance 31.2 > cut-off 27.3" in o.call_reason
    g = not_assessable(pred(0.9), "the gate refused the image")
    assert g.call == "not_assessable" and g.probability == 0.9
    assert g.call_reason == "not assessable: the gate refused the image"
    with pytest.raises(ValueError):
        pred(0.5, call="maybe")


@pytest.mark.parametrize("ecg", ["tests/data/ecg/wfdb/ptbxl/00001_lr.hea",
                                 "tests/data/ecg/dicom/pydicom_waveform_ecg.dcm",
                                 "resources/demo/case1_cardiomegaly_edema_pleural_effusion_ecg.hea"])
def test_calls_on_real_files_through_the_shipped_bundle(ecg):
    predictor = Predictor(threads=1)
    preds = predictor.predict_ecg(read_ecg(REPO / ecg))
    for p, v in preds.items():
        assert v.call in CALLS and v.call_reason
        assert v.band == predictor.bundle.ecg[p].band
        if v.quality is not None and not v.quality.ok or v.ood:
            assert v.call == "not_assessable"
        elif v.band is not None and v.band[0] <= v.probability <= v.band[1]:
            assert v.call == "borderline"
        else:
            assert v.call == ("positive" if v.positive else "negative")


def test_a_real_film_inside_the_teachers_band_is_borderline():
    """Demo case 1's phantom film: the teacher's cardiomegaly probability (0.371) lies inside
    the band the bundle states around its threshold 0.225 (0.041-0.404)."""
    from engine.io import read_cxr
    predictor = Predictor(threads=1)
    a = predictor.assess_cxr(read_cxr(REPO / "resources/demo/case1_cardiomegaly_edema_pleural_effusion_cxr.jpg"))
    v = a.predictions["cardiomegaly"]
    low, high = predictor.bundle.cxr["cardiomegaly"].band
    assert (low, high) == pytest.approx((0.0409, 0.4039), abs=1e-4)
    assert v.positive and low <= v.probability <= high
    assert v.call == "borderline" and v.call_reason.startswith("borderline: probability 0.371")
    assert a.predictions["edema"].call == "positive"  # 0.915, above the band's 0.642


def test_the_shipped_bundle_states_a_band_around_every_threshold():
    from engine.bundle import load_bundle
    b = load_bundle()
    for spec in [*b.ecg.values(), *b.cxr.values()]:
        assert spec.band is not None and spec.band[0] <= spec.threshold <= spec.band[1]


def test_a_band_that_does_not_hold_the_threshold_is_refused(tmp_path):
    import json
    import shutil

    from engine.bundle import load_bundle
    from bundle_factory import sign, trust_test_key

    from engine.errors import BundleError
    bundle = tmp_path / "b"
    shutil.copytree(REPO / "resources/models", bundle)
    manifest = json.loads((bundle / "manifest.json").read_text())
    manifest["pathologies"]["edema"]["ecg"]["borderline"].update(low=0.5, high=0.6)
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    trust_test_key()
    sign(bundle)  # validly signed by a trusted (test) key: the band check itself must refuse it
    with pytest.raises(BundleError, match="borderline"):
        load_bundle(bundle)
