"""Export the review to a one-page A4 landscape PDF (QPdfWriter + QPainter): header,
AI findings (ECG-only and CXR teacher), CXR thumbnail, the 12-lead ECG as 3×4 plus a
rhythm strip at true scale (25 mm/s, 10 mm/mV) on a 1 mm / 5 mm grid, and the
disclaimer. Page geometry is in millimetres.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from app import paper
from app.filters import DisplayFilters, apply_display_filters, filter_label
from app.findings import POSITIVE, POSITIVE_RGB, prediction_cells
from app.qt import QtCore, QtGui
from app.views.ecg_view import paper_label
from app.views.header_view import header_fields
from engine.constants import DEMO_DISCLAIMER, PATHOLOGIES, PATHOLOGY_NAMES
from engine.records import CxrImage, EcgRecord, Prediction

log = logging.getLogger(__name__)

PAGE_W_MM, PAGE_H_MM = 297.0, 210.0
MARGIN_MM = 8.0
ECG_TOP_MM = 52.0
SPEED, GAIN = 25.0, 10.0
RESOLUTION_DPI = 600
NOT_DEMO_NOTE = "AI findings support, and do not replace, the physician's reading"


@dataclass
class ReviewContent:
    """Everything the exported page shows."""

    record: EcgRecord
    ecg_predictions: dict[str, Prediction] = field(default_factory=dict)
    cxr: CxrImage | None = None
    cxr_predictions: dict[str, Prediction] = field(default_factory=dict)
    filters: DisplayFilters = field(default_factory=DisplayFilters)
    rhythm_lead: str = "II"
    cabrera: bool = False
    demo: bool = True
    bundle: dict[str, Any] | None = None
    page_start_s: float = 0.0
    #: optional saliency page: {"ecg"|"cxr": {pathology: engine.explain.SaliencyMap}}
    saliency: dict[str, dict] = field(default_factory=dict)


class _Page:
    """Millimetre helpers over a QPainter on a QPdfWriter."""

    def __init__(self, painter: QtGui.QPainter, dpi: float) -> None:
        self.p = painter
        self.k = dpi / 25.4  # device pixels per mm

    def pt(self, x_mm: float, y_mm: float) -> QtCore.QPointF:
        return QtCore.QPointF(x_mm * self.k, y_mm * self.k)

    def rect(self, x: float, y: float, w: float, h: float) -> QtCore.QRectF:
        return QtCore.QRectF(x * self.k, y * self.k, w * self.k, h * self.k)

    def pen(self, colour: QtGui.QColor, width_mm: float) -> QtGui.QPen:
        pen = QtGui.QPen(colour)
        pen.setWidthF(width_mm * self.k)
        return pen

    def text(self, x: float, y: float, w: float, h: float, s: str, size_pt: float = 8.0,
             bold: bool = False, colour: QtGui.QColor | None = None,
             flags: int = int(QtCore.Qt.AlignmentFlag.AlignLeft | QtCore.Qt.AlignmentFlag.AlignTop)
             | int(QtCore.Qt.TextFlag.TextWordWrap)) -> None:
        font = QtGui.QFont("DejaVu Sans")
        font.setPointSizeF(size_pt)
        font.setBold(bold)
        self.p.setFont(font)
        self.p.setPen(colour or QtGui.QColor(0, 0, 0))
        self.p.drawText(self.rect(x, y, w, h), flags, s)


def _draw_grid(pg_: _Page, x0: float, y0: float, w: float, h: float) -> None:
    """ECG paper of `w` x `h` mm with its top-left corner at (x0, y0) on the page: every
    minor line (major ones drawn over them), then the major lines."""
    p = pg_.p
    p.fillRect(pg_.rect(x0, y0, w, h), QtGui.QColor(*paper.PAPER_RGB))
    for step, rgb, width in ((paper.MINOR_MM, paper.MINOR_RGB, 0.08),
                             (paper.MAJOR_MM, paper.MAJOR_RGB, 0.18)):
        p.setPen(pg_.pen(QtGui.QColor(*rgb), width))
        for dx in paper.grid_offsets(0.0, w, step):
            x = x0 + dx
            p.drawLine(pg_.pt(x, y0), pg_.pt(x, y0 + h))
        for dy in paper.grid_offsets(0.0, h, step):
            y = y0 + dy
            p.drawLine(pg_.pt(x0, y), pg_.pt(x0 + w, y))


def _draw_ecg(pg_: _Page, c: ReviewContent) -> tuple[float, float, list[str]]:
    """Draw the 3×4 + rhythm page at 25 mm/s, 10 mm/mV; returns the paper (w, h) in mm and
    the labels of the display filters actually applied."""
    rec = c.record
    x0, y0 = MARGIN_MM, ECG_TOP_MM
    w, h = paper.paper_size_mm("3x4", rec.duration_s, SPEED)
    _draw_grid(pg_, x0, y0, w, h)
    sig, applied = apply_display_filters(rec.signal, rec.fs, c.filters)
    panels = paper.layout_panels("3x4", rec.leads, rec.duration_s, SPEED, c.page_start_s,
                                 c.rhythm_lead, c.cabrera)
    p = pg_.p
    p.setRenderHint(QtGui.QPainter.RenderHint.Antialiasing, True)
    trace_pen = pg_.pen(QtGui.QColor(0, 0, 0), 0.22)
    for seg in paper.panel_segments(panels, sig, rec.fs, rec.leads):
        panel = seg.panel
        xs = x0 + panel.x_mm + (seg.t_s - panel.t0_s) * SPEED
        ys = y0 - (panel.y_mm + seg.mv.astype(np.float64) * GAIN)
        poly = QtGui.QPolygonF([pg_.pt(a, b) for a, b in zip(xs, ys)])
        p.setPen(trace_pen)
        p.drawPolyline(poly)
        pg_.text(x0 + panel.x_mm + 1.0, y0 - panel.y_mm - 13.0, 30, 5,
                 paper_label(panel.label, panel.lead, rec), 8, bold=True)
        if seg.first_in_row:
            cx, cy = paper.calibration_pulse_mm(0.5, panel.y_mm, GAIN, SPEED)
            p.setPen(trace_pen)
            p.drawPolyline(QtGui.QPolygonF([pg_.pt(x0 + a, y0 - b) for a, b in zip(cx, cy)]))
    return w, h, applied


def _draw_header(pg_: _Page, c: ReviewContent) -> None:
    f = header_fields(c.record)
    lines = [f.get("patient", ""), f.get("acquisition", ""), f.get("signal", ""),
             f.get("source", "")]
    pg_.text(MARGIN_MM, MARGIN_MM, 100, 6, "CroMoTEX Review: ECG review", 11, bold=True)
    pg_.text(MARGIN_MM, MARGIN_MM + 7, 100, 20, "\n".join(x for x in lines if x), 7.5)
    extra = " | ".join(f"{name}: {f[key]}" for key, name in (
        ("measurements", "Device measurements"), ("statements", "Statements")) if f.get(key))
    if extra:
        pg_.text(MARGIN_MM, MARGIN_MM + 27, 105, 16, extra, 6.5)


def findings_rows(c: ReviewContent) -> list[list[str]]:
    """Rows of the findings table: finding, ECG p / thr / call, CXR p / thr / call."""
    return [[PATHOLOGY_NAMES[path], *prediction_cells(c.ecg_predictions.get(path), "–"),
             *prediction_cells(c.cxr_predictions.get(path), "–")] for path in PATHOLOGIES]


def _draw_findings(pg_: _Page, c: ReviewContent) -> None:
    x, y = 118.0, MARGIN_MM
    pg_.text(x, y, 130, 6, "AI findings (ECG-only CroMoTEX vs chest X-ray teacher)", 9, bold=True)
    cols = [("Finding", 30), ("ECG p", 14), ("thr", 12), ("ECG call", 18),
            ("CXR p", 14), ("thr", 12), ("CXR call", 18)]
    yy = y + 7
    cx = x
    for name, wd in cols:
        pg_.text(cx, yy, wd, 5, name, 7, bold=True)
        cx += wd
    for row in findings_rows(c):
        yy += 5
        cx = x
        for (name, wd), val in zip(cols, row):
            colour = QtGui.QColor(*POSITIVE_RGB) if val == POSITIVE else None
            pg_.text(cx, yy, wd, 5, val, 7, bold=(val == POSITIVE), colour=colour)
            cx += wd
    if not c.ecg_predictions:
        pg_.text(x, yy + 6, 125, 5, "No ECG AI findings (model bundle unavailable).", 7)
    elif c.bundle:
        pg_.text(x, yy + 6, 125, 5, f"Models: {c.bundle.get('bundle_id')}, trained on "
                 f"{c.bundle.get('data')} data", 6.5, colour=QtGui.QColor(80, 80, 80))


def _draw_cxr(pg_: _Page, image: CxrImage) -> None:
    x, y, size = PAGE_W_MM - MARGIN_MM - 40.0, MARGIN_MM, 40.0
    px = np.clip(np.asarray(image.pixels, dtype=np.float32) * 255.0, 0, 255).astype(np.uint8)
    px = np.ascontiguousarray(px)
    h, w = px.shape
    qimg = QtGui.QImage(px.data, w, h, w, QtGui.QImage.Format.Format_Grayscale8).copy()
    scale = min(size / w, size / h)
    dw, dh = w * scale, h * scale
    pg_.p.drawImage(pg_.rect(x + (size - dw) / 2, y, dw, dh), qimg)
    pg_.text(x, y + dh + 0.5, size, 4, "Paired chest X-ray", 6.5)


def export_review(path: str | Path, content: ReviewContent) -> Path:
    """Write the review PDF to `path`.

    Returns:
        the path written.
    Raises:
        OSError: the file cannot be written (folder missing, no permission).
    """
    out = Path(path)
    if not out.parent.is_dir():
        raise OSError(f"Cannot write {out}: the folder {out.parent} does not exist")
    writer = QtGui.QPdfWriter(str(out))
    writer.setResolution(RESOLUTION_DPI)
    writer.setPageSize(QtGui.QPageSize(QtGui.QPageSize.PageSizeId.A4))
    writer.setPageOrientation(QtGui.QPageLayout.Orientation.Landscape)
    writer.setPageMargins(QtCore.QMarginsF(0, 0, 0, 0), QtGui.QPageLayout.Unit.Millimeter)
    writer.setTitle("CroMoTEX Review")
    writer.setCreator("CroMoTEX Review")
    painter = QtGui.QPainter()
    if not painter.begin(writer):
        raise OSError(f"Cannot write {out}: the PDF could not be created")
    try:
        page = _Page(painter, writer.resolution())
        _draw_header(page, content)
        _draw_findings(page, content)
        if content.cxr is not None:
            _draw_cxr(page, content.cxr)
        _, h, applied = _draw_ecg(page, content)
        scale = (f"{SPEED:g} mm/s   {GAIN:g} mm/mV   Filters: "
                 f"{filter_label(applied)}   ECG at true scale when printed at 100%")
        page.text(MARGIN_MM, ECG_TOP_MM + h + 1.0, 250, 5, scale, 7)
        note = DEMO_DISCLAIMER if content.demo else NOT_DEMO_NOTE
        page.text(MARGIN_MM, PAGE_H_MM - MARGIN_MM - 6.0, PAGE_W_MM - 2 * MARGIN_MM, 6,
                  note, 9, bold=True, colour=QtGui.QColor(150, 60, 0))
        if content.saliency:
            from app.export_saliency import draw_saliency_page
            from engine.preprocess import preprocess_cxr
            x = preprocess_cxr(content.cxr) if content.cxr is not None else None
            draw_saliency_page(writer, page, content.saliency, x, PAGE_W_MM, MARGIN_MM)
    finally:
        painter.end()
    log.info("exported review to %s", out)
    return out
