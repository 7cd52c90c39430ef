"""`TrendPlot`: the AI probabilities of every ECG of one patient over time
(pyqtgraph), from `engine.store.ai_trend`.

One colour per pathology. Each ECG is a point at its acquisition time:
- assessable: a filled circle; consecutive assessable points are joined by a line;
- not assessable (the result is flagged: noise, short record, ...): a hollow circle in
  the pathology's colour, never joined (its value is not to be trusted);
- out of the model's training distribution for that pathology: a hollow grey square.
The decision threshold of each pathology is a dashed horizontal line in its colour (the
threshold of the newest scored ECG; a note says when the ECGs were scored with other
thresholds). The open ECG is marked by a vertical line. ECGs without a time, and files
that failed, are not plotted; a note under the plot counts them.
"""

from __future__ import annotations

import calendar
from datetime import datetime

import numpy as np
import pyqtgraph as pg

from app.qt import QtCore, QtWidgets
from engine.store import TrendPoint

#: Pathology colours (colour-blind safe Okabe-Ito order).
COLOURS = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9")
GREY = "#8a8a8a"
#: Point kinds, as drawn.
KINDS = ("assessable", "not_assessable", "ood")


def epoch_s(iso: str) -> float:
    """Seconds of an ISO time read as written (the file's local time), for a DateAxisItem
    with utcOffset 0 (so the axis shows the time as written)."""
    return float(calendar.timegm(datetime.fromisoformat(iso).timetuple()))


def point_kind(p: TrendPoint, pathology: str) -> str:
    """How `p` is drawn for `pathology`: "ood" (out of distribution for it), "not_assessable"
    (flagged for another reason) or "assessable"."""
    if p.ood and p.ood.get(pathology):
        return "ood"
    if p.flagged:
        return "not_assessable"
    return "assessable"


