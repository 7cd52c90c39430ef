"""Defects a reader noticed (issue 14), each checked on state and data, offscreen, with
real files: caliper readout after another file, the default window showing the whole
page with Export visible, the AI table's scroll bar, calibration pulse vs lead label,
PDF traces clipped to their lead box, and the chest X-ray Invert control."""

from __future__ import annotations

import dataclasses

import numpy as np
import pydicom
import pytest

from app import paper
from app.controller import Controller
from app.export_pdf import ECG_TOP_MM, MARGIN_MM, ReviewContent, _draw_ecg, _Page
from app.qt import QtCore, QtGui
from app.views.ai_panel import AiPanel
from app.views.cxr_view import CxrView
from app.views.ecg_view import EcgView
from engine.constants import PATHOLOGIES
from engine.inference import Predictor
from engine.io import read_cxr, read_ecg

from app_samples import DATA, PPM, PTBXL, SAMPLE_ECGS

TIMEOUT = 20000
SIIM = next((DATA / "cxr/dicom").glob("siim_*.dcm"))


def _open(ctl: Controller, qtbot, path) -> None:
    with qtbot.waitSignal(ctl.ecg_shown, timeout=TIMEOUT):
        ctl.open_ecg(path)


def test_caliper_readout_is_cleared_when_another_file_opens(controller, window, qtbot):
    _open(controller, qtbot, PTBXL)
    window.act_calipers.setChecked(True)
    controller.calipers.show(50.0, 70.0, -20.0, -10.0)
    assert window.caliper_label.text().startswith("Δt 800 ms")
    _open(controller, qtbot, SAMPLE_ECGS[0])
    assert window.caliper_label.text() == ""
    assert not controller.calipers.visible and not window.act_calipers.isChecked()


def _paper_inside_view(view: EcgView) -> bool:
    w_mm, h_mm = paper.paper_size_mm(view.layout_name, view.record.duration_s, view.speed)
    rect = QtCore.QRectF(view.graphics.viewport().rect())
    return all(rect.contains(view.map_mm_to_widget(x, y))
               for x, y in ((0.0, 0.0), (w_mm, 0.0), (0.0, -h_mm), (w_mm, -h_mm)))


@pytest.mark.parametrize("size", [(1500, 860), (1000, 700)])
def test_default_window_shows_the_whole_page_and_export(controller, window, qtbot, size):
    window.resize(*size)
    _open(controller, qtbot, PTBXL)
    qtbot.wait(20)
    view = window.ecg_view
    assert view.fit_mode == "page" and view.zoom < 1.0      # 96 dpi: true scale is too big
    assert _paper_inside_view(view)                          # V4-V6 and the rhythm strip too
    button = window.file_toolbar.widgetForAction(window.act_export)
    assert button is not None and button.isVisible()         # not in the overflow menu
    assert QtCore.QRect(QtCore.QPoint(0, 0), window.size()).contains(
        button.mapTo(window, button.rect().bottomRight()))
    window.act_zoom_100.trigger()                            # true scale on request
    assert view.zoom == 1.0 and view.fit_mode is None and not _paper_inside_view(view)
    window.act_zoom_fit_width.trigger()
    w_mm, _ = paper.paper_size_mm("3x4", view.record.duration_s, view.speed)
    right = view.map_mm_to_widget(w_mm, 0.0).x()
    assert view.fit_mode == "width"
    assert view.graphics.viewport().width() - 30 < right <= view.graphics.viewport().width()
    window.act_zoom_fit.trigger()
    assert _paper_inside_view(view)


