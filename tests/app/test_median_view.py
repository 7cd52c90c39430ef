"""The median-beat view: the 12 median beats at true scale with fiducials, selected
like a layout; the measurement comes from the read worker."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from app.controller import _read_ecg
from app.views import median_view as mv

DATA = Path(__file__).resolve().parents[1] / "data" / "ecg"
LUDB1 = str(DATA / "wfdb" / "ludb" / "1.hea")
TIMEOUT = 20000


def test_median_view_draws_beats_at_true_scale_with_fiducials(qtbot):
    rec = _read_ecg(LUDB1)
    m = rec.meta["computed_measurements"]
    view = mv.MedianView(px_per_mm=4.0)
    qtbot.addWidget(view)
    view.set_record(rec)
    assert set(view.curves) == set(m.leads) and view.message == ""
    x, y = view.curves["V5"]
    beat = m.median_beats[m.leads.index("V5")].astype(np.float64)
    # 10 mm/mV and 25 mm/s
    assert np.ptp(y) == pytest.approx(np.ptp(beat) * 10.0, rel=1e-6)
    assert x[-1] - x[0] == pytest.approx((beat.size - 1) / m.median_fs * 25.0, rel=1e-6)
    # QT on paper = QT in ms at 25 mm/s, in every column
    on, toff = view.fiducial_x["qrs_on"], view.fiducial_x["t_off"]
    assert len(on) == 4
    for a, b in zip(on, toff):
        assert (b - a) / 25.0 * 1000.0 == pytest.approx(m.values["qt_ms"], abs=0.01)
    assert "p_on" in view.fiducial_x


def test_median_view_says_why_when_no_median_beat(qtbot):
    rec = _read_ecg(LUDB1)
    short = rec.__class__(signal=rec.signal[:, :1000], fs=rec.fs, leads=rec.leads)
    from app.controller import _with_measurements
    view = mv.MedianView(px_per_mm=4.0)
    qtbot.addWidget(view)
    view.set_record(_with_measurements(short))
    assert view.curves == {} and "too short" in view.message


def test_median_layout_is_selectable_like_the_others(controller, window, qtbot):
    with qtbot.waitSignal(controller.measured, timeout=TIMEOUT):  # measured after it is shown
        controller.open_ecg(LUDB1)
    idx = window.layout_combo.findData("median")
    assert idx >= 0
    window.layout_combo.setCurrentIndex(idx)
    assert window.view_stack.currentWidget() is window.median_view
    assert len(window.median_view.curves) == 12
    window.layout_combo.setCurrentIndex(window.layout_combo.findData("3x4"))
    assert window.view_stack.currentWidget() is window.ecg_view
    window.act_layouts["median"].trigger()            # shortcut 4 / View menu
    assert window.view_stack.currentWidget() is window.median_view
    assert window.layout_combo.currentData() == "median" and window.act_layouts["median"].isChecked()


def test_calipers_snap_to_fiducials_and_read_the_qt(qtbot):
    rec = _read_ecg(LUDB1)
    m = rec.meta["computed_measurements"]
    view = mv.MedianView(px_per_mm=4.0)
    qtbot.addWidget(view)
    view.set_record(rec)
    cal = view.calipers
    on, toff = view.fiducial_x["qrs_on"][1], view.fiducial_x["t_off"][1]
    cal.show(on + 0.4, toff - 1.5)
    for line in (cal.t1, cal.t2):
        line.sigPositionChangeFinished.emit(line)   # as when the user releases it
    assert cal.t1.value() == on and cal.t2.value() == toff
    assert cal.reading().interval_ms == pytest.approx(m.values["qt_ms"], abs=0.01)
    cal.t1.setValue(on + 10.0)                       # too far from any fiducial: stays
    cal.t1.sigPositionChangeFinished.emit(cal.t1)
    assert cal.t1.value() == on + 10.0
    cal.snap = False
    cal.t2.setValue(toff - 1.0)
    cal.t2.sigPositionChangeFinished.emit(cal.t2)
    assert cal.t2.value() == toff - 1.0
