"""ECG paper: 1 mm and 5 mm grid drawn in paper millimetres."""

from __future__ import annotations

import math

from app.qt import QtCore, QtGui, pg

PAPER_COLOUR = QtGui.QColor(255, 247, 247)
MINOR_COLOUR = QtGui.QColor(246, 190, 190)
MAJOR_COLOUR = QtGui.QColor(226, 110, 110)

#: Minor lines are hidden when they would be closer than this on screen (pixels).
MIN_MINOR_PX = 3.0


class PaperGrid(pg.GraphicsObject):
    """Pink ECG paper of `width_mm` × `height_mm` whose top-left corner is at (0, 0);
    the paper extends downwards (negative y). Minor lines every `minor_mm`, major
    lines every `major_mm`."""

    def __init__(self, width_mm: float, height_mm: float,
                 minor_mm: float = 1.0, major_mm: float = 5.0) -> None:
        super().__init__()
        self.minor_mm = minor_mm
        self.major_mm = major_mm
        self._rect = QtCore.QRectF(0.0, -height_mm, width_mm, height_mm)
        self.setZValue(-100)

    def set_size(self, width_mm: float, height_mm: float) -> None:
        self.prepareGeometryChange()
        self._rect = QtCore.QRectF(0.0, -height_mm, width_mm, height_mm)
        self.update()

    def boundingRect(self) -> QtCore.QRectF:  # noqa: N802 (Qt API)
        return QtCore.QRectF(self._rect)

    def paint(self, p: QtGui.QPainter, *args) -> None:
        r = self._rect
        p.setRenderHint(QtGui.QPainter.RenderHint.Antialiasing, False)
        p.fillRect(r, PAPER_COLOUR)
        px_per_mm = abs(p.transform().m11()) or 1.0
        exposed = r.intersected(self.viewRect() or r)
        draw_minor = px_per_mm * self.minor_mm >= MIN_MINOR_PX
        for step, colour, width, skip_major in (
                (self.minor_mm, MINOR_COLOUR, 1.0, True),
                (self.major_mm, MAJOR_COLOUR, 1.0, False)):
            if step == self.minor_mm and not draw_minor:
                continue
            pen = QtGui.QPen(colour)
            pen.setCosmetic(True)
            pen.setWidthF(width)
            p.setPen(pen)
            ratio = int(round(self.major_mm / self.minor_mm))
            i0 = int(math.ceil((exposed.left() - r.left()) / step - 1e-9))
            i1 = int(math.floor((exposed.right() - r.left()) / step + 1e-9))
            for i in range(i0, i1 + 1):
                if skip_major and i % ratio == 0:
                    continue
                x = r.left() + i * step
                p.drawLine(QtCore.QPointF(x, exposed.top()), QtCore.QPointF(x, exposed.bottom()))
            j0 = int(math.ceil((r.bottom() - exposed.bottom()) / step - 1e-9))
            j1 = int(math.floor((r.bottom() - exposed.top()) / step + 1e-9))
            for j in range(j0, j1 + 1):
                if skip_major and j % ratio == 0:
                    continue
                y = r.bottom() - j * step
                p.drawLine(QtCore.QPointF(exposed.left(), y), QtCore.QPointF(exposed.right(), y))
