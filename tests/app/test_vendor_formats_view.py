"""Vendor XML ECGs in the app (offscreen): derived leads marked on the paper, device
measurements and statements in the header and the PDF, the Open dialog's file types."""

from __future__ import annotations

import subprocess

import numpy as np
import pytest

from app.controller import ECG_FILE_FILTER
from app.export_pdf import ReviewContent, export_review
from app.views.ecg_view import EcgView
from app.views.header_view import HeaderView, header_fields
from engine.io import read_ecg

from app_samples import DATA, PPM

MUSE = DATA / "formats/muse_xml/egm_muse-sinus.xml"
PHILIPS = DATA / "formats/philips_xml/sierra_1-03_129DYPRG_HeartStartMRx.xml"
HL7 = DATA / "formats/hl7_aecg/hl7_2003-12_ballot_Example_aECG_Mortara.xml"


def test_header_shows_device_measurements_and_statements_readably(shown):
    record = read_ecg(MUSE)
    fields = header_fields(record)
    assert fields["measurements"] == ("HR 90 bpm  ·  PR 144 ms  ·  P 82 ms  ·  QRS 86 ms  ·  QT 402 ms  ·  "
                                      "QTc 491 ms  ·  P axis 48°  ·  QRS axis 0°  ·  T axis 111°")
    assert fields["statements"].startswith("Normal Sinus rhythm / Anterior infarct, age undetermined / ")
    assert fields["statements"].endswith(" / unconfirmed")
    assert fields["patient"] == "DOE, JOHN  ·  ID 081486213  ·  Age 43  ·  Sex M"
    assert fields["acquisition"].startswith("2023-04-29 22:41:16  ·  MV360")
    assert "derived from I and II: III, aVR, aVL, aVF" in fields["signal"]
    header = shown(HeaderView(), 1200, 120)
    header.set_record(record)
    assert "Device measurements:" in header.right.text() and "QTc 491 ms" in header.right.text()


def test_statements_of_a_philips_file_with_codes():
    fields = header_fields(read_ecg(PHILIPS))
    assert "Inferior infarct, acute (LCx)" in fields["statements"]
    assert "derived" not in fields["signal"]  # Philips stores all 12 leads


def test_derived_leads_are_marked_on_the_paper(shown, qtbot):
    view = shown(EcgView(px_per_mm=PPM), 1200, 700)
    record = read_ecg(MUSE)
    view.set_record(record)
    qtbot.wait(5)
    labels = view.lead_labels()
    assert "III (derived)" in labels and "aVF (derived)" in labels
    assert "II" in labels and "V1" in labels and "V1 (derived)" not in labels
    panel, trace = next((p, t) for p, t in view.traces() if p.lead == "III")
    t, mv = trace.original()
    np.testing.assert_allclose(mv, record.lead("III")[:len(mv)], atol=1e-6)
    view.set_record(read_ecg(HL7))  # all 12 stored: nothing marked
    qtbot.wait(5)
    assert not any("derived" in label for label in view.lead_labels())


def test_pdf_carries_device_measurements_statements_and_derived_marks(qapp, tmp_path):
    out = export_review(tmp_path / "review.pdf", ReviewContent(record=read_ecg(MUSE)))
    text = " ".join(subprocess.run(["pdftotext", "-layout", str(out), "-"], capture_output=True,
                                   text=True, check=True).stdout.split())
    for needle in ("Device measurements:", "HR 90 bpm", "QTc 491 ms", "Statements:",
                   "Normal Sinus rhythm", "III (derived)", "DOE, JOHN"):
        assert needle in text, needle


@pytest.mark.parametrize("pattern", ["*.xml", "*.dcm", "*.hea", "*.scp", "*.edf", "*.bdf"])
def test_open_dialog_lists_the_formats(pattern):
    assert pattern in ECG_FILE_FILTER
    assert "GE MUSE XML" in ECG_FILE_FILTER and "HL7 aECG" in ECG_FILE_FILTER


@pytest.mark.parametrize("path", sorted((DATA / "formats").rglob("*.xml")), ids=lambda p: p.name)
def test_every_xml_sample_opens_on_the_paper(shown, qtbot, path):
    view = shown(EcgView(px_per_mm=PPM), 1200, 700)
    record = read_ecg(path)
    view.set_record(record)
    qtbot.wait(5)
    assert len(view.traces()) == 13  # 3x4 + rhythm strip
    panel, trace = view.traces()[0]
    t, mv = trace.original()
    np.testing.assert_allclose(mv, record.lead(panel.lead)[:len(mv)], atol=1e-6)
    assert header_fields(record)["source"].endswith(f"({record.source.format})")


def test_an_xml_beside_a_wfdb_header_is_not_taken_for_its_signal_file():
    from app.controller import distinct_records

    assert distinct_records(["/x/r.hea", "/x/r.dat", "/x/r.xml"]) == ["/x/r.hea", "/x/r.xml"]
