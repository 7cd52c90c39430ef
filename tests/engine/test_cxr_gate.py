"""engine.cxr_gate on real chest films (tags changed only on copies of the real SIIM DICOM;
geometry from real pixels) and through a real onnxruntime session of the shipped bundle."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image

from engine.cxr_gate import gate_cxr
from engine.inference import Predictor
from engine.io import read_cxr

REPO = Path(__file__).resolve().parents[2]
CXR_DICOM = next((REPO / "tests/data/cxr/dicom").glob("siim_*.dcm"))
NIH = sorted((REPO / "tests/data/cxr/png/nih").glob("*.png"))
DEMO_CXR_DICOM = REPO / "resources/demo/case3_dicom_cardiomegaly_pleural_effusion_cxr.dcm"


@pytest.fixture(scope="module")
def predictor() -> Predictor:
    return Predictor(threads=1)


def cxr_copy(tmp_path: Path, **tags) -> Path:
    """A copy of the real SIIM chest DICOM with `tags` (DICOM keywords) set; pixels untouched."""
    ds = pydicom.dcmread(CXR_DICOM)
    for k, v in tags.items():
        setattr(ds, k, v)
    out = tmp_path / f"cxr_{'_'.join(f'{k}-{v}' for k, v in tags.items())}.dcm"
    ds.save_as(out)
    return out


def test_reader_exposes_the_tags_the_gate_reads():
    meta = read_cxr(CXR_DICOM).meta
    assert (meta["modality"], meta["body_part"], meta["view_position"]) == ("CR", "CHEST", "PA")
    demo = read_cxr(DEMO_CXR_DICOM).meta
    assert (demo["modality"], demo["body_part"], demo["view_position"]) == ("DX", "CHEST", "AP")


def test_real_frontal_chest_dicom_passes_the_tag_and_geometry_checks():
    d = gate_cxr(read_cxr(CXR_DICOM))
    assert d.accepted and d.reason == "accepted as a frontal chest radiograph"
    assert {k: c["ok"] for k, c in d.checks.items()} == {
        "modality": True, "body_part": True, "view": True, "geometry": True, "greyscale": True}
    assert d.checks["geometry"]["value"] == {"width": 1024, "height": 1024, "aspect": 1.0,
                                             "field_mm": 172.0}  # PixelSpacing 0.168 mm


def test_non_chest_radiograph_is_refused_and_the_teacher_not_run(tmp_path, predictor):
    image = read_cxr(cxr_copy(tmp_path, BodyPartExamined="EXTREMITY"))
    a = predictor.assess_cxr(image)
    assert not a.gate.accepted and a.predictions == {}
    assert a.gate.reason == ("not a frontal chest radiograph: the body part examined is EXTREMITY, "
                             "not the chest")
    assert a.gate.checks["body_part"] == {"ok": False, "value": "EXTREMITY",
                                          "detail": "the body part examined is EXTREMITY, not the chest"}
    assert "embedding_ood" not in a.gate.checks


@pytest.mark.parametrize("view", ["LL", "RL", "LATERAL", "PA LLD"])
def test_lateral_views_are_refused(tmp_path, predictor, view):
    a = predictor.assess_cxr(read_cxr(cxr_copy(tmp_path, ViewPosition=view)))
    assert not a.gate.accepted and a.predictions == {}
    assert a.gate.checks["view"]["ok"] is False and view in a.gate.reason
    assert "lateral or oblique" in a.gate.reason


def test_other_modality_is_refused(tmp_path):
    d = gate_cxr(read_cxr(cxr_copy(tmp_path, Modality="CT")))
    assert not d.accepted and "modality is CT" in d.reason


def test_view_code_sequence_lateral_is_refused(tmp_path):
    ds = pydicom.dcmread(CXR_DICOM)
    del ds.ViewPosition
    item = pydicom.Dataset()
    item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = "R-10232", "SRT", "lateral"
    ds.ViewCodeSequence = pydicom.Sequence([item])
    out = tmp_path / "viewcode.dcm"
    ds.save_as(out)
    image = read_cxr(out)
    assert image.meta["view_code"] == "lateral" and image.view_position is None
    d = gate_cxr(image)
    assert not d.accepted and "view code says 'lateral'" in d.reason


def test_a_narrow_strip_of_a_real_film_is_refused_on_geometry(tmp_path):
    with Image.open(NIH[1]) as im:  # 1024 x 1024; keep a 300 px wide strip: long-bone shape
        im.crop((362, 0, 662, 1024)).save(tmp_path / "strip.png")
    d = gate_cxr(read_cxr(tmp_path / "strip.png"))
    assert not d.accepted and d.checks["geometry"]["value"]["aspect"] == pytest.approx(0.293, abs=1e-3)
    assert "width / height 0.29" in d.reason


def test_small_field_of_view_is_refused(tmp_path):
    d = gate_cxr(read_cxr(cxr_copy(tmp_path, PixelSpacing=[0.1, 0.1])))  # 1024 px = 102 mm
    assert not d.accepted and d.checks["geometry"]["value"]["field_mm"] == pytest.approx(102.4)


def test_colour_photo_is_refused_and_grey_saved_as_rgb_is_not(tmp_path):
    grey = np.asarray(Image.open(NIH[0]).convert("L"))
    Image.fromarray(np.stack([grey] * 3, axis=2)).save(tmp_path / "rgb_grey.png")
    d = gate_cxr(read_cxr(tmp_path / "rgb_grey.png"))
    assert d.accepted and d.checks["greyscale"]["value"] == 0.0
    tinted = np.stack([grey, (grey * 0.5).astype(np.uint8), np.full_like(grey, 40)], axis=2)
    Image.fromarray(tinted).save(tmp_path / "photo.png")
    d = gate_cxr(read_cxr(tmp_path / "photo.png"))
    assert not d.accepted and "in colour" in d.reason


def test_png_view_cannot_be_verified_and_the_reason_says_so():
    d = gate_cxr(read_cxr(NIH[0]))
    assert d.accepted and "the view could not be verified" in d.reason
    assert d.checks["view"]["ok"] is None


@pytest.mark.parametrize("film", NIH + [CXR_DICOM], ids=lambda p: p.name[:16])
def test_real_chest_films_are_out_of_distribution_for_the_phantom_teacher(predictor, film):
    """The shipped teacher was trained on synthetic drawings: on real films its output has no
    validity, and the embedding check says so (distances 95-159 against a cut-off of 57.5)."""
    a = predictor.assess_cxr(read_cxr(film))
    assert not a.gate.accepted
    assert a.gate.reason.startswith("out of distribution: the image is unlike the teacher's "
                                    "training images (Mahalanobis distance ")
    check = a.gate.checks["embedding_ood"]
    assert check["ok"] is False and check["value"]["distance"] > 1.5 * check["value"]["cutoff"]
    assert check["value"]["cutoff"] == pytest.approx(57.47, abs=0.01)
    assert set(a.predictions) == {"cardiomegaly", "edema", "pleural_effusion"}
    for p in a.predictions.values():
        assert p.ood and p.call == "not_assessable"
        assert p.call_reason == "not assessable: " + a.gate.reason


def test_phantom_films_like_the_teachers_training_images_are_accepted(predictor):
    for name in ("case2_no_finding_cxr.jpg", "case3_dicom_cardiomegaly_pleural_effusion_cxr.dcm"):
        a = predictor.assess_cxr(read_cxr(REPO / "resources/demo" / name))
        assert a.gate.accepted, a.gate.reason
        check = a.gate.checks["embedding_ood"]
        assert check["ok"] is True and check["value"]["distance"] < check["value"]["cutoff"]
        assert all(p.call in ("positive", "negative", "borderline") for p in a.predictions.values())