def test_ai_table_scroll_bar_does_not_cover_the_last_row(shown, qtbot, tiny_bundle):
    preds = Predictor(tiny_bundle).predict_ecg(read_ecg(PTBXL))
    panel = shown(AiPanel(), 900, 500)
    panel.set_ecg_predictions(preds)
    qtbot.wait(20)
    panel.resize(260, 500)                                  # narrower: a horizontal scroll bar
    qtbot.wait(20)
    table = panel.table
    assert table.horizontalScrollBar().maximum() > 0
    last = len(PATHOLOGIES) - 1
    bottom = table.rowViewportPosition(last) + table.rowHeight(last)
    assert bottom <= table.viewport().height()
    assert panel.cell_text(PATHOLOGIES[-1], "ECG p") == f"{preds[PATHOLOGIES[-1]].probability:.3f}"


@pytest.mark.parametrize("speed", paper.SPEEDS_MM_S)
def test_calibration_pulse_does_not_overlap_the_lead_label(shown, qtbot, speed):
    view = shown(EcgView(px_per_mm=PPM), 1200, 700)
    view.set_record(read_ecg(PTBXL))
    view.set_speed(speed)
    pulses = view.calibration_pulses()
    assert len(pulses) == 4
    for panel, pulse in pulses:
        xs, _ = pulse.getData()
        label = next(lab for p, lab in view.lead_label_items() if p == panel)
        assert label.pos().x() > xs.max(), (speed, panel.label)   # right of the pulse
        assert label.pos().x() < panel.x_mm + (panel.t1_s - panel.t0_s) * speed  # in its panel


def test_pdf_clips_each_trace_to_its_lead_box(qapp):
    rec = read_ecg(PTBXL)
    tall = dataclasses.replace(rec, signal=rec.signal * 25.0)   # tens of mV: far off its row
    dpi = 100.0
    img = QtGui.QImage(int(297 / 25.4 * dpi), int(210 / 25.4 * dpi),
                       QtGui.QImage.Format.Format_RGB32)
    img.fill(QtGui.QColor(255, 255, 255))
    painter = QtGui.QPainter(img)
    try:
        w_mm, h_mm, _ = _draw_ecg(_Page(painter, dpi), ReviewContent(record=tall))
    finally:
        painter.end()
    ptr = img.constBits()
    arr = np.frombuffer(ptr, np.uint8).reshape(img.height(), img.bytesPerLine() // 4, 4)
    dark = arr[:, : img.width(), :3].max(axis=2) < 80
    k = dpi / 25.4
    top, bottom = int(ECG_TOP_MM * k) - 1, int((ECG_TOP_MM + h_mm) * k) + 2
    assert dark[top + 2:bottom - 2].any()                    # the traces are drawn ...
    assert not dark[:top].any() and not dark[bottom:].any()  # ... and never off the paper
    right = int((MARGIN_MM + w_mm) * k) + 2
    assert not dark[:, right:].any()


def test_invert_control_on_a_real_cxr_tagged_monochrome1(shown, qtbot, tmp_path):
    ds = pydicom.dcmread(SIIM)
    assert ds.PhotometricInterpretation == "MONOCHROME2"
    ds.PhotometricInterpretation = "MONOCHROME1"       # mis-tagged: the pixels are MONOCHROME2
    path = tmp_path / "mislabelled.dcm"
    ds.save_as(path)
    truth = read_cxr(SIIM).pixels
    negative = read_cxr(path)
    np.testing.assert_allclose(negative.pixels, 1.0 - truth, atol=1e-6)
    view = shown(CxrView(), 500, 600)
    view.set_image(negative)
    assert "MONOCHROME1" in view.caption.text()
    assert view.invert_check.isEnabled() and not view.invert_check.isChecked()
    np.testing.assert_allclose(view.image_item.image, 1.0 - truth, atol=1e-6)
    view.set_window(0.4, 0.6)
    view.invert_check.click()
    assert view.inverted
    np.testing.assert_allclose(view.image_item.image, truth, atol=1e-6)
    assert (view.level, view.window) == (0.4, 0.6)           # window/level kept
    view.set_image(read_cxr(SIIM))                          # a new image starts as read
    assert not view.inverted and not view.invert_check.isChecked()
    np.testing.assert_allclose(view.image_item.image, truth, atol=1e-6)
