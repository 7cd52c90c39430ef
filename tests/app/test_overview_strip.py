"""Long records in the app: the overview strip and paging draw only the visible page
(`app.views.overview_strip`), on a sparse 24-hour WFDB record and a real 38 s one."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from app.qt import QtCore
from app.views.overview_strip import PAGE_SECONDS, LongRecordView
from app_samples import PPM, REPO
from engine.io import read_ecg
from engine.io.windowed import open_ecg

sys.path.insert(0, str(REPO / "tests" / "engine"))
from test_windowed_read import holter  # noqa: E402


def _drawn_time_range(view: LongRecordView) -> tuple[float, float]:
    """(first, last) second of the record the paper view holds, from the page record."""
    rec = view.ecg_view.record
    return view.page_start_s, view.page_start_s + rec.n_samples / rec.fs


def test_paging_a_real_record_draws_the_page_samples(shown, qtbot):
    path = REPO / "tests/data/ecg/wfdb/ptb_diagnostic/s0010_re.hea"  # 38.4 s at 1 kHz
    full = read_ecg(path)
    view = shown(LongRecordView(open_ecg(path), px_per_mm=PPM), 1400, 800)
    assert _drawn_time_range(view) == (0.0, 10.0)
    np.testing.assert_array_equal(view.ecg_view.record.signal, full.signal[:, :10_000])
    view.setFocus()
    qtbot.keyClick(view, QtCore.Qt.Key.Key_PageDown)
    qtbot.keyClick(view, QtCore.Qt.Key.Key_PageDown)
    assert _drawn_time_range(view) == (20.0, 30.0)
    np.testing.assert_array_equal(view.ecg_view.record.signal, full.signal[:, 20_000:30_000])
    qtbot.keyClick(view, QtCore.Qt.Key.Key_PageDown)  # the last page ends at the record's end
    assert _drawn_time_range(view) == (28.4, 38.4)
    qtbot.keyClick(view, QtCore.Qt.Key.Key_PageUp)
    assert _drawn_time_range(view) == (18.4, 28.4)
    # the traces drawn hold one page: times within the page's 10 s, 10,000 samples at most
    originals = [trace.original() for _, trace in view.ecg_view.traces()]
    assert max(len(t) for t, _ in originals) == 10_000
    assert min(t[0] for t, _ in originals) >= 0.0 and max(t[-1] for t, _ in originals) < 10.0
    qtbot.waitUntil(lambda: view.strip.overview is not None, timeout=10_000)
    ov = view.strip.overview
    assert ov.hi[view.strip.overview_row].max() == full.signal[1].max()  # lead II


def test_24_hour_record_strip_click_jumps(shown, qtbot, tmp_path):
    src = open_ecg(holter(tmp_path))
    view = shown(LongRecordView(src, px_per_mm=PPM, overview_points=500), 1400, 800)
    assert _drawn_time_range(view) == (0.0, PAGE_SECONDS)
    qtbot.waitUntil(lambda: view.strip.overview is not None, timeout=60_000)
    assert view.strip.overview.lo.shape == (12, 500)
    plot = view.strip.getPlotItem().vb
    pos = plot.mapViewToScene(QtCore.QPointF(12.5, 0.0))  # strip in hours: 12.5 h
    qtbot.mouseClick(view.strip.viewport(), QtCore.Qt.MouseButton.LeftButton,
                     pos=view.strip.mapFromScene(pos))
    start, stop = _drawn_time_range(view)
    assert stop - start == 10.0 and abs(start - 12.5 * 3600) <= 10.0 and start % 10 == 0
    assert view.strip.page.getRegion() == pytest.approx((start / 3600, stop / 3600))
    qtbot.keyClick(view, QtCore.Qt.Key.Key_End)
    assert _drawn_time_range(view) == (86_390.0, 86_400.0)
    view.set_window_results([0.0, 43_200.0, 86_390.0], [0.1, 0.9, 0.5])
    xs, _ = view.strip.windows.getData()
    np.testing.assert_allclose(xs, [0.0, 12.0, 86_390 / 3600])
    view.grab().save(str(tmp_path / "long.png"))


def test_window_opens_a_long_record_paged_and_scores_its_windows(window, errors, tiny_bundle,
                                                                 qtbot, tmp_path):
    from app.controller import Controller
    from app_samples import PTBXL
    from engine.constants import PATHOLOGIES
    from engine.inference import Predictor
    from engine.preprocess.long_record import preprocess_source

    live = Controller(window, models_dir=str(tiny_bundle),
                      error_presenter=lambda t, m: errors.append((t, m)),
                      settings_dir=tmp_path / "config")
    with qtbot.waitSignal(live.models_ready, timeout=20_000):
        live.load_models()
    path = holter(tmp_path)  # 24 h: refused by the whole read
    with qtbot.waitSignal(live.ecg_predicted, timeout=60_000) as sig:
        live.open_ecg(path)
    assert errors == []
    view = window.long_view
    assert window.view_stack.currentWidget() is view and "24.0 h" in window.windowTitle()
    assert _drawn_time_range(view) == (0.0, 10.0)
    preds = sig.args[0]
    _, x = preprocess_source(open_ecg(path))
    expected = Predictor(tiny_bundle).predict_ecg_inputs(x.windows)
    for p in PATHOLOGIES:
        assert len(preds[p].window_probabilities) == 30
        assert preds[p].probability == pytest.approx(float(np.mean(expected[p].probabilities)), abs=1e-6)
        assert window.ai_panel.cell_text(p, "ECG p") == f"{preds[p].probability:.3f}"
    xs, ys = view.strip.windows.getData()
    assert len(xs) == 30 and xs[-1] == pytest.approx(86_390 / 3600)
    with qtbot.waitSignal(live.ecg_shown, timeout=20_000):  # an ordinary record: the paper again
        live.open_ecg(PTBXL)
    assert window.view_stack.currentWidget() is window.ecg_view and window.long_view is None
