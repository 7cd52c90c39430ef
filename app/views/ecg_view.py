"""The 12-lead ECG on calibrated ECG paper.

Coordinates of the view box are paper millimetres (x right, y up, the paper's
top-left corner at (0, 0)). At zoom 1.0 one paper millimetre is one real
millimetre on the screen (`px_per_mm` from the screen's physical DPI), so
25 mm/s and 10 mm/mV are true scale. The widget receives an `EcgRecord` and
never opens files.
"""

from __future__ import annotations

import logging

import numpy as np

from app import paper
from app.filters import DisplayFilters, apply_display_filters, filter_label
from app.qt import QtCore, QtGui, QtWidgets, Signal, pg
from app.views.ecg_trace import EcgTrace
from app.views.paper_grid import PaperGrid
from engine.records import EcgRecord

log = logging.getLogger(__name__)

TRACE_PEN = pg.mkPen(QtGui.QColor(0, 0, 0), width=1.3)
CAL_PEN = pg.mkPen(QtGui.QColor(0, 0, 0), width=1.3)
DESK_COLOUR = QtGui.QColor(228, 228, 232)
EMPTY_TEXT = "Open an ECG (Ctrl+O) or drop a file here"


def screen_px_per_mm(widget: QtWidgets.QWidget | None = None,
                     override_dpi: float | None = None) -> float:
    """Pixels per real millimetre of the screen showing `widget` (or the primary one)."""
    screen = widget.screen() if widget is not None else None
    screen = screen or QtGui.QGuiApplication.primaryScreen()
    if screen is None:
        return paper.px_per_mm(None, None, override_dpi)
    return paper.px_per_mm(screen.physicalDotsPerInch(), screen.logicalDotsPerInch(),
                           override_dpi)


def paper_canvas(widget: QtWidgets.QWidget) -> tuple[pg.GraphicsView, pg.ViewBox]:
    """A desk-coloured GraphicsView filling `widget` (margin-free layout) with a
    1:1-aspect ViewBox (no menu, no auto-range) as its central item."""
    graphics = pg.GraphicsView(background=DESK_COLOUR)
    viewbox = pg.ViewBox(enableMenu=False, lockAspect=1.0)
    viewbox.disableAutoRange()
    graphics.setCentralItem(viewbox)
    lay = QtWidgets.QVBoxLayout(widget)
    lay.setContentsMargins(0, 0, 0, 0)
    lay.addWidget(graphics)
    return graphics, viewbox


