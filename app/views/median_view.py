"""The 12 median beats on ECG paper at true scale (25 mm/s, 10 mm/mV), with the
global fiducials of `engine.measure` (P onset/offset, QRS onset/offset, T end)
drawn as vertical lines through every lead: where a cardiologist checks the
computed QT end. Receives an `EcgRecord` carrying
`meta["computed_measurements"]` (an `EcgMeasurements`, computed in a worker after
the record is shown: until then `set_record(record, measuring=True)` says so); never
computes anything itself.

Coordinates of the view box are paper millimetres, as in `EcgView`: x right,
y up, the paper's top-left corner at (0, 0). At zoom 1.0 one paper millimetre
is one real millimetre on the screen.
"""

from __future__ import annotations

import numpy as np

from app import paper
from app.qt import QtCore, QtGui, QtWidgets, pg
from app.views.calipers import Calipers
from app.views.ecg_view import TRACE_PEN, paper_canvas, screen_px_per_mm
from app.views.paper_grid import PaperGrid
from engine.records import EcgRecord

#: Columns of lead names, as the 3x4 layout shows them.
COLUMNS: tuple[tuple[str, ...], ...] = (("I", "II", "III"), ("aVR", "aVL", "aVF"),
                                        ("V1", "V2", "V3"), ("V4", "V5", "V6"))
SPEED_MM_S = 25.0
GAIN_MM_MV = 10.0
ROW_MM = 40.0
GAP_MM = 5.0
MARGIN_MM = 5.0
#: Room right of the beats for the fiducial legend (mm).
LEGEND_MM = 35.0
#: Fiducial name -> (label, colour).
FIDUCIALS: dict[str, tuple[str, tuple[int, int, int]]] = {
    "p_on": ("P on", (0, 120, 0)), "p_off": ("P off", (0, 120, 0)),
    "qrs_on": ("QRS on", (0, 0, 200)), "qrs_off": ("QRS off", (0, 0, 200)),
    "t_off": ("T end", (170, 0, 170)),
}