class TrendPlot(QtWidgets.QWidget):
    """The patient's AI trend. `set_points(points, current_id)`; `scatters[(pathology, kind)]`
    and `threshold_lines[pathology]` hold the drawn items (tests read their data)."""

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.axis = pg.DateAxisItem(orientation="bottom", utcOffset=0)
        self.plot = pg.PlotWidget(background="w", axisItems={"bottom": self.axis})
        self.plot.setYRange(0.0, 1.0, padding=0.05)
        self.plot.setLabel("left", "AI probability")
        self.plot.showGrid(x=False, y=True, alpha=0.2)
        self.plot.setMouseEnabled(x=True, y=False)
        self.legend = self.plot.addLegend(offset=(8, 8), labelTextColor="#222")
        self.note = QtWidgets.QLabel("")
        self.note.setWordWrap(True)
        self.note.setStyleSheet("color:#555;")
        lay = QtWidgets.QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.plot, 1)
        lay.addWidget(self.note)
        self.scatters: dict[tuple[str, str], pg.ScatterPlotItem] = {}
        self.lines: dict[str, pg.PlotDataItem] = {}
        self.threshold_lines: dict[str, pg.InfiniteLine] = {}
        self.current_line: pg.InfiniteLine | None = None
        self.points: list[TrendPoint] = []

    def clear(self) -> None:
        self.plot.clear()
        self.legend.clear()
        self.scatters, self.lines, self.threshold_lines = {}, {}, {}
        self.current_line = None
        self.points = []
        self.note.setText("")

    def set_points(self, points: list[TrendPoint], current_id: int | None = None) -> None:
        """Draw `points` (oldest first, `engine.store.ai_trend`); mark `current_id`."""
        self.clear()
        self.points = list(points)
        timed = [p for p in points if p.acquired and p.probabilities]
        untimed = sum(1 for p in points if not p.acquired and p.probabilities)
        unscored = sum(1 for p in points if not p.probabilities)
        pathologies: list[str] = []
        for p in timed:
            pathologies += [k for k in p.probabilities if k not in pathologies]
        xs = {p.ecg_id: epoch_s(p.acquired) for p in timed}
        other_thresholds = False
        for i, path in enumerate(pathologies):
            colour = COLOURS[i % len(COLOURS)]
            rows = [(xs[p.ecg_id], float(p.probabilities[path]), point_kind(p, path), p)
                    for p in timed if path in p.probabilities]
            ok = [(x, y) for x, y, k, _ in rows if k == "assessable"]
            if ok:
                line = pg.PlotDataItem(*map(np.array, zip(*ok)), pen=pg.mkPen(colour, width=1.5))
                self.plot.addItem(line)
                self.lines[path] = line
            styles = {
                "assessable": dict(symbol="o", size=10, pen=pg.mkPen(colour), brush=pg.mkBrush(colour)),
                "not_assessable": dict(symbol="o", size=11, pen=pg.mkPen(colour, width=2),
                                       brush=pg.mkBrush(255, 255, 255, 255)),
                "ood": dict(symbol="s", size=11, pen=pg.mkPen(GREY, width=2),
                            brush=pg.mkBrush(255, 255, 255, 255)),
            }
            for kind in KINDS:
                pts = [(x, y, p) for x, y, k, p in rows if k == kind]
                if not pts:
                    continue
                sc = pg.ScatterPlotItem(x=np.array([x for x, _, _ in pts]),
                                        y=np.array([y for _, y, _ in pts]),
                                        data=[p.ecg_id for _, _, p in pts], **styles[kind])
                sc.setToolTip(f"{path}: {kind.replace('_', ' ')}")
                self.plot.addItem(sc)
                self.scatters[(path, kind)] = sc
            if ok or rows:
                self.legend.addItem(self.lines.get(path) or self.scatters[(path, rows[0][2])], path)
            thresholds = [p.thresholds[path] for p in timed if p.thresholds and path in p.thresholds]
            if thresholds:
                thr = float(thresholds[-1])
                other_thresholds |= any(abs(t - thr) > 1e-9 for t in thresholds)
                tl = pg.InfiniteLine(pos=thr, angle=0, pen=pg.mkPen(colour, width=1,
                                                                    style=QtCore.Qt.PenStyle.DashLine),
                                     label=f"{path} threshold {thr:.2f}",
                                     labelOpts={"position": 0.02, "color": colour, "anchors": [(0, 1), (0, 1)]})
                self.plot.addItem(tl)
                self.threshold_lines[path] = tl
        kinds_drawn = {k for (_, k) in self.scatters}
        if "not_assessable" in kinds_drawn:
            self.legend.addItem(pg.ScatterPlotItem(symbol="o", size=11, pen=pg.mkPen("#444", width=2),
                                                   brush=pg.mkBrush("w")), "not assessable (hollow)")
        if "ood" in kinds_drawn:
            self.legend.addItem(pg.ScatterPlotItem(symbol="s", size=11, pen=pg.mkPen(GREY, width=2),
                                                   brush=pg.mkBrush("w")), "out of distribution (grey)")
        if current_id in xs:
            self.current_line = pg.InfiniteLine(pos=xs[current_id], angle=90,
                                                pen=pg.mkPen("#444", width=1, style=QtCore.Qt.PenStyle.DotLine),
                                                label="this ECG", labelOpts={"position": 0.97, "color": "#444"})
            self.plot.addItem(self.current_line)
        if xs:
            lo, hi = min(xs.values()), max(xs.values())
            pad = max((hi - lo) * 0.08, 86400.0 * 30)
            self.plot.setXRange(lo - pad, hi + pad, padding=0)
        notes = []
        if untimed:
            notes.append(f"{untimed} ECG(s) without an acquisition time are not plotted.")
        if unscored:
            notes.append(f"{unscored} ECG(s) without AI results (not scored or unreadable) are not plotted.")
        if other_thresholds:
            notes.append("Some ECGs were scored with other thresholds; the lines show the newest.")
        if not timed:
            notes.insert(0, "No AI results to plot for this patient.")
        self.note.setText(" ".join(notes))
