"""Long records (Holter, monitoring exports): an overview strip over a paged ECG view.

`LongRecordView` shows an `engine.io.windowed.EcgSource` of any length without holding
it in memory:

- the page: the existing paper view (`EcgView`) given only the samples of the visible
  page (`PAGE_SECONDS` = 10 s, one paper page at 25 mm/s), read from the source when
  the page changes; PageDown / PageUp (and Right / Left) go to the next / previous page;
- the strip (`OverviewStrip`): the whole record as a downsampled min/max envelope of
  one lead (II if present), computed in a worker thread after the first page is
  drawn (a 24-hour 500 Hz record takes seconds to scan), with the current page
  marked; a click on the strip jumps to the page at that time;
- per scored window (the long-record rule of `engine.preprocess.long_record`): a marker
  on the strip at the window's start, its height the window's probability for one
  finding (`set_window_results`), so the reader sees where in the record the model
  looked and what it found there.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pyqtgraph as pg

from app import workers
from app.qt import QtCore, QtWidgets, Signal
from app.views.ecg_view import EcgView
from engine.io.windowed import EcgSource, Overview

log = logging.getLogger(__name__)

#: Seconds of record on one page (one 3x4 / 6x2 paper page at 25 mm/s).
PAGE_SECONDS = 10.0
#: Bins of the overview envelope (about one per pixel of a wide strip).
OVERVIEW_POINTS = 2000
ENVELOPE_BRUSH = (40, 40, 40, 140)
PAGE_BRUSH = (200, 30, 30, 60)
WINDOW_PEN = (20, 90, 200)


def clock(seconds: float) -> str:
    """`seconds` as H:MM:SS.s (e.g. 3725.5 -> "1:02:05.5")."""
    h, rest = divmod(float(seconds), 3600.0)
    m, s = divmod(rest, 60.0)
    return f"{int(h)}:{int(m):02d}:{s:04.1f}"


class OverviewStrip(pg.PlotWidget):
    """The whole record in a strip: envelope of one lead, current page, scored windows.

    Signals:
        jump(seconds): the user clicked at `seconds` of the record."""

    jump = Signal(float)

    def __init__(self, duration_s: float, parent: QtWidgets.QWidget | None = None):
        super().__init__(parent=parent, background="w")
        self.duration_s = float(duration_s)
        self.setFixedHeight(90)
        self.setMenuEnabled(False)
        self.setMouseEnabled(x=False, y=False)
        self.hideButtons()
        self.getPlotItem().hideAxis("left")
        self.getPlotItem().getAxis("bottom").setLabel("hours" if duration_s > 7200 else "minutes")
        self._scale = 3600.0 if duration_s > 7200 else 60.0
        self.setXRange(0, self.duration_s / self._scale, padding=0)
        self.lo = pg.PlotDataItem(pen=pg.mkPen(ENVELOPE_BRUSH))  # a pen: FillBetween needs a path
        self.hi = pg.PlotDataItem(pen=pg.mkPen(ENVELOPE_BRUSH))
        self.envelope = pg.FillBetweenItem(self.lo, self.hi, brush=ENVELOPE_BRUSH)
        self.addItem(self.lo)
        self.addItem(self.hi)
        self.addItem(self.envelope)
        self.page = pg.LinearRegionItem((0, 0), movable=False, brush=PAGE_BRUSH)
        self.addItem(self.page)
        self.cursor = pg.InfiniteLine(0, pen=pg.mkPen((200, 30, 30), width=2))  # visible at any zoom
        self.addItem(self.cursor)
        self.windows = pg.ScatterPlotItem(pen=WINDOW_PEN, brush=WINDOW_PEN, size=5, symbol="t1")
        self.addItem(self.windows)
        self.overview: Overview | None = None
        self.overview_row = 0

    def set_overview(self, overview: Overview, row: int) -> None:
        """Draw row `row` of `overview` (mV envelope) across the strip."""
        self.overview, self.overview_row = overview, row
        t = overview.t_s / self._scale
        lo = np.nan_to_num(overview.lo[row], nan=0.0)
        hi = np.nan_to_num(overview.hi[row], nan=0.0)
        self.lo.setData(t, lo)
        self.hi.setData(t, hi)
        self._ymin, self._ymax = float(lo.min()), float(hi.max())
        self.setYRange(self._ymin, self._ymax if self._ymax > self._ymin else self._ymin + 1, padding=0.05)

    def set_page(self, start_s: float, stop_s: float) -> None:
        self.page.setRegion((start_s / self._scale, stop_s / self._scale))
        self.cursor.setValue(start_s / self._scale)

    def set_window_results(self, starts_s: list[float], probabilities: list[float]) -> None:
        """Markers at the scored windows' starts; height = probability (0 bottom, 1 top)."""
        lo, hi = self.getPlotItem().viewRange()[1]
        y = [lo + (hi - lo) * float(p) for p in probabilities]
        self.windows.setData([s / self._scale for s in starts_s], y)

    def mousePressEvent(self, event: Any) -> None:  # noqa: N802 (Qt name)
        if event.button() == QtCore.Qt.MouseButton.LeftButton:
            x = self.getPlotItem().vb.mapSceneToView(QtCore.QPointF(event.position())).x()
            self.jump.emit(float(np.clip(x * self._scale, 0.0, self.duration_s)))
            event.accept()
            return
        super().mousePressEvent(event)


