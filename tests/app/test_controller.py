"""The review window end to end (offscreen): reading and inference in workers, the
AI panel, errors that keep the open record, missing bundle, CXR, drag and drop,
shortcuts, settings."""

from __future__ import annotations

import numpy as np
import pytest

from app.controller import Controller
from app.qt import QtCore, QtGui
from app.settings import Settings
from engine.constants import DEMO_DISCLAIMER, PATHOLOGIES
from engine.inference import Predictor
from engine.io import read_cxr, read_ecg

from app_samples import NIH_CXR, PTBXL, SAMPLE_ECGS

TIMEOUT = 20000


@pytest.fixture
def live(window, errors, tiny_bundle, tmp_path):
    return Controller(window, models_dir=str(tiny_bundle),
                      error_presenter=lambda t, m: errors.append((t, m)),
                      settings_dir=tmp_path / "config")


def test_ai_panel_fills_from_worker_with_the_engines_predictions(live, window, qtbot, tiny_bundle):
    with qtbot.waitSignal(live.models_ready, timeout=TIMEOUT) as ok:
        live.load_models()
    assert ok.args == [True]
    with qtbot.waitSignal(live.ecg_predicted, timeout=TIMEOUT) as sig:
        live.open_ecg(PTBXL)
        assert live.record is None          # returned at once: reading runs in the pool
    preds = sig.args[0]
    expected = Predictor(tiny_bundle).predict_ecg(read_ecg(PTBXL))
    panel = window.ai_panel
    assert not panel.busy
    for p in PATHOLOGIES:
        assert preds[p].probability == pytest.approx(expected[p].probability, abs=1e-6)
        assert panel.cell_text(p, "ECG p") == f"{expected[p].probability:.3f}"
        assert panel.cell_text(p, "ECG thr") == f"{expected[p].threshold:.3f}"
        assert panel.cell_text(p, "ECG call") == ("POSITIVE" if expected[p].positive else "negative")
    assert panel.disclaimer.isVisibleTo(window) and panel.disclaimer.text() == DEMO_DISCLAIMER
    assert "phantom" in panel.provenance.text()
    assert len(window.ecg_view.traces()) == 13


def test_busy_indicator_shows_while_inference_runs(live, window, qtbot):
    with qtbot.waitSignal(live.models_ready, timeout=TIMEOUT):
        live.load_models()
    with qtbot.waitSignal(live.ecg_shown, timeout=TIMEOUT):
        live.open_ecg(PTBXL)
    busy_right_after_drawing = window.ai_panel.busy       # inference queued in the worker
    qtbot.waitUntil(lambda: live.ecg_predictions != {}, timeout=TIMEOUT)
    assert busy_right_after_drawing and not window.ai_panel.busy


def test_bad_file_keeps_previous_record_and_shows_error(controller, window, errors, qtbot,
                                                        tmp_path):
    with qtbot.waitSignal(controller.ecg_shown, timeout=TIMEOUT):
        controller.open_ecg(PTBXL)
    first = controller.record
    bad = tmp_path / "broken.hea"
    bad.write_text("this is not a WFDB header\n")
    with qtbot.waitSignal(controller.error_shown, timeout=TIMEOUT) as sig:
        controller.open_ecg(bad)
    assert "broken.hea" in sig.args[0] and sig.args[1]
    assert errors and errors[-1] == (sig.args[0], sig.args[1])
    assert controller.record is first and window.ecg_view.record is first
    _, trace = window.ecg_view.traces()[0]
    np.testing.assert_array_equal(trace.original()[1], first.lead("I")[:len(trace.original()[1])])
    assert window.header.fields["signal"].startswith("12 leads")


def test_default_error_dialog_is_non_blocking(window, qtbot, tmp_path):
    ctl = Controller(window, models_dir=str(tmp_path / "none"), settings_dir=tmp_path / "c")
    with qtbot.waitSignal(ctl.error_shown, timeout=TIMEOUT):
        ctl.open_ecg(tmp_path / "missing.hea")
    assert ctl.error_box is not None and ctl.error_box.isVisible()
    assert "missing.hea" in ctl.error_box.text() + ctl.error_box.windowTitle()
    ctl.error_box.close()


def test_missing_bundle_shows_message_and_ecg_still_opens(controller, window, qtbot):
    with qtbot.waitSignal(controller.models_ready, timeout=TIMEOUT) as ok:
        controller.load_models()
    assert ok.args == [False]
    with qtbot.waitSignal(controller.ready, timeout=TIMEOUT):
        controller.open_ecg(PTBXL)
    assert controller.record is not None and len(window.ecg_view.traces()) == 13
    msg = window.ai_panel.message.text()
    assert "AI findings unavailable" in msg and "no-bundle-here" in msg
    assert window.ai_panel.cell_text("edema", "ECG p") == ""


