"""The ECG paper: plotted data equals the engine's arrays, true-scale grid,
calipers, layouts and long-record decimation (offscreen, asserting on data)."""

from __future__ import annotations

import numpy as np
import pytest

from app import paper
from app.filters import DisplayFilters
from app.views.ecg_view import EcgView
from engine.io import read_ecg

from app_samples import PPM, SAMPLE_ECGS


@pytest.fixture
def view(shown):
    return shown(EcgView(px_per_mm=PPM), 1200, 700)


def _settle(qtbot):
    qtbot.wait(5)


@pytest.mark.parametrize("path", SAMPLE_ECGS, ids=lambda p: p.name)
def test_plotted_data_equals_engine_arrays(view, qtbot, path):
    record = read_ecg(path)
    view.set_record(record)
    _settle(qtbot)
    traces = view.traces()
    assert len(traces) == 13                      # 12 leads + rhythm strip
    assert {p.lead for p, _ in traces} == set(record.leads)
    covered = {lead: [] for lead in record.leads}
    for panel, trace in traces:
        t, y = trace.original()
        i0 = int(round(panel.t0_s * record.fs))
        np.testing.assert_array_equal(y, record.lead(panel.lead)[i0:i0 + len(y)])
        np.testing.assert_allclose(t, (i0 + np.arange(len(y))) / record.fs)
        shown_t, shown_y = trace.getData()
        spp = record.fs / (PPM * 25.0)          # samples per pixel at 100 %
        if spp <= 8:                            # drawn exactly, clipped to view at most
            k0 = int(round((shown_t[0] - t[0]) * record.fs))
            np.testing.assert_array_equal(shown_y, y[k0:k0 + len(shown_y)])
        else:                                   # peak-decimated: extremes survive
            assert shown_y.max() <= y.max() and shown_y.min() >= y.min()
        if panel.row < 3:
            covered[panel.lead].append((panel.t0_s, panel.t1_s))
    for lead, spans in covered.items():
        assert spans == [(spans[0][0], spans[0][0] + 2.5)], lead   # each lead 2.5 s in 3x4


def test_12x1_and_6x2_cover_the_whole_record(view, qtbot):
    record = read_ecg(SAMPLE_ECGS[4])            # PTB: 38.4 s at 1000 Hz
    view.set_record(record)
    view.set_layout("12x1")
    _settle(qtbot)
    traces = view.traces()
    assert len(traces) == 12
    for panel, trace in traces:
        np.testing.assert_array_equal(trace.original()[1], record.lead(panel.lead))
    view.set_layout("6x2")
    view.set_page_start(20.0)
    assert [(p.t0_s, p.t1_s) for p, _ in view.traces()][:1] == [(20.0, 25.0)]


def test_grid_is_true_scale_at_25_mm_s_and_10_mm_mv(view, qtbot):
    record = read_ecg(SAMPLE_ECGS[5])
    view.set_record(record)
    view.zoom_100()
    _settle(qtbot)
    assert (view.speed, view.gain, view.zoom) == (25.0, 10.0, 1.0)
    assert (view.grid.minor_mm, view.grid.major_mm) == (1.0, 5.0)
    a, b, c = (view.map_mm_to_widget(10, -20), view.map_mm_to_widget(11, -20),
               view.map_mm_to_widget(10, -25))
    assert b.x() - a.x() == pytest.approx(PPM, rel=1e-6)            # 1 mm grid square
    assert c.y() - a.y() == pytest.approx(5 * PPM, rel=1e-6)        # 5 mm square, y down
    panel, trace = view.traces()[0]
    # one second of trace is 25 mm and one millivolt is 10 mm on screen
    p0 = trace.mapToView(trace.mapFromItem(trace, _pt(0.0, 0.0)))
    p1 = trace.mapToView(_pt(1.0, 1.0))
    w0, w1 = view.map_mm_to_widget(p0.x(), p0.y()), view.map_mm_to_widget(p1.x(), p1.y())
    assert w1.x() - w0.x() == pytest.approx(25 * PPM, rel=1e-6)
    assert w0.y() - w1.y() == pytest.approx(10 * PPM, rel=1e-6)
    view.set_gain(20.0)
    p1 = view.traces()[0][1].mapToView(_pt(1.0, 1.0))
    p0 = view.traces()[0][1].mapToView(_pt(1.0, 0.0))
    assert p1.y() - p0.y() == pytest.approx(20.0)
    assert "25 mm/s" in view.scale_text() and "20 mm/mV" in view.scale_text()


