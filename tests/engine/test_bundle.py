"""engine.bundle: a bundle is verified and a tampered / incomplete / incompatible one refused."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from bundle_factory import THRESHOLDS, edit_manifest, make_bundle, rehash, sign

from engine import resources
from engine.bundle import load_bundle, sha256_file
from engine.constants import DEMO_DISCLAIMER, PATHOLOGIES
from engine.errors import BundleError
from engine.inference import Predictor


@pytest.fixture(scope="module")
def base_bundle(tmp_path_factory) -> Path:
    return make_bundle(tmp_path_factory.mktemp("b") / "bundle", int8=True)


@pytest.fixture
def bundle(base_bundle, tmp_path) -> Path:
    return Path(shutil.copytree(base_bundle, tmp_path / "bundle"))


def test_valid_bundle_loads_with_everything_from_the_manifest(bundle):
    b = load_bundle(bundle)
    assert b.bundle_id == "test-tiny-0" and b.data == "phantom" and b.demo
    assert b.disclaimer == DEMO_DISCLAIMER
    assert tuple(b.ecg) == PATHOLOGIES and tuple(b.cxr) == PATHOLOGIES
    for p in PATHOLOGIES:
        assert b.ecg[p].file == f"ecg_{p}.onnx" and b.ecg[p].int8_file == f"ecg_{p}.int8.onnx"
        assert b.ecg[p].threshold == THRESHOLDS[p]
        assert b.ecg[p].stats.mean.shape == (256,) and b.ecg[p].stats.precision.shape == (256, 256)
        assert b.ecg[p].stats.cutoff > 0
    assert [b.cxr[p].output_index for p in PATHOLOGIES] == [0, 1, 2]
    assert b.reference == {"cases": [], "atol": 1e-5}
    assert b.describe() == {"bundle_id": "test-tiny-0", "data": "phantom", "demo": True,
                            "disclaimer": DEMO_DISCLAIMER}


def test_mahalanobis_distance_matches_definition(bundle):
    stats = load_bundle(bundle).ecg["edema"].stats
    e = np.random.default_rng(0).normal(size=(3, 256))
    d = e - stats.mean
    expected = np.sqrt(np.einsum("ni,ij,nj->n", d, stats.precision, d))
    np.testing.assert_allclose(stats.distance(e), expected, rtol=1e-12)
    assert stats.distance(stats.mean) == 0.0
    for row in e:  # one embedding [D] -> a 0-d distance, the plain formula's value
        one = stats.distance(row)
        assert one.shape == ()
        diff = row - stats.mean
        np.testing.assert_allclose(one, np.sqrt(diff @ stats.precision @ diff), rtol=1e-12)


def test_flipped_byte_in_a_model_file_is_refused_naming_the_file(bundle):
    path = bundle / "ecg_edema.onnx"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(BundleError, match=r"ecg_edema\.onnx: sha256 does not match"):
        load_bundle(bundle)
    with pytest.raises(BundleError, match="ecg_edema.onnx"):
        Predictor(bundle)


def test_missing_file_is_refused_naming_the_file(bundle):
    (bundle / "embedding_stats_pleural_effusion.npz").unlink()
    with pytest.raises(BundleError, match=r"embedding_stats_pleural_effusion\.npz: listed in "
                                          r"manifest\.json but missing"):
        load_bundle(bundle)


def test_missing_model_card_and_manifest_are_refused(bundle, tmp_path):
    edit_manifest(bundle, lambda m: m["files"].pop("MODEL_CARD.md"))
    with pytest.raises(BundleError, match="MODEL_CARD.md: missing"):
        load_bundle(bundle)
    (bundle / "manifest.json").unlink()
    with pytest.raises(BundleError, match=r"manifest\.json: not found"):
        load_bundle(bundle)
    with pytest.raises(BundleError, match="does not exist"):
        load_bundle(tmp_path / "nowhere")


def test_wrong_preprocessing_constants_in_manifest_are_refused(bundle):
    edit_manifest(bundle, lambda m: m["preprocessing"]["ecg"].update(fs_hz=500))
    with pytest.raises(BundleError, match=r"manifest\.json: preprocessing constants do not match"
                                          r".*ecg\.fs_hz = 500 \(expected 100\)"):
        load_bundle(bundle)


def test_wrong_lead_order_in_onnx_metadata_is_refused_naming_the_model(tmp_path):
    from engine.constants import preprocessing_constants
    pre = preprocessing_constants()
    leads = pre["ecg"]["leads"]
    leads[4], leads[5] = leads[5], leads[4]  # aVF before aVL, the MIMIC file order
    d = make_bundle(tmp_path / "b", onnx_preprocessing=pre)
    load_bundle(d)  # the manifest itself is right and every hash matches
    with pytest.raises(BundleError, match=r"ecg_cardiomegaly\.onnx \(ONNX metadata\): "
                                          r"preprocessing constants do not match.*ecg\.leads"):
        Predictor(d)


def test_model_from_another_bundle_is_refused(bundle):
    edit_manifest(bundle, lambda m: m.update(bundle_id="another-bundle"))
    with pytest.raises(BundleError, match=r"ecg_cardiomegaly\.onnx: ONNX metadata bundle id "
                                          r"'test-tiny-0' differs"):
        Predictor(bundle, precision="fp32")


def test_threshold_disagreeing_with_onnx_metadata_is_refused(bundle):
    edit_manifest(bundle, lambda m: m["pathologies"]["edema"]["ecg"].update(threshold=0.3))
    with pytest.raises(BundleError, match=r"ecg_edema\.onnx: ONNX metadata thresholds"):
        Predictor(bundle, precision="fp32")


def test_wrongly_named_input_is_refused(bundle):
    path = bundle / "ecg_edema.onnx"
    model = onnx.load(str(path))
    model.graph.input[0].name = "x"
    for node in model.graph.node:
        node.input[:] = ["x" if i == "ecg" else i for i in node.input]
    onnx.save(model, str(path))
    rehash(bundle)
    with pytest.raises(BundleError, match=r"ecg_edema\.onnx: model inputs are \['x'\]; expected "
                                          r"one input 'ecg'"):
        Predictor(bundle, precision="fp32")


@pytest.mark.parametrize("edit, message", [
    (lambda m: m.update(schema_version=2), "schema_version is 2"),
    (lambda m: m.update(data="ptbxl"), "'data' is 'ptbxl'"),
    (lambda m: m.update(demo=False), "phantom .* must have demo: true"),
    (lambda m: m["pathologies"].pop("edema"), "no models for pathology 'edema'"),
    (lambda m: m["pathologies"]["edema"]["ecg"].update(threshold=1.5), "not a probability"),
    (lambda m: m["pathologies"]["edema"]["ecg"].update(ood_cutoff=-1), "ood_cutoff"),
    (lambda m: m["pathologies"]["edema"]["ecg"].update(file="../ecg_edema.onnx"),
     "must be a path inside the bundle"),
    (lambda m: m["files"].pop("ecg_edema.onnx"), r"ecg_edema\.onnx: referenced by .* no sha256"),
])
def test_incomplete_or_inconsistent_manifest_is_refused(bundle, edit, message):
    edit_manifest(bundle, edit)
    with pytest.raises(BundleError, match=message):
        load_bundle(bundle)


def test_bad_embedding_stats_are_refused(bundle):
    np.savez(bundle / "embedding_stats_edema.npz", mean=np.zeros(128), precision=np.eye(128))
    rehash(bundle)
    with pytest.raises(BundleError, match=r"embedding_stats_edema\.npz: has mean \(128,\)"):
        load_bundle(bundle)


def test_manifest_that_is_not_json_is_refused(bundle):
    (bundle / "manifest.json").write_text("{not json")
    sign(bundle)  # even when its signer made it so
    with pytest.raises(BundleError, match=r"manifest\.json: is not valid JSON"):
        load_bundle(bundle)


def test_sha256_file_matches_manifest(bundle):
    files = json.loads((bundle / "manifest.json").read_text())["files"]
    assert files["cxr_teacher.onnx"] == sha256_file(bundle / "cxr_teacher.onnx")


def test_default_models_dir_from_source_and_frozen(monkeypatch, tmp_path):
    repo = Path(__file__).resolve().parents[2]
    assert resources.default_models_dir() == repo / "resources" / "models"
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "_MEIPASS", str(tmp_path), raising=False)
    assert resources.default_models_dir() == tmp_path / "resources" / "models"
    assert resources.demo_dir() == tmp_path / "resources" / "demo"