def test_cxr_teacher_predictions_beside_ecg(live, window, qtbot, tiny_bundle):
    with qtbot.waitSignal(live.models_ready, timeout=TIMEOUT):
        live.load_models()
    with qtbot.waitSignal(live.cxr_predicted, timeout=TIMEOUT) as sig:
        live.open_cxr(NIH_CXR)
    expected = Predictor(tiny_bundle).predict_cxr(read_cxr(NIH_CXR))
    for p in PATHOLOGIES:
        assert sig.args[0][p].probability == pytest.approx(expected[p].probability, abs=1e-6)
        assert window.ai_panel.cell_text(p, "CXR p") == f"{expected[p].probability:.3f}"
    img = window.cxr_view.image_item.image
    np.testing.assert_array_equal(img, read_cxr(NIH_CXR).pixels)
    window.cxr_view.set_window(0.4, 0.2)
    assert tuple(window.cxr_view.image_item.levels) == pytest.approx((0.3, 0.5))


def test_drop_opens_ecg_and_cxr(controller, window, qtbot):
    mime = QtCore.QMimeData()
    mime.setUrls([QtCore.QUrl.fromLocalFile(str(SAMPLE_ECGS[8])),
                  QtCore.QUrl.fromLocalFile(str(NIH_CXR))])
    event = QtGui.QDropEvent(QtCore.QPointF(100, 100), QtCore.Qt.DropAction.CopyAction, mime,
                             QtCore.Qt.MouseButton.LeftButton, QtCore.Qt.KeyboardModifier.NoModifier)
    window.dropEvent(event)
    qtbot.waitUntil(lambda: controller.record is not None and controller.cxr is not None,
                    timeout=TIMEOUT)
    assert controller.record.source.format.startswith("dicom")
    assert window.cxr_view.image is controller.cxr


def test_shortcuts_and_settings_round_trip(controller, window, qtbot, tmp_path):
    with qtbot.waitSignal(controller.ecg_shown, timeout=TIMEOUT):
        controller.open_ecg(PTBXL)
    shortcut = {a.shortcut().toString(): a for a in window.actions()}
    for key in ("Ctrl+O", "Ctrl+Shift+O", "Ctrl+E", "Ctrl+P", "1", "2", "3", "+", "-"):
        assert key in shortcut, key
    shortcut["3"].trigger()
    assert window.ecg_view.layout_name == "12x1" and window.layout_combo.currentData() == "12x1"
    shortcut["-"].trigger()
    assert window.ecg_view.gain == 5.0 and window.gain_combo.currentData() == 5.0
    window.rhythm_combo.setCurrentIndex(window.rhythm_combo.findData("V1"))
    path = controller.save_settings()
    s = Settings.load(path.parent)
    assert (s.layout, s.gain_mm_mv, s.rhythm_lead) == ("12x1", 5.0, "V1")
    assert s.recent_ecg == [str(PTBXL.resolve())] and s.geometry
    assert [a.text() for a in window.recent_menu.actions()] == [f"ECG: {PTBXL.resolve()}"]


def test_export_pdf_from_window(live, window, qtbot, tmp_path):
    import subprocess
    with qtbot.waitSignal(live.models_ready, timeout=TIMEOUT):
        live.load_models()
    with qtbot.waitSignal(live.ecg_predicted, timeout=TIMEOUT):
        live.open_ecg(PTBXL)
    out = live.export_pdf(tmp_path / "review.pdf")
    text = subprocess.run(["pdftotext", "-layout", str(out), "-"], capture_output=True,
                          text=True, check=True).stdout
    assert DEMO_DISCLAIMER in " ".join(text.split())
    assert "Cardiomegaly" in text and "25 mm/s" in text


def test_distinct_records_drops_the_signal_files_of_a_dropped_header():
    from app.controller import distinct_records
    paths = ["/d/a.dat", "/d/a.hea", "/d/a.xyz", "/d/b.dat", "/e/a.mat", "/d/a.png", "/d/c.HEA",
             "/d/c.mat"]
    assert distinct_records(paths) == ["/d/a.hea", "/d/b.dat", "/e/a.mat", "/d/a.png", "/d/c.HEA"]


def test_a_record_dropped_as_header_and_signal_file_is_read_once(controller, qtbot, monkeypatch):
    import engine.io.dispatch
    read_any, reads = engine.io.dispatch.read_any, []
    monkeypatch.setattr(engine.io.dispatch, "read_any", lambda p: reads.append(p) or read_any(p))
    with qtbot.waitSignal(controller.ecg_shown, timeout=TIMEOUT):
        controller.open_paths([str(PTBXL.with_suffix(".dat")), str(PTBXL)])
    controller.pool.waitForDone(TIMEOUT)
    assert reads == [str(PTBXL)]
    assert controller.settings.recent_ecg == [str(PTBXL.resolve())]


def test_open_dialog_reads_the_chosen_chest_x_ray(controller, qtbot, monkeypatch):
    from app.qt import QtWidgets
    asked = []
    monkeypatch.setattr(QtWidgets.QFileDialog, "getOpenFileName",
                        lambda *args: asked.append(args[1:]) or (str(NIH_CXR), ""))
    with qtbot.waitSignal(controller.cxr_shown, timeout=TIMEOUT):
        controller.ask_open_cxr()
    assert asked == [("Open chest X-ray", "",
                      "Chest X-ray (*.dcm *.png *.jpg *.jpeg);;All files (*)")]
    assert controller.settings.recent_cxr == [str(NIH_CXR.resolve())]