class LongRecordView(QtWidgets.QWidget):
    """An overview strip above a paper view of one page of a long record.

    Attributes:
        source: the open record; page_start_s: first second of the page shown;
        ecg_view: the paper view (its record holds only the page's samples);
        strip: the `OverviewStrip`.

    Signals:
        page_changed(start_s, stop_s): after a page is drawn.
        overview_ready(): the strip's envelope is drawn."""

    page_changed = Signal(float, float)
    overview_ready = Signal()

    def __init__(self, source: EcgSource, parent: QtWidgets.QWidget | None = None,
                 px_per_mm: float | None = None, overview_points: int = OVERVIEW_POINTS):
        super().__init__(parent)
        self.source = source
        self.page_start_s = 0.0
        self.strip = OverviewStrip(source.duration_s, self)
        self.ecg_view = EcgView(self, px_per_mm=px_per_mm)
        self.ecg_view.fit_mode = "page"
        box = QtWidgets.QVBoxLayout(self)
        box.setContentsMargins(0, 0, 0, 0)
        self.page_label = QtWidgets.QLabel(self)
        box.addWidget(self.strip)
        box.addWidget(self.page_label)
        box.addWidget(self.ecg_view, 1)
        self.strip.jump.connect(self.go_to)
        self.setFocusPolicy(QtCore.Qt.FocusPolicy.StrongFocus)
        self._overview_points = overview_points
        self.show_page(0.0)
        self._overview_worker = workers.start(
            source.overview, overview_points, on_done=self._overview_done,
            on_failed=lambda exc: log.warning("overview of the long record failed: %s", exc),
            name="overview")

    @property
    def page_samples(self) -> int:
        return int(round(PAGE_SECONDS * self.source.fs))

    @property
    def last_page_start_s(self) -> float:
        return max(0.0, (self.source.n_samples - self.page_samples) / self.source.fs)

    def show_page(self, start_s: float) -> None:
        """Draw the page starting at `start_s` (clamped to the record; whole samples)."""
        start = int(round(float(np.clip(start_s, 0.0, self.last_page_start_s)) * self.source.fs))
        stop = min(self.source.n_samples, start + self.page_samples)
        self.page_start_s = start / self.source.fs
        self.ecg_view.set_record(self.source.record(start, stop))
        self.strip.set_page(self.page_start_s, stop / self.source.fs)
        self.page_label.setText(
            f"Page {clock(self.page_start_s)}–{clock(stop / self.source.fs)} of "
            f"{clock(self.source.duration_s)} (the paper's times are within the page) · "
            f"PageUp / PageDown: previous / next page · click the strip to jump")
        self.page_changed.emit(self.page_start_s, stop / self.source.fs)

    def page(self, direction: int) -> None:
        """Next (+1) or previous (-1) page."""
        self.show_page(self.page_start_s + direction * PAGE_SECONDS)

    def go_to(self, seconds: float) -> None:
        """The page that holds `seconds` (pages on the 10 s grid from 0 s)."""
        self.show_page(np.floor(seconds / PAGE_SECONDS) * PAGE_SECONDS)

    def set_window_results(self, starts_s: list[float], probabilities: list[float]) -> None:
        self.strip.set_window_results(starts_s, probabilities)

    def _overview_done(self, overview: Overview, seconds: float) -> None:
        leads = self.source.leads
        self.strip.set_overview(overview, leads.index("II") if "II" in leads else 0)
        log.info("overview of %.0f s drawn after %.1f s", self.source.duration_s, seconds)
        self.overview_ready.emit()

    def keyPressEvent(self, event: Any) -> None:  # noqa: N802 (Qt name)
        key = event.key()
        if key in (QtCore.Qt.Key.Key_PageDown, QtCore.Qt.Key.Key_Right):
            self.page(+1)
        elif key in (QtCore.Qt.Key.Key_PageUp, QtCore.Qt.Key.Key_Left):
            self.page(-1)
        elif key == QtCore.Qt.Key.Key_Home:
            self.show_page(0.0)
        elif key == QtCore.Qt.Key.Key_End:
            self.show_page(self.last_page_start_s)
        else:
            super().keyPressEvent(event)
