"""The header shows computed measurements (read in the worker with the file), a
tooltip per value, why a value is missing, and device values side by side."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from app.controller import _read_ecg
from app.views.header_view import HeaderView

DATA = Path(__file__).resolve().parents[1] / "data" / "ecg"


def test_header_computed_values_and_tooltips(qtbot):
    rec = _read_ecg(str(DATA / "wfdb" / "ludb" / "1.hea"))
    m = rec.meta["computed_measurements"]
    view = HeaderView()
    qtbot.addWidget(view)
    view.set_record(rec)
    items = {it["key"]: it for it in view.computed}
    assert items["pr_ms"]["text"] == f"PR {m.values['pr_ms']:g} ms"
    assert "median beats" in items["qrs_ms"]["tooltip"]
    assert "bazett" in items["qtc_ms"]["tooltip"]
    labels = [lab.text() for lab in view.computed_labels]
    assert any(t.startswith("PR ") for t in labels)
    assert any("not measured" not in lab.toolTip() for lab in view.computed_labels[1:])


def test_header_missing_value_says_why_and_device_difference_highlighted(qtbot):
    rec = _read_ecg(str(DATA / "wfdb" / "ludb" / "8.hea"))
    m = rec.meta["computed_measurements"]
    rec = replace(rec, meta={**rec.meta, "device_measurements": {"hr_bpm": m.values["hr_bpm"] + 20.0}})
    view = HeaderView()
    qtbot.addWidget(view)
    view.set_record(rec)
    items = {it["key"]: it for it in view.computed}
    assert items["pr_ms"]["text"] == "PR —" and "P wave" in items["pr_ms"]["tooltip"]
    assert items["hr_bpm"]["differs"] is True and items["qt_ms"]["device"] is None
    view.set_record(None)
    assert view.computed == [] and view.computed_box.isHidden()


def test_dicom_device_values_side_by_side(qtbot):
    """The Mortara DICOM carries its own PR 161, QRS 75, QT 368, QTc 370 ms: shown beside
    ours; QTc (ours 394 Fridericia) differs by more than 20 ms and is highlighted."""
    rec = _read_ecg(str(DATA / "dicom" / "pydicom_waveform_ecg.dcm"))
    view = HeaderView()
    qtbot.addWidget(view)
    view.set_record(rec)
    items = {it["key"]: it for it in view.computed}
    assert items["pr_ms"]["device"] == "161 ms" and items["pr_ms"]["differs"] is False
    assert items["qtc_ms"]["device"] == "370 ms" and items["qtc_ms"]["differs"] is True
    assert items["hr_bpm"]["device"] is None            # the file has no heart rate
    lab = next(lab for lab in view.computed_labels if lab.text().startswith("QTc"))
    assert "device 370 ms" in lab.text() and "#b00" in lab.text() and "Device: 370 ms" in lab.toolTip()
