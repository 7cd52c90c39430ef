"""Saliency maps in the window (offscreen, shipped bundle): computed in a worker on
demand, drawn as heat bands under the leads and over the film, equal to the engine's
maps; a flagged map is not drawn; a late map of a file no longer shown is dropped."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from app.views.saliency_overlay import heat_rgba
from engine.constants import LEADS, PATHOLOGIES
from engine.explain import explain_ecg
from engine.inference import Predictor
from engine.io import read_ecg
from engine.preprocess import preprocess_ecg

from app_samples import NIH_CXR, PTBXL

PHANTOM_CXR = (Path(__file__).resolve().parents[2] / "resources" / "demo"
               / "case3_dicom_cardiomegaly_pleural_effusion_cxr.dcm")

TIMEOUT = 120000



def test_ecg_bands_show_the_engines_map_per_lead(shipped, window, qtbot):
    s = shipped.saliency
    with qtbot.waitSignal(shipped.ecg_predicted, timeout=TIMEOUT):
        shipped.open_ecg(PTBXL)
    assert s.bands.bands() == []                       # off until asked for
    s.ecg_bar.toggle.setChecked(True)
    qtbot.waitUntil(lambda: bool(s.ecg_maps), timeout=TIMEOUT)
    direct = explain_ecg(Predictor(precision="fp32"), preprocess_ecg(read_ecg(PTBXL)),
                         mode="separable")
    for p in PATHOLOGIES:
        np.testing.assert_allclose(s.ecg_maps[p].values, direct[p].values, atol=2e-6)
    m = s.shown_map("ecg")
    assert m is not None and m.pathology == "cardiomegaly"
    bands = s.bands.bands()
    assert len(bands) == len([p for p, _ in window.ecg_view.traces() if p.lead in LEADS]) >= 12
    top = float(m.values.max())
    for lead, t0, t1, rgba in bands:
        row = m.values[LEADS.index(lead), int(round(t0 * 100)):int(round(t1 * 100))]
        np.testing.assert_array_equal(rgba, heat_rgba(row, top))
    assert s.ecg_bar.caption.text().startswith("Cardiomegaly: " + m.summary)
    s.ecg_bar.finding.setCurrentIndex(PATHOLOGIES.index("edema"))
    assert s.shown_map("ecg").pathology == "edema"
    s.ecg_bar.toggle.setChecked(False)
    assert s.bands.bands() == [] and s.shown_map("ecg") is None


def test_cxr_overlay_on_the_models_square_with_opacity(shipped, window, qtbot):
    """On a phantom film (in the teacher's distribution) the overlay is drawn; a real NIH
    film is out of the phantom teacher's distribution, so its map is not shown."""
    s = shipped.saliency
    with qtbot.waitSignal(shipped.cxr_predicted, timeout=TIMEOUT):
        shipped.open_cxr(NIH_CXR)
    s.cxr_bar.toggle.setChecked(True)
    qtbot.waitUntil(lambda: bool(s.cxr_maps), timeout=TIMEOUT)
    assert s.shown_map("cxr") is None and not any(m.valid for m in s.cxr_maps.values())
    s.cxr_bar.toggle.setChecked(False)
    with qtbot.waitSignal(shipped.cxr_predicted, timeout=TIMEOUT):
        shipped.open_cxr(PHANTOM_CXR)
    s.cxr_bar.toggle.setChecked(True)
    qtbot.waitUntil(lambda: s.shown_map("cxr") is not None, timeout=TIMEOUT)
    m = s.shown_map("cxr")
    assert m is not None and m.values.shape == (224, 224)
    h, w = shipped.cxr.pixels.shape
    side = min(h, w)
    assert s.overlay.rect() == pytest.approx(((w - side) // 2, (h - side) // 2, side, side))
    np.testing.assert_array_equal(s.overlay.rgba, heat_rgba(m.values, float(m.values.max()), 255))
    s.cxr_bar.opacity.setValue(80)
    assert s.overlay.opacity == pytest.approx(0.8)


def test_flagged_and_stale_maps_are_not_shown(shipped, window, qtbot):
    s = shipped.saliency
    with qtbot.waitSignal(shipped.ecg_predicted, timeout=TIMEOUT):
        shipped.open_ecg(PTBXL)
    record = shipped.record
    maps = explain_ecg(Predictor(precision="fp32"), preprocess_ecg(read_ecg(PTBXL)),
                       mode="separable", segment_s=5.0)
    flagged = {p: m.__class__(**{**m.__dict__, "valid": False, "reason": "noisy leads: V2"})
               for p, m in maps.items()}
    s.ecg_bar.toggle.blockSignals(True)
    s.ecg_bar.toggle.setChecked(True)
    s.ecg_bar.toggle.blockSignals(False)
    s._done("ecg", record, flagged, 0.1)
    assert s.bands.bands() == [] and s.shown_map("ecg") is None
    assert "not assessable (noisy leads: V2)" in s.ecg_bar.caption.text()
    s.ecg_maps = {}
    s._busy["ecg"] = True
    s._done("ecg", object(), maps, 0.1)                # computed for another record
    assert s.ecg_maps == {} or s.ecg_maps is not maps


def test_pdf_saliency_page(qapp, tmp_path):
    import subprocess

    from app.export_pdf import ReviewContent, export_review
    from engine.explain import explain_cxr
    from engine.io import read_cxr
    from engine.preprocess import preprocess_cxr

    predictor = Predictor(precision="fp32")
    record, image = read_ecg(PTBXL), read_cxr(NIH_CXR)
    ecg = explain_ecg(predictor, preprocess_ecg(record), mode="separable", segment_s=5.0)
    cxr = explain_cxr(predictor, preprocess_cxr(image), image_shape=image.pixels.shape, grid=4)
    ecg["edema"] = ecg["edema"].__class__(**{**ecg["edema"].__dict__, "valid": False,
                                             "reason": "out of distribution"})
    out = export_review(tmp_path / "r.pdf", ReviewContent(record=record, cxr=image,
                                                           saliency={"ecg": ecg, "cxr": cxr}))
    info = subprocess.run(["pdfinfo", str(out)], capture_output=True, text=True, check=True).stdout
    assert "Pages:           2" in info
    text = " ".join(subprocess.run(["pdftotext", "-f", "2", "-l", "2", str(out), "-"],
                                   capture_output=True, text=True, check=True).stdout.split())
    assert "saliency maps" in text and ecg["cardiomegaly"].summary in text
    assert "ECG Pulmonary edema: not assessable (out of distribution); map not shown" in text


def test_bands_follow_only_the_record_they_were_computed_for(shipped, window, qtbot):
    from app.views.saliency_overlay import EcgSaliencyBands

    with qtbot.waitSignal(shipped.ecg_predicted, timeout=TIMEOUT):
        shipped.open_ecg(PTBXL)
    maps = explain_ecg(Predictor(precision="fp32"), preprocess_ecg(read_ecg(PTBXL)),
                       mode="separable", segment_s=5.0)
    bands = EcgSaliencyBands(window.ecg_view)
    bands.set_map(maps["cardiomegaly"], shipped.record)
    assert len(bands.bands()) >= 12
    bands.set_map(maps["cardiomegaly"], read_ecg(PTBXL))       # same file, another object
    assert bands.bands() == []
    bands.set_map(maps["cardiomegaly"], shipped.record)
    window.ecg_view.set_record(read_ecg(PTBXL))                  # the view moves on
    assert bands.bands() == []