def _pt(x, y):
    from app.qt import QtCore
    return QtCore.QPointF(x, y)


def test_long_record_is_decimated_when_zoomed_out_and_exact_when_zoomed_in(view, qtbot):
    record = read_ecg(SAMPLE_ECGS[4])            # 1000 Hz, 38.4 s
    view.set_record(record)
    view.set_layout("12x1")
    view.zoom_to(0.5)
    qtbot.waitUntil(lambda: len(view.traces()[0][1].getData()[0]) < record.n_samples // 3)
    view.zoom_to(8.0)
    trace = view.traces()[0][1]
    qtbot.waitUntil(lambda: len(trace.getData()[0]) < 2000)
    t, y = trace.getData()
    k0 = int(round(t[0] * record.fs))
    np.testing.assert_array_equal(y, record.lead("I")[k0:k0 + len(y)])


def test_display_filters_are_labelled_and_leave_record_untouched(view, qtbot):
    record = read_ecg(SAMPLE_ECGS[6])
    before = record.signal.copy()
    view.set_record(record)
    view.set_filters(DisplayFilters(baseline_hz=0.5, lowpass_hz=40.0, notch_hz=50.0))
    assert view.filter_labels == ["HP 0.5 Hz", "LP 40 Hz", "notch 50 Hz"]
    assert "HP 0.5 Hz" in view.scale_text()
    np.testing.assert_array_equal(record.signal, before)
    _, y = view.traces()[0][1].original()
    assert not np.allclose(y, record.lead("I")[: len(y)])


def test_calipers_measure_a_known_rr_interval(view, qtbot):
    from app.views.calipers import Calipers
    record = read_ecg(SAMPLE_ECGS[5])            # PTB-XL 00001, 100 Hz
    view.set_record(record)
    rhythm_panel, _ = view.traces()[-1]
    ii = record.lead("II")
    first = int(np.argmax(ii[:int(1.2 * record.fs)]))
    window = ii[first + int(0.3 * record.fs): first + int(1.6 * record.fs)]
    second = first + int(0.3 * record.fs) + int(np.argmax(window))
    x = lambda i: rhythm_panel.x_mm + (i / record.fs - rhythm_panel.t0_s) * view.speed  # noqa
    cal = Calipers(view.viewbox, view.speed, view.gain)
    with qtbot.waitSignal(cal.measured) as sig:
        cal.show(x(first), x(second), rhythm_panel.y_mm, rhythm_panel.y_mm + ii[first] * view.gain)
    expected_ms = (second - first) / record.fs * 1000.0
    assert sig.args[0].interval_ms == pytest.approx(expected_ms)
    assert sig.args[0].rate_bpm == pytest.approx(60000.0 / expected_ms)
    assert sig.args[0].amplitude_mv == pytest.approx(abs(ii[first]), rel=1e-5)
    assert f"{expected_ms:.0f} ms" in cal.label.textItem.toPlainText()
    cal.set_scale(50.0, 10.0)                    # same paper distance at 50 mm/s = half the time
    assert cal.reading().interval_ms == pytest.approx(expected_ms / 2)
    cal.set_scale(25.0, 10.0)
    cal.extent_mm = (0.0, 260.0)
    cal.set_marching(True)
    step = x(second) - x(first)
    ticks = cal.marching_positions()
    assert ticks and all(abs(((t - x(first)) / step) - round((t - x(first)) / step)) < 1e-6
                         for t in ticks)


def test_gain_and_speed_changes_move_the_same_items(view, qtbot):
    record = read_ecg(SAMPLE_ECGS[5])
    view.set_record(record)
    before = [trace for _, trace in view.traces()]
    view.set_gain(20.0)
    view.set_speed(50.0)
    assert [trace for _, trace in view.traces()] == before
    panels = paper.layout_panels("3x4", record.leads, record.duration_s, 50.0)
    assert [panel for panel, _ in view.traces()] == panels
    for panel, trace in view.traces():
        t = trace.original()[0][5]
        point = trace.mapToView(_pt(t, 1.0))          # 1 mV at time t
        assert point.x() == pytest.approx(panel.x_mm + (t - panel.t0_s) * 50.0)
        assert point.y() == pytest.approx(panel.y_mm + 20.0)
    assert "50 mm/s" in view.scale_label.textItem.toPlainText()
