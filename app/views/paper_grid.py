"""ECG paper: 1 mm and 5 mm grid drawn in paper millimetres."""

from __future__ import annotations

from app import paper
from app.qt import QtCore, QtGui, pg

PAPER_COLOUR = QtGui.QColor(*paper.PAPER_RGB)
MINOR_COLOUR = QtGui.QColor(*paper.MINOR_RGB)
MAJOR_COLOUR = QtGui.QColor(*paper.MAJOR_RGB)

#: Minor lines are hidden when they would be closer than this on screen (pixels).
MIN_MINOR_PX = 3.0


class PaperGrid(pg.GraphicsObject):
    """Pink ECG paper of `width_mm` × `height_mm` whose top-left corner is at (0, 0);
    the paper extends downwards (negative y). Minor lines every `minor_mm`, major
    lines every `major_mm`."""

    def __init__(self, width_mm: float, height_mm: float,
                 minor_mm: float = paper.MINOR_MM, major_mm: float = paper.MAJOR_MM) -> None:
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
            skip = int(round(self.major_mm / self.minor_mm)) if skip_major else 0
            for dx in paper.grid_offsets(exposed.left() - r.left(), exposed.right() - r.left(),
                                         step, skip):
                x = r.left() + dx
                p.drawLine(QtCore.QPointF(x, exposed.top()), QtCore.QPointF(x, exposed.bottom()))
            for dy in paper.grid_offsets(r.bottom() - exposed.bottom(), r.bottom() - exposed.top(),
                                         step, skip):
                y = r.bottom() - dy
                p.drawLine(QtCore.QPointF(exposed.left(), y), QtCore.QPointF(exposed.right(), y))
