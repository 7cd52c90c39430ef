"""Paper maths: calibration, layouts, calipers, decimation, filters."""

from __future__ import annotations

import numpy as np
import pytest

from app import paper
from app.filters import DisplayFilters, apply_display_filters
from engine.constants import LEADS


def test_px_per_mm_uses_physical_dpi_and_falls_back():
    assert paper.px_per_mm(254.0) == pytest.approx(10.0)
    assert paper.px_per_mm(0.0, 96.0) == pytest.approx(96 / 25.4)   # no EDID
    assert paper.px_per_mm(5000.0, 120.0) == pytest.approx(120 / 25.4)
    assert paper.px_per_mm(100.0, 96.0, override_dpi=127.0) == pytest.approx(5.0)


def test_panel_segments_cut_each_panels_samples_inverting_cabrera_avr():
    fs, n = 100.0, 1000
    signal = np.arange(12 * n, dtype=np.float32).reshape(12, n)         # [leads, samples] mV
    panels = paper.layout_panels("3x4", LEADS, n / fs, 25.0, cabrera=True)
    segments = paper.panel_segments(panels, signal, fs, LEADS)
    assert [s.panel for s in segments] == panels
    avr = next(s for s in segments if s.panel.lead == "aVR")
    i0 = int(round(avr.panel.t0_s * fs))
    np.testing.assert_array_equal(avr.mv, -signal[LEADS.index("aVR"), i0:i0 + 250])
    np.testing.assert_array_equal(avr.t_s, np.arange(i0, i0 + 250) / fs)
    assert avr.t_s.dtype == np.float64 and avr.mv.dtype == np.float32
    assert [s.panel.row for s in segments if s.first_in_row] == [0, 1, 2, 3]
    late = paper.layout_panels("3x4", LEADS, n / fs, 25.0, page_start_s=9.99)
    assert all(len(s.t_s) >= 2 for s in paper.panel_segments(late, signal, fs, LEADS))


def test_grid_offsets_between_two_distances_skipping_major_lines():
    assert paper.grid_offsets(0.0, 10.0, 5.0) == [0.0, 5.0, 10.0]
    assert paper.grid_offsets(2.5, 12.0, 1.0, skip_every=5) == [3.0, 4.0, 6.0, 7.0, 8.0, 9.0,
                                                                 11.0, 12.0]


def test_3x4_layout_places_standard_leads_and_rhythm_strip():
    panels = paper.layout_panels("3x4", LEADS, 10.0, 25.0)
    assert len(panels) == 13
    first_row = [p.lead for p in panels if p.row == 0]
    assert first_row == ["I", "aVR", "V1", "V4"]
    v4 = next(p for p in panels if p.lead == "V4")
    assert (v4.t0_s, v4.t1_s) == (7.5, 10.0)
    assert v4.x_mm == pytest.approx(paper.CAL_MARGIN_MM + 7.5 * 25.0)
    rhythm = panels[-1]
    assert (rhythm.lead, rhythm.t0_s, rhythm.t1_s, rhythm.row) == ("II", 0.0, 10.0, 3)
    assert paper.layout_panels("3x4", LEADS, 10.0, 25.0, rhythm_lead="V5")[-1].lead == "V5"


def test_cabrera_order_inverts_avr():
    panels = paper.layout_panels("6x2", LEADS, 10.0, 25.0, cabrera=True)
    limb = [p.label for p in panels if p.x_mm == paper.CAL_MARGIN_MM]
    assert limb == ["aVL", "I", "−aVR", "II", "aVF", "III"]
    assert [p.invert for p in panels if p.lead == "aVR"] == [True]


def test_12x1_shows_whole_record_and_missing_leads_leave_gaps():
    panels = paper.layout_panels("12x1", ("I", "II", "V1"), 38.4, 25.0)
    assert [(p.lead, p.t1_s, p.row) for p in panels] == [("I", 38.4, 0), ("II", 38.4, 1),
                                                         ("V1", 38.4, 6)]


def test_caliper_maths():
    assert paper.interval_ms(20.0, 25.0) == pytest.approx(800.0)
    assert paper.rate_bpm(800.0) == pytest.approx(75.0)
    assert paper.amplitude_mv(-15.0, 10.0) == pytest.approx(1.5)
    assert paper.marching_positions(10, 30, 0, 100) == [50.0, 70.0, 90.0]


def test_calibration_pulse_is_one_millivolt_and_200_ms():
    xs, ys = paper.calibration_pulse_mm(0.0, -15.0, 10.0, 25.0)
    assert ys.max() - ys.min() == pytest.approx(10.0)
    assert xs[3] - xs[2] == pytest.approx(5.0)


def test_peak_decimate_keeps_extremes():
    from app.views.ecg_trace import peak_decimate
    t = np.arange(1000, dtype=float)
    y = np.sin(t / 30.0)
    y[517] = 9.0
    td, yd = peak_decimate(t, y, 10)
    assert len(yd) == 200 and yd.max() == 9.0 and td[np.argmax(yd)] == 517
    assert yd.min() == pytest.approx(y.min())


def test_display_filters_remove_wander_and_mains():
    fs = 500.0
    t = np.arange(5000) / fs
    wander = 0.8 * np.sin(2 * np.pi * 0.1 * t)
    mains = 0.2 * np.sin(2 * np.pi * 50 * t)
    x = np.stack([wander + mains]).astype(np.float32)
    y, labels = apply_display_filters(x, fs, DisplayFilters(baseline_hz=0.5, notch_hz=50.0))
    assert labels == ["HP 0.5 Hz", "notch 50 Hz"]
    mid = slice(1000, 4000)
    assert np.abs(y[0, mid]).max() < 0.05
    y2, labels2 = apply_display_filters(x, 100.0, DisplayFilters(notch_hz=50.0))
    assert labels2 == ["notch 50 Hz n/a at 100 Hz"] and np.array_equal(y2, x)
    y3, _ = apply_display_filters(x, fs, DisplayFilters())
    assert np.array_equal(y3, x)
