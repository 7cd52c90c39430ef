"""Calipers on the ECG paper: time (two vertical lines), amplitude (two horizontal
lines) and marching ticks that repeat the time interval across the record.

Positions are paper millimetres; readings are converted with the view's current
speed and gain (`app.paper`).
"""

from __future__ import annotations

from dataclasses import dataclass

from app import paper
from app.qt import QtCore, QtGui, QtWidgets, Signal, pg

CALIPER_PEN = pg.mkPen(QtGui.QColor(20, 60, 200), width=1.5)
MARCH_PEN = pg.mkPen(QtGui.QColor(20, 60, 200), width=1, style=QtCore.Qt.PenStyle.DashLine)


@dataclass(frozen=True)
class CaliperReading:
    """What the calipers measure: `interval_ms`, `rate_bpm` (60000 / interval) and
    `amplitude_mv` (None when the amplitude calipers are hidden)."""

    interval_ms: float
    rate_bpm: float
    amplitude_mv: float | None

    def text(self) -> str:
        s = f"Δt {self.interval_ms:.0f} ms  ·  {self.rate_bpm:.0f} bpm"
        if self.amplitude_mv is not None:
            s += f"  ·  ΔV {self.amplitude_mv:.2f} mV"
        return s


class Calipers(QtCore.QObject):
    """Caliper lines on `viewbox` (paper mm coordinates).

    Signals:
        measured(CaliperReading): after any move or speed/gain change.
    """

    measured = Signal(object)

    def __init__(self, viewbox: pg.ViewBox, speed_mm_s: float, gain_mm_mv: float,
                 parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.viewbox = viewbox
        self.speed = speed_mm_s
        self.gain = gain_mm_mv
        self.marching = False
        #: (x_min, x_max) in mm over which marching ticks repeat; None = the visible range.
        self.extent_mm: tuple[float, float] | None = None
        self.show_amplitude = True
        self.t1 = pg.InfiniteLine(angle=90, movable=True, pen=CALIPER_PEN)
        self.t2 = pg.InfiniteLine(angle=90, movable=True, pen=CALIPER_PEN)
        self.a1 = pg.InfiniteLine(angle=0, movable=True, pen=CALIPER_PEN)
        self.a2 = pg.InfiniteLine(angle=0, movable=True, pen=CALIPER_PEN)
        self.label = pg.TextItem("", color=(20, 60, 200), fill=pg.mkBrush(255, 255, 255, 220),
                                 anchor=(0, 1))
        self._march: list[pg.InfiniteLine] = []
        self._visible = False
        #: x positions (mm) a released time caliper snaps to when `snap` is on (e.g. the
        #: fiducials of the median beats), if one lies within `snap_tolerance_mm`.
        self.snap_x: list[float] = []
        self.snap = False
        self.snap_tolerance_mm = 2.0
        for line in (self.t1, self.t2, self.a1, self.a2):
            line.sigPositionChanged.connect(self._update)
        for line in (self.t1, self.t2):
            line.sigPositionChangeFinished.connect(self.snap_line)

    @property
    def visible(self) -> bool:
        return self._visible

    def show(self, x1_mm: float | None = None, x2_mm: float | None = None,
             y1_mm: float | None = None, y2_mm: float | None = None) -> None:
        """Put the calipers on the paper, by default around the middle of the view
        (0.8 s apart, 1 mV apart)."""
        rect = self.viewbox.viewRect()
        cx, cy = rect.center().x(), rect.center().y()
        x1 = cx - 0.4 * self.speed if x1_mm is None else x1_mm
        x2 = cx + 0.4 * self.speed if x2_mm is None else x2_mm
        y1 = cy - 0.5 * self.gain if y1_mm is None else y1_mm
        y2 = cy + 0.5 * self.gain if y2_mm is None else y2_mm
        if not self._visible:
            for item in (self.t1, self.t2, self.a1, self.a2, self.label):
                self.viewbox.addItem(item, ignoreBounds=True)
            self._visible = True
        self.a1.setVisible(self.show_amplitude)
        self.a2.setVisible(self.show_amplitude)
        for line, v in ((self.t1, x1), (self.t2, x2), (self.a1, y1), (self.a2, y2)):
            line.blockSignals(True)
            line.setValue(v)
            line.blockSignals(False)
        self._update()

    def hide(self) -> None:
        if not self._visible:
            return
        self._clear_march()
        for item in (self.t1, self.t2, self.a1, self.a2, self.label):
            self.viewbox.removeItem(item)
        self._visible = False

    def set_scale(self, speed_mm_s: float, gain_mm_mv: float) -> None:
        self.speed, self.gain = speed_mm_s, gain_mm_mv
        if self._visible:
            self._update()

    def set_marching(self, on: bool) -> None:
        self.marching = bool(on)
        if self._visible:
            self._update()

    def snap_line(self, line: pg.InfiniteLine) -> None:
        """Move time caliper `line` onto the nearest `snap_x` within the tolerance
        (called when the user releases it; nothing happens with `snap` off)."""
        if not self.snap or not self.snap_x:
            return
        x = line.value()
        best = min(self.snap_x, key=lambda s: abs(s - x))
        if abs(best - x) <= self.snap_tolerance_mm:
            line.setValue(best)

    def reading(self) -> CaliperReading:
        """The current measurement."""
        ms = paper.interval_ms(self.t2.value() - self.t1.value(), self.speed)
        mv = (paper.amplitude_mv(self.a2.value() - self.a1.value(), self.gain)
              if self.show_amplitude else None)
        return CaliperReading(interval_ms=ms, rate_bpm=paper.rate_bpm(ms), amplitude_mv=mv)

    def marching_positions(self) -> list[float]:
        """x (mm) of the marching ticks currently drawn."""
        return [line.value() for line in self._march]

    def _clear_march(self) -> None:
        for line in self._march:
            self.viewbox.removeItem(line)
        self._march.clear()

    def _update(self, *_: object) -> None:
        r = self.reading()
        x1, x2 = sorted((self.t1.value(), self.t2.value()))
        top = max(self.a1.value(), self.a2.value()) if self.show_amplitude \
            else self.viewbox.viewRect().bottom()
        self.label.setText(r.text())
        self.label.setPos(x1, top + 1.0)
        self._clear_march()
        if self.marching:
            rect = self.viewbox.viewRect()
            bounds = self.extent_mm or (rect.left(), rect.right())
            for x in paper.marching_positions(x1, x2, bounds[0], bounds[1]):
                line = pg.InfiniteLine(pos=x, angle=90, movable=False, pen=MARCH_PEN)
                self.viewbox.addItem(line, ignoreBounds=True)
                self._march.append(line)
        self.measured.emit(r)