class MedianView(QtWidgets.QWidget):
    """Median beats in a 4-column x 3-row grid with fiducial lines.

    After `set_record`: `curves` lead -> (x_mm, y_mm) arrays drawn;
    `fiducial_x` name -> x positions (mm) of its line in each column;
    `message` the text shown when there is nothing to draw (else "")."""

    def __init__(self, parent: QtWidgets.QWidget | None = None, px_per_mm: float | None = None) -> None:
        super().__init__(parent)
        self.graphics, self.viewbox = paper_canvas(self)
        self._ppm = px_per_mm or screen_px_per_mm(self)
        self.grid = PaperGrid(100.0, 3 * ROW_MM)
        self.viewbox.addItem(self.grid, ignoreBounds=True)
        self._items: list[QtWidgets.QGraphicsItem] = []
        self.curves: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self.fiducial_x: dict[str, list[float]] = {}
        self.fiducials_ms: dict[str, float | None] = {}
        self.message = ""
        self.zoom = 1.0
        #: Calipers of this view; their time lines snap to the fiducials (switchable).
        self.calipers = Calipers(self.viewbox, SPEED_MM_S, GAIN_MM_MV, self)
        self.calipers.snap = True
        self.set_record(None)

    def _add(self, item: QtWidgets.QGraphicsItem) -> None:
        self.viewbox.addItem(item)
        self._items.append(item)

    def _text(self, text: str, x: float, y: float, colour=(0, 0, 0), anchor=(0, 0)) -> None:
        t = pg.TextItem(text, color=colour, anchor=anchor)
        t.setPos(x, y)
        self._add(t)

    def set_record(self, record: EcgRecord | None, measuring: bool = False) -> None:
        """Draw `record`'s median beats; `measuring`: its measurements are still to come."""
        for it in self._items:
            self.viewbox.removeItem(it)
        self._items = []
        self.curves, self.fiducial_x, self.fiducials_ms = {}, {}, {}
        self.calipers.snap_x = []
        m = None if record is None else record.meta.get("computed_measurements")
        if m is None or m.median_beats is None:
            self.message = ("Open an ECG to see its median beats" if record is None else
                            "Measuring… the median beats follow" if measuring and m is None else
                            "Median beats not available: " + (m.reasons.get("qrs_ms", "not measured")
                                                              if m is not None else "not measured"))
            self.grid.set_size(150.0, 3 * ROW_MM)
            self._text(self.message, 5.0, -5.0)
            self.zoom_to(self.zoom)
            return
        self.message = ""
        beats = m.median_beats
        n = beats.shape[1]
        t_ms = m.median_t0_ms + np.arange(n) * 1000.0 / m.median_fs
        width = (t_ms[-1] - t_ms[0]) / 1000.0 * SPEED_MM_S
        col_w = width + GAP_MM
        total_w = 2 * MARGIN_MM + len(COLUMNS) * col_w + LEGEND_MM
        self.grid.set_size(total_w, 3 * ROW_MM)
        self.fiducials_ms = dict(m.fiducials_ms)
        x_rel = (t_ms - t_ms[0]) / 1000.0 * SPEED_MM_S
        for c, col in enumerate(COLUMNS):
            x0 = MARGIN_MM + c * col_w
            for r, lead in enumerate(col):
                y0 = -(r + 0.5) * ROW_MM
                if lead not in m.leads:
                    self._text(f"{lead}: lead missing", x0, y0 + 5.0, (120, 120, 120))
                    continue
                y = y0 + beats[m.leads.index(lead)].astype(np.float64) * GAIN_MM_MV
                x = x0 + x_rel
                self._add(pg.PlotCurveItem(x, y, pen=TRACE_PEN))
                self.curves[lead] = (x, y)
                self._text(lead, x0, y0 + ROW_MM * 0.45)
            for k, (name, (label, rgb)) in enumerate(FIDUCIALS.items()):
                v = m.fiducials_ms.get(name)
                if v is None:
                    continue
                xf = x0 + (v - t_ms[0]) / 1000.0 * SPEED_MM_S
                pen = pg.mkPen(QtGui.QColor(*rgb), width=1.0, style=QtCore.Qt.PenStyle.DashLine)
                self._add(pg.PlotCurveItem([xf, xf], [-3 * ROW_MM, 0.0], pen=pen))
                self.fiducial_x.setdefault(name, []).append(xf)
                if c == len(COLUMNS) - 1:  # labels staggered to the right of the last column
                    lx = MARGIN_MM + len(COLUMNS) * col_w + 2.0
                    self._text(f"{label} {v:+.0f} ms", lx, -4.0 - 6.0 * k, rgb)
        self.calipers.snap_x = sorted(x for xs in self.fiducial_x.values() for x in xs)
        self._text("25 mm/s  10 mm/mV  median beats (dominant beats only); time 0 = QRS alignment point",
                   MARGIN_MM, -3 * ROW_MM, (80, 80, 80), anchor=(0, 0))
        self.zoom_to(self.zoom)

    def paper_size_mm(self) -> tuple[float, float]:
        r = self.grid.boundingRect()
        return r.width(), r.height()

    def zoom_to(self, zoom: float) -> None:
        """1.0 = true scale; keeps the top-left corner of the paper in view."""
        self.zoom = float(np.clip(zoom, 0.1, 20.0))
        vw, vh = self.viewbox.width(), self.viewbox.height()
        if vw <= 1 or vh <= 1:
            vw, vh = 800.0, 600.0
        scale = self._ppm * self.zoom
        self.viewbox.setRange(xRange=(-2.0, -2.0 + vw / scale), yRange=(2.0 - vh / scale, 2.0), padding=0.0)

    def zoom_fit(self) -> None:
        w, h = self.paper_size_mm()
        vw, vh = max(self.viewbox.width(), 1.0), max(self.viewbox.height(), 1.0)
        self.zoom_to(min(vw / ((w + 4) * self._ppm), vh / ((h + 14) * self._ppm)))

    def resizeEvent(self, event: QtGui.QResizeEvent) -> None:  # noqa: N802
        super().resizeEvent(event)
        self.zoom_to(self.zoom)
