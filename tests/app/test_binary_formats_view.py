"""SCP-ECG and EDF files in the app (offscreen): the Welch Allyn paediatric SCP file's
derived limb leads marked, V3R / V7 never drawn as V3 / V5, its measurements and
confirmed statements in the header; the EDF+ file drawn with its 12 stored leads."""

from __future__ import annotations

import numpy as np

from app.views.ecg_view import EcgView
from app.views.header_view import header_fields
from engine.io import read_ecg

from app_samples import DATA, PPM

WELCH = DATA / "formats/scp_ecg/welchallyn_cardiocontrol_ECG_20060620_112352_ANON000002.SCP"
EDF = DATA / "formats/edf/DERIVED_from_mortara_eli250_dicom.edf"


def test_scp_header_measurements_and_confirmed_statements():
    fields = header_fields(read_ecg(WELCH))
    assert fields["measurements"].startswith("HR 82 bpm  ·  RR 731 ms  ·  PR 177 ms")
    assert "QTc 401 ms" in fields["measurements"] and "T axis 25°" in fields["measurements"]
    assert "sinusrytm / AV-block I (begränsad)" in fields["statements"]
    assert fields["statements"].endswith("confirmed by a physician")
    assert "derived from I and II: III, aVR, aVL, aVF" in fields["signal"]


def test_scp_paper_marks_derived_leads_and_keeps_v3r_v7_apart(shown, qtbot, tmp_path):
    view = shown(EcgView(px_per_mm=PPM), 1200, 700)
    record = read_ecg(WELCH)
    view.set_record(record)
    qtbot.wait(5)
    labels = view.lead_labels()
    assert "III (derived)" in labels and "aVR (derived)" in labels and "II" in labels
    drawn = {panel.lead for panel, _ in view.traces()}
    assert "V3" not in drawn and "V5" not in drawn and "V3R" not in labels
    panel, trace = next((p, t) for p, t in view.traces() if p.lead == "V4")
    t, mv = trace.original()
    first = int(round(t[0] * record.fs))  # V4's panel shows a later stretch of the record
    np.testing.assert_allclose(mv, record.lead("V4")[first:first + len(mv)], atol=1e-6)


def test_edf_drawn_with_stored_leads(shown, qtbot):
    view = shown(EcgView(px_per_mm=PPM), 1200, 700)
    view.set_record(read_ecg(EDF))
    qtbot.wait(5)
    assert not any("derived" in label for label in view.lead_labels())
    assert {panel.lead for panel, _ in view.traces()} >= {"I", "II", "III", "V1", "V6"}