class EcgView(QtWidgets.QWidget):
    """ECG paper with grid, traces, lead labels, calibration pulses and a scale label.

    Signals:
        zoom_changed(float): 1.0 = true scale.
        display_changed(): layout, speed, gain, rhythm lead, order or filters changed.
        record_changed(): another record (or none) is shown (`set_record`).
    """

    zoom_changed = Signal(float)
    display_changed = Signal()
    record_changed = Signal()

    def __init__(self, parent: QtWidgets.QWidget | None = None,
                 px_per_mm: float | None = None) -> None:
        super().__init__(parent)
        self.graphics, self.viewbox = paper_canvas(self)

        self._ppm = px_per_mm or screen_px_per_mm(self)
        self._record: EcgRecord | None = None
        self._display_signal: np.ndarray | None = None
        self._filter_labels: list[str] = []
        self.layout_name = "3x4"
        self.speed = paper.DEFAULT_SPEED_MM_S
        self.gain = paper.DEFAULT_GAIN_MM_MV
        self.rhythm_lead = "II"
        self.cabrera = False
        self.filters = DisplayFilters()
        self.page_start_s = 0.0
        self._zoom = 1.0
        #: None (a fixed zoom, 1.0 = true scale), "page" (the whole paper fits) or
        #: "width" (the paper's width fits); a fit is kept on resize and new records.
        self.fit_mode: str | None = None
        self._traces: list[tuple[paper.Panel, EcgTrace]] = []
        self._panel_index: list[int] = []  # of each trace in `_panels()`
        self._labels: list[pg.TextItem] = []  # of each trace
        self._cal_pulses: list[tuple[int, pg.PlotCurveItem]] = []  # (trace index, pulse) a row
        self._separators: pg.PlotCurveItem | None = None
        self._empty_text: pg.TextItem | None = None
        self._items: list[QtWidgets.QGraphicsItem] = []
        self.scale_label: pg.TextItem | None = None
        self.grid = PaperGrid(*paper.paper_size_mm(self.layout_name, 10.0, self.speed))
        self.viewbox.addItem(self.grid, ignoreBounds=True)

        self._lod_timer = QtCore.QTimer(self, singleShot=True, interval=0)
        self._lod_timer.timeout.connect(self._update_lod)
        self.viewbox.sigRangeChanged.connect(lambda *_: self._lod_timer.start())
        self.viewbox.sigRangeChangedManually.connect(self._on_user_zoom)
        self.viewbox.sigResized.connect(self._on_resized)
        self._rebuild()

    # ------------------------------------------------------------------ state
    @property
    def record(self) -> EcgRecord | None:
        return self._record

    @property
    def px_per_mm(self) -> float:
        """Screen pixels per paper millimetre at zoom 1.0."""
        return self._ppm

    @property
    def zoom(self) -> float:
        return self._zoom

    @property
    def filter_labels(self) -> list[str]:
        """Labels of the display filters actually applied to the current record."""
        return list(self._filter_labels)

    def lead_labels(self) -> list[str]:
        """The texts drawn beside the traces, in trace order (e.g. "III (derived)")."""
        return [label.textItem.toPlainText() for label in self._labels]

    def traces(self) -> list[tuple[paper.Panel, EcgTrace]]:
        """(panel, trace item) for every lead segment drawn."""
        return list(self._traces)

    def lead_label_items(self) -> list[tuple[paper.Panel, pg.TextItem]]:
        """(panel, label item) for every lead segment drawn (label position in paper mm)."""
        return [(panel, label) for (panel, _), label in zip(self._traces, self._labels)]

    def calibration_pulses(self) -> list[tuple[paper.Panel, pg.PlotCurveItem]]:
        """(panel of the row's first segment, pulse item) for every row."""
        return [(self._traces[k][0], pulse) for k, pulse in self._cal_pulses]

    def set_px_per_mm(self, value: float) -> None:
        """Use a screen calibration (pixels per mm) and redraw at the same zoom."""
        self._ppm = float(value)
        self._apply_zoom(self._zoom)

    def set_record(self, record: EcgRecord | None) -> None:
        """Show `record` (None clears the paper), first page, same display settings."""
        self._record = record
        self.page_start_s = 0.0
        if record is not None and self.rhythm_lead not in record.leads and record.leads:
            self.rhythm_lead = "II" if "II" in record.leads else record.leads[0]
        self._refilter()
        self._rebuild()
        self._rezoom(reset_position=True)
        self.record_changed.emit()

    def set_layout(self, name: str) -> None:
        if name not in paper.LAYOUTS:
            raise ValueError(f"unknown layout {name!r}")
        self.layout_name = name
        self.page_start_s = 0.0
        self._changed(reset_position=True)

    def set_speed(self, mm_s: float) -> None:
        self.speed = float(mm_s)
        self._changed(reset_position=True, rebuild=False)

    def set_gain(self, mm_mv: float) -> None:
        self.gain = float(mm_mv)
        self._changed(rebuild=False)

    def step_gain(self, direction: int) -> None:
        """Next (+1) or previous (-1) gain of `paper.GAINS_MM_MV`."""
        self.set_gain(_step(paper.GAINS_MM_MV, self.gain, direction))

    def step_speed(self, direction: int) -> None:
        self.set_speed(_step(paper.SPEEDS_MM_S, self.speed, direction))

    def set_rhythm_lead(self, lead: str) -> None:
        self.rhythm_lead = lead
        self._changed()

    def set_cabrera(self, on: bool) -> None:
        self.cabrera = bool(on)
        self._changed()

    def set_filters(self, filters: DisplayFilters) -> None:
        self.filters = filters
        self._refilter()
        self._changed()

    def set_page_start(self, seconds: float) -> None:
        """First second shown by the 3×4 and 6×2 pages (clamped to the record)."""
        dur = self._record.duration_s if self._record is not None else 10.0
        last = max(0.0, dur - paper.page_seconds(self.layout_name, dur))
        self.page_start_s = float(np.clip(seconds, 0.0, last))
        self._changed()

    def page(self, direction: int) -> None:
        self.set_page_start(self.page_start_s + direction * paper.page_seconds(
            self.layout_name, self._record.duration_s if self._record else 10.0))

    # ------------------------------------------------------------------ zoom
    def zoom_to(self, zoom: float, reset_position: bool = False) -> None:
        """Set zoom (1.0 = true scale) keeping the top-left corner, or going back to the
        paper's top-left corner when `reset_position`."""
        self._apply_zoom(float(np.clip(zoom, 0.1, 20.0)), reset_position)

    def zoom_100(self) -> None:
        """True scale (25 mm/s is 25 real mm a second on this screen); ends a fit mode."""
        self.fit_mode = None
        self.zoom_to(1.0)

    def zoom_fit(self) -> None:
        """Zoom so the whole paper fits the widget, and keep it fitted (resize, new record,
        layout or speed change) until the user zooms."""
        self.fit_mode = "page"
        self._rezoom(reset_position=True)

    def zoom_fit_width(self) -> None:
        """Zoom so the paper's width fits the widget (scroll down for the rest), and keep
        it fitted until the user zooms."""
        self.fit_mode = "width"
        self._rezoom(reset_position=True)

    def fit_zoom(self, mode: str) -> float:
        """The zoom at which the paper fits the widget: whole ("page") or its width
        ("width")."""
        w_mm, h_mm = self._paper_size()
        vw, vh = self.viewbox.width(), self.viewbox.height()
        if vw <= 1 or vh <= 1:
            vw, vh = 800.0, 600.0
        zw = vw / ((w_mm + 3.0) * self._ppm)  # 2 mm of desk left of the paper, 1 mm right
        return zw if mode == "width" else min(zw, vh / ((h_mm + 3.0) * self._ppm))

    def _rezoom(self, reset_position: bool = False) -> None:
        """Apply the fit mode, or keep the current zoom."""
        zoom = self.fit_zoom(self.fit_mode) if self.fit_mode else self._zoom
        self.zoom_to(zoom, reset_position=reset_position)

    def map_mm_to_widget(self, x_mm: float, y_mm: float) -> QtCore.QPointF:
        """Widget pixel position of a paper point (for tests and overlays)."""
        scene = self.viewbox.mapViewToScene(QtCore.QPointF(x_mm, y_mm))
        return self.graphics.viewportTransform().map(scene)

    def _apply_zoom(self, zoom: float, reset_position: bool = False) -> None:
        self._zoom = zoom
        vw, vh = self.viewbox.width(), self.viewbox.height()
        if vw <= 1 or vh <= 1:
            vw, vh = 800.0, 600.0
        scale = self._ppm * zoom
        if reset_position:
            left, top = -2.0, 2.0
        else:
            rect = self.viewbox.viewRect()
            left, top = rect.left(), rect.bottom()
        self.viewbox.setRange(xRange=(left, left + vw / scale),
                              yRange=(top - vh / scale, top), padding=0.0, update=True)
        self._lod_timer.start()
        self.zoom_changed.emit(zoom)

    def _on_resized(self) -> None:
        if self.fit_mode:
            self._rezoom(reset_position=True)
        else:
            self._apply_zoom(self._zoom)

    def _on_user_zoom(self, *_: object) -> None:
        """The user zoomed with the wheel or a drag: read the zoom back from the range."""
        vw = self.viewbox.width()
        rect = self.viewbox.viewRect()
        if vw > 1 and rect.width() > 0:
            zoom = vw / (rect.width() * self._ppm)
            if abs(zoom - self._zoom) > 1e-6:
                self._zoom = zoom
                self.fit_mode = None
                self.zoom_changed.emit(zoom)
        self._lod_timer.start()

    def _update_lod(self) -> None:
        pps = self._ppm * self._zoom * self.speed
        rect = self.viewbox.viewRect()
        for _, trace in self._traces:
            trace.update_lod(pps, rect.left(), rect.right())

    # --------------------------------------------------------------- drawing
    def _changed(self, reset_position: bool = False, rebuild: bool = True) -> None:
        """Redraw after a display setting changed: new items (`rebuild`), or the same
        items moved and rescaled (speed and gain)."""
        if rebuild:
            self._rebuild()
        else:
            self._place()
        if reset_position:
            self._rezoom(reset_position=True)
        self._lod_timer.start()
        self.display_changed.emit()

    def _refilter(self) -> None:
        if self._record is None:
            self._display_signal, self._filter_labels = None, []
            return
        self._display_signal, self._filter_labels = apply_display_filters(
            self._record.signal, self._record.fs, self.filters)

    def _paper_size(self) -> tuple[float, float]:
        dur = self._record.duration_s if self._record is not None else 10.0
        return paper.paper_size_mm(self.layout_name, dur, self.speed)

    def _add(self, item: QtWidgets.QGraphicsItem) -> None:
        self.viewbox.addItem(item, ignoreBounds=True)
        self._items.append(item)

    def _panels(self) -> list[paper.Panel]:
        rec = self._record
        return paper.layout_panels(self.layout_name, rec.leads, rec.duration_s, self.speed,
                                   self.page_start_s, self.rhythm_lead, self.cabrera)

    def _rebuild(self) -> None:
        """Create the items that show the record (its layout, page, lead order and
        filtered signal), then `_place` them."""
        for item in self._items:
            self.viewbox.removeItem(item)
        self._items.clear()
        self._traces.clear()
        self._panel_index, self._labels, self._cal_pulses = [], [], []
        self._empty_text = self._separators = self.scale_label = None
        rec = self._record
        if rec is None or self._display_signal is None:
            self._empty_text = pg.TextItem(EMPTY_TEXT, color=(120, 60, 60), anchor=(0.5, 0.5))
            self._add(self._empty_text)
            self._place()
            return
        panels = self._panels()
        for seg in paper.panel_segments(panels, self._display_signal, rec.fs, rec.leads):
            trace = EcgTrace(seg.t_s, seg.mv, TRACE_PEN)
            self._add(trace)
            self._traces.append((seg.panel, trace))
            self._panel_index.append(panels.index(seg.panel))
            self._labels.append(_lead_label(paper_label(seg.panel.label, seg.panel.lead, rec)))
            self._add(self._labels[-1])
            if seg.first_in_row:
                self._cal_pulses.append((len(self._traces) - 1, pg.PlotCurveItem(pen=CAL_PEN)))
                self._add(self._cal_pulses[-1][1])
        if any(_separated(panel) for panel, _ in self._traces):
            self._separators = pg.PlotCurveItem(pen=CAL_PEN, connect="pairs")
            self._add(self._separators)
        self.scale_label = pg.TextItem("", color=(60, 0, 0), anchor=(0, 1))
        self._add(self.scale_label)
        self._place()

    def _place(self) -> None:
        """Put the items where the current speed and gain draw them (no item is created:
        a speed or gain change only moves and rescales them)."""
        w_mm, h_mm = self._paper_size()
        self.grid.set_size(w_mm, h_mm)
        if self._empty_text is not None:
            self._empty_text.setPos(w_mm / 2, -h_mm / 2)
            return
        panels = self._panels()  # their x_mm follow the speed
        self._traces = [(panels[i], trace)
                        for i, (_, trace) in zip(self._panel_index, self._traces)]
        row_mid = paper.ROW_HEIGHT_MM[self.layout_name] / 2
        first = {k for k, _ in self._cal_pulses}
        for k, ((panel, trace), label) in enumerate(zip(self._traces, self._labels)):
            trace.place(panel.x_mm, panel.y_mm, panel.t0_s, self.speed, self.gain)
            label.setPos(paper.label_x_mm(panel.x_mm, k in first, self.speed),
                         panel.y_mm + row_mid - 0.5)
        for k, pulse in self._cal_pulses:
            pulse.setData(*paper.calibration_pulse_mm(0.5, self._traces[k][0].y_mm, self.gain,
                                                      self.speed))
        if self._separators is not None:
            separated = [panel for panel, _ in self._traces if _separated(panel)]
            self._separators.setData(
                np.array([x for p in separated for x in (p.x_mm, p.x_mm)]),
                np.array([y for p in separated for y in (p.y_mm - 3.0, p.y_mm + 3.0)]))
        self.scale_label.setText(self.scale_text())
        self.scale_label.setPos(1.0, -h_mm + 1.0)

    def scale_text(self) -> str:
        """The scale line printed on the paper, e.g. "25 mm/s · 10 mm/mV · HP 0.5 Hz"."""
        rec = self._record
        parts = [f"{self.speed:g} mm/s", f"{self.gain:g} mm/mV",
                 "Filters: " + filter_label(self._filter_labels)]
        if rec is not None:
            span = paper.page_seconds(self.layout_name, rec.duration_s)
            parts.append(f"{self.page_start_s:.1f}–{min(self.page_start_s + span, rec.duration_s):.1f} s"
                         f" of {rec.duration_s:.1f} s @ {rec.fs:g} Hz")
        if self.cabrera:
            parts.append("Cabrera")
        return "   ·   ".join(parts)


def paper_label(label: str, lead: str, record) -> str:
    """The text drawn beside a trace: the panel's label, with " (derived)" when the record's
    reader computed the lead from I and II (`record.meta["derived_leads"]`)."""
    derived = (record.meta or {}).get("derived_leads") or ()
    return f"{label} (derived)" if lead in derived else label


def _lead_label(text: str) -> pg.TextItem:
    """A bold lead name, e.g. "II" or "−aVR"."""
    label = pg.TextItem(text, color=(0, 0, 0), anchor=(0, 0))
    font = label.textItem.font()
    font.setBold(True)
    font.setPointSizeF(10)
    label.setFont(font)
    return label


def _separated(panel: paper.Panel) -> bool:
    """Whether a tick separates `panel` from the one before it in its row (not the first column)."""
    return panel.x_mm > paper.CAL_MARGIN_MM + 1e-6


def _step(values: tuple[float, ...], current: float, direction: int) -> float:
    idx = int(np.argmin([abs(v - current) for v in values]))
    return values[int(np.clip(idx + direction, 0, len(values) - 1))]
