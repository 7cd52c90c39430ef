"""The AI panel's reason lines never overlap its provenance line or the table, and the
ECG paper does not move when the measurements arrive.

Offscreen, the real demo case 1 (three borderline findings with long reasons) and the
shipped bundle, at 1600 x 900 and 1280 x 720, and with the worklist docks open; the
header's height with device values beside the computed ones (real DICOM and WFDB files).
Geometry is compared in one coordinate system (the AI panel's)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from app.controller import Controller, _read_ecg
from app.qt import QtCore, QtWidgets
from app.views.header_view import MEASURING_TEXT, HeaderView, computed_items
from engine.constants import PATHOLOGIES

from app_samples import REPO

CASE1 = REPO / "resources" / "demo" / "case1_cardiomegaly_edema_pleural_effusion_ecg.hea"
TIMEOUT = 120000



def _rect(widget: QtWidgets.QWidget, panel: QtWidgets.QWidget) -> QtCore.QRect:
    """`widget`'s rectangle in `panel`'s coordinates."""
    return QtCore.QRect(widget.mapTo(panel, QtCore.QPoint(0, 0)), widget.size())


def _open_case1(ctl: Controller, window, qtbot) -> None:
    with qtbot.waitSignal(ctl.measured, timeout=TIMEOUT):
        assert ctl.open_demo(1)
    panel = window.ai_panel
    qtbot.waitUntil(lambda: len(panel.cxr) == len(PATHOLOGIES) and not panel.busy,
                    timeout=TIMEOUT)
    qtbot.wait(50)


def _assert_no_overlap(window, qtbot) -> None:
    panel = window.ai_panel
    qtbot.wait(100)  # the layout settled (a top-level window grows to its minimum late)
    reasons, prov, button, table, details = (panel.flags_label, panel.provenance,
                                             panel.card_button, panel.table, panel.details)
    text = reasons.text()
    assert text.count("borderline") >= 4 and "uncertainty band" in text  # the long reasons
    assert prov.text().endswith("· ECG p uncalibrated")
    for w in (reasons, prov, button, table, details):
        assert w.isVisible()
    r_reasons, r_prov, r_button = _rect(reasons, panel), _rect(prov, panel), _rect(button, panel)
    r_table, r_details = _rect(table, panel), _rect(details.viewport(), panel)
    assert not r_reasons.intersects(r_prov), (r_reasons, r_prov)
    assert not r_reasons.intersects(r_button), (r_reasons, r_button)
    assert not r_prov.intersects(r_button), (r_prov, r_button)
    # each wrapped label has all the height its text needs at its width (never squeezed)
    assert reasons.height() >= reasons.heightForWidth(reasons.width())
    assert prov.height() >= prov.heightForWidth(prov.width())
    # the reasons area is below the table, inside the panel; the table shows its last row
    assert r_details.top() >= r_table.bottom() and not r_details.intersects(r_table), \
        (panel.size(), panel.minimumSizeHint(), window.size(), window.right_splitter.sizes())
    assert panel.rect().contains(r_details) and panel.rect().contains(r_table)
    last = table.visualRect(table.model().index(table.rowCount() - 1, 0))
    assert last.bottom() <= table.viewport().height()
    hbar = table.horizontalScrollBar()
    if hbar.isVisible():  # the scroll bar does not cover the last row
        assert table.viewport().mapTo(table, last.bottomLeft()).y() < \
            hbar.mapTo(table, QtCore.QPoint(0, 0)).y()
    # the panel got at least its minimum from the splitter (else its layout overlaps)
    assert panel.height() >= panel.minimumSizeHint().height()
    # scrolled to the end, the provenance's last line shows in the reasons area
    details.verticalScrollBar().setValue(details.verticalScrollBar().maximum())
    QtWidgets.QApplication.processEvents()
    bottom = prov.mapTo(details.viewport(), QtCore.QPoint(0, prov.height())).y()
    assert 0 < bottom <= details.viewport().height()


@pytest.mark.parametrize("size", [(1600, 900), (1280, 720)])
def test_reasons_do_not_overlap_provenance(shipped, window, qtbot, errors, size):
    window.resize(*size)
    _open_case1(shipped, window, qtbot)
    assert not errors
    assert window.size().toTuple() == size
    _assert_no_overlap(window, qtbot)
    if size == (1600, 900):  # at the usual size all the reasons show, nothing to scroll
        details = window.ai_panel.details
        assert details.verticalScrollBar().maximum() == 0


def test_reasons_do_not_overlap_with_worklist_docks(shipped, window, qtbot, errors, tmp_path):
    from app.worklist_controller import WorklistController
    wl = WorklistController(shipped, tmp_path / "store" / "store.sqlite3")
    try:
        window.resize(1280, 720)
        wl.show_docks()
        assert wl.worklist_dock.isVisible() and wl.overread_dock.isVisible()
        _open_case1(shipped, window, qtbot)
        assert not errors
        assert window.width() == 1280  # (its height: at least the docks' and X-ray's minimum)
        _assert_no_overlap(window, qtbot)
        # narrow and short: the reasons scroll rather than overlap
        assert window.ai_panel.details.verticalScrollBar().maximum() > 0
        # the user drags the panel down to its minimum: still no overlap
        split = window.right_splitter
        low = window.ai_panel.minimumSizeHint().height()
        split.setSizes([low, sum(split.sizes()) - low])
        assert split.sizes()[0] == low
        _assert_no_overlap(window, qtbot)
    finally:
        wl.shutdown()


@pytest.mark.parametrize("size", [(1600, 900), (1280, 720)])
def test_paper_does_not_move_when_measurements_arrive(shipped, window, qtbot, size):
    window.resize(*size)
    qtbot.wait(20)
    at_ready: dict = {}

    def on_ready() -> None:
        QtWidgets.QApplication.processEvents()
        at_ready.update(y=window.ecg_view.mapTo(window, QtCore.QPoint(0, 0)).y(),
                        header_h=window.header.height(), measuring=window.header.measuring,
                        text=" ".join(lab.text() for lab in window.header.computed_labels))

    shipped.ready.connect(on_ready)
    with qtbot.waitSignal(shipped.measured, timeout=TIMEOUT):
        assert shipped.open_demo(1)
    QtWidgets.QApplication.processEvents()
    assert at_ready["measuring"] and MEASURING_TEXT in at_ready["text"]
    assert not window.header.measuring
    assert "QRS 116 ms" in " ".join(lab.text() for lab in window.header.computed_labels)
    assert window.ecg_view.mapTo(window, QtCore.QPoint(0, 0)).y() == at_ready["y"]
    assert window.header.height() == at_ready["header_h"]


DATA = REPO / "tests" / "data" / "ecg"


@pytest.mark.parametrize("width", [1000, 700, 480])
@pytest.mark.parametrize("name", ["dicom/pydicom_waveform_ecg.dcm", "wfdb/ludb/8.hea"])
def test_header_height_kept_with_device_values(shown, qtbot, name, width):
    """Files with device values (two lines per computed value that has one: the Mortara
    DICOM's PR, QRS, QT, QTc; LUDB 8 given a device heart rate only): the header keeps its
    height and the ECG below keeps its place while measuring and after, at each width
    (4, 2 or 1 grid columns)."""
    rec = _read_ecg(str(DATA / name))
    if name.endswith("8.hea"):
        hr = rec.meta["computed_measurements"].values["hr_bpm"]
        rec = replace(rec, meta={**rec.meta, "device_measurements": {"hr_bpm": hr + 20.0}})
    assert any(it["device"] is not None for it in computed_items(rec))
    bare = replace(rec, meta={k: v for k, v in rec.meta.items() if k != "computed_measurements"})
    box = QtWidgets.QWidget()
    lay = QtWidgets.QVBoxLayout(box)
    view, below = HeaderView(), QtWidgets.QLabel("ECG")
    lay.addWidget(view)
    lay.addWidget(below, 1)
    shown(box, width, 400)
    view.set_record(bare, measuring=True)
    qtbot.wait(50)
    assert view.measuring
    before = (view.height(), below.y(), view.left.height())
    view.set_record(rec)
    qtbot.wait(50)
    assert not view.measuring and len(view.computed_labels) == 9
    assert (view.height(), below.y(), view.left.height()) == before
    # every value label inside the header, none on top of another
    rects = [QtCore.QRect(lab.mapTo(view, QtCore.QPoint(0, 0)), lab.size())
             for lab in view.computed_labels]
    assert all(view.rect().contains(r) for r in rects)
    assert not any(a.intersects(b) for i, a in enumerate(rects) for b in rects[i + 1:])
