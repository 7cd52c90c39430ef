"""Export the review to an A4 landscape PDF (QPdfWriter + QPainter): the patient
identity of the ECG and the chest X-ray (a strip along the top), header, AI findings
(ECG-only and CXR teacher; calls positive / negative / borderline / not assessable) with
their flags and reasons, CXR thumbnail with the gate's decision, the 12-lead ECG as 3×4
plus a rhythm strip at true scale (25 mm/s, 10 mm/mV) on a 1 mm / 5 mm grid, each trace
clipped to its lead's box, and the disclaimer. When the record carries computed
measurements (`meta["computed_measurements"]`), page 1 prints the measurement line and a
second page the measurements with how they were obtained or why missing, and the 12
median beats at true scale with the global fiducials. Page geometry is in millimetres.

With a chest X-ray of a different patient open, the caller leaves that X-ray and its
teacher calls out (`cxr=None`); the strip along the top says so in red.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from app import paper
from app.filters import DisplayFilters, apply_display_filters, filter_label
from app.findings import (BOLD_CALLS, CALL_RGB, CALL_TEXT, ITALIC_CALLS, calibration_note, grouped_notes,
                          prediction_cells)
from app.qt import QtCore, QtGui
from app.views.ecg_view import paper_label
from app.views.header_view import computed_items, computed_line, header_fields
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
    #: engine.pairing.Pairing of the ECG and the chest X-ray that was open (None: no X-ray).
    pairing: Any = None
    #: engine.cxr_gate.GateDecision on the chest X-ray, if one was open.
    cxr_gate: Any = None
    #: Why the teacher's calls are left out ("" when they are printed).
    teacher_note: str = ""
    #: The X-ray was shown inverted (Invert control): print it the same way.
    cxr_inverted: bool = False
    #: optional saliency page: {"ecg"|"cxr": {pathology: engine.explain.SaliencyMap}}
    saliency: dict[str, dict] = field(default_factory=dict)
    #: The signed overread as lines of text (title first), printed on its own page; empty: none.
    signed_read: list[str] = field(default_factory=list)


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
             bold: bool = False, colour: QtGui.QColor | None = None, italic: bool = False,
             flags: int = int(QtCore.Qt.AlignmentFlag.AlignLeft | QtCore.Qt.AlignmentFlag.AlignTop)
             | int(QtCore.Qt.TextFlag.TextWordWrap)) -> None:
        font = QtGui.QFont("DejaVu Sans")
        font.setPointSizeF(size_pt)
        font.setBold(bold)
        font.setItalic(italic)
        self.p.setFont(font)
        self.p.setPen(colour or QtGui.QColor(0, 0, 0))
        self.p.drawText(self.rect(x, y, w, h), flags, s)

    def fitted_text(self, x: float, y: float, w: float, h: float, s: str, size_pt: float,
                    min_pt: float = 4.5, **kw: Any) -> float:
        """`text` at the largest size from `size_pt` down to `min_pt` whose word-wrapped
        text fits the box (so that no flag is cut off); returns the size used."""
        size = size_pt
        flags = int(QtCore.Qt.AlignmentFlag.AlignLeft | QtCore.Qt.AlignmentFlag.AlignTop) \
            | int(QtCore.Qt.TextFlag.TextWordWrap)
        while size > min_pt:
            font = QtGui.QFont("DejaVu Sans")
            font.setPointSizeF(size)
            self.p.setFont(font)
            need = self.p.boundingRect(self.rect(x, y, w, 10 * h), flags, s)
            if need.height() <= self.rect(x, y, w, h).height():
                break
            size -= 0.5
        self.text(x, y, w, h, s, size, **kw)
        return size


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
        left, right, bottom, top = paper.lead_box_mm(panel, "3x4", SPEED)
        p.setClipRect(pg_.rect(x0 + left, y0 - top, right - left, top - bottom))
        p.setPen(trace_pen)
        p.drawPolyline(poly)  # a tall trace stops at its lead's box, not over its neighbours
        p.setClipping(False)
        pg_.text(x0 + paper.label_x_mm(panel.x_mm, seg.first_in_row, SPEED),
                 y0 - panel.y_mm - 13.0, 30, 5, paper_label(panel.label, panel.lead, rec), 8, bold=True)
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
    computed = computed_line(c.record)
    if computed:
        pg_.text(MARGIN_MM, MARGIN_MM + 25, 108, 7, computed, 6.5, bold=True)
    if extra:
        pg_.text(MARGIN_MM, MARGIN_MM + 32, 105, 12, extra, 6.5)


#: Median-beat page: columns of leads (as the 3×4 layout), row height and gap, mm.
MEDIAN_COLUMNS = (("I", "II", "III"), ("aVR", "aVL", "aVF"), ("V1", "V2", "V3"), ("V4", "V5", "V6"))
MEDIAN_ROW_MM, MEDIAN_GAP_MM, MEDIAN_TOP_MM = 40.0, 6.0, 62.0
FIDUCIAL_RGB = {"p_on": (0, 120, 0), "p_off": (0, 120, 0), "qrs_on": (0, 0, 200),
                "qrs_off": (0, 0, 200), "t_off": (170, 0, 170)}


def _draw_signed_read(pg_: _Page, lines: list[str]) -> None:
    """The page of the signed overread (app.worklist_controller.read_lines): title, then text."""
    pg_.text(MARGIN_MM, MARGIN_MM, 250, 8, lines[0], 13, bold=True)
    pg_.fitted_text(MARGIN_MM, MARGIN_MM + 10, PAGE_W_MM - 2 * MARGIN_MM, PAGE_H_MM - 2 * MARGIN_MM - 10,
                    "\n".join(lines[1:]), 9.0)


def _draw_median_page(pg_: _Page, c: ReviewContent) -> None:
    """Page 2: every computed value with its method or the reason it is missing, and
    the 12 median beats at 25 mm/s, 10 mm/mV with the fiducials as dashed lines."""
    m = c.record.meta["computed_measurements"]
    pg_.text(MARGIN_MM, MARGIN_MM, 200, 6, "Automated measurements (median beats of all leads)", 11, bold=True)
    rows = []
    for it in computed_items(c.record):
        dev = f" — device {it['device']}" if it["device"] is not None else ""
        rows.append(f"{it['text']}{dev}{'  (differs)' if it['differs'] else ''}: {it['tooltip']}")
    pg_.text(MARGIN_MM, MARGIN_MM + 7, PAGE_W_MM - 2 * MARGIN_MM, 44, "\n".join(rows), 6.5)
    if m.median_beats is None:
        return
    beats = m.median_beats
    n = beats.shape[1]
    t_ms = m.median_t0_ms + np.arange(n) * 1000.0 / m.median_fs
    width = (t_ms[-1] - t_ms[0]) / 1000.0 * SPEED
    col_w = width + MEDIAN_GAP_MM
    x0, y0 = MARGIN_MM, MEDIAN_TOP_MM
    w, h = len(MEDIAN_COLUMNS) * col_w, 3 * MEDIAN_ROW_MM
    _draw_grid(pg_, x0, y0, w, h)
    p = pg_.p
    p.setRenderHint(QtGui.QPainter.RenderHint.Antialiasing, True)
    trace_pen = pg_.pen(QtGui.QColor(0, 0, 0), 0.22)
    for ci, col in enumerate(MEDIAN_COLUMNS):
        cx = x0 + ci * col_w + MEDIAN_GAP_MM / 2
        for name, rgb in FIDUCIAL_RGB.items():
            v = m.fiducials_ms.get(name)
            if v is None:
                continue
            xf = cx + (v - t_ms[0]) / 1000.0 * SPEED
            pen = pg_.pen(QtGui.QColor(*rgb), 0.15)
            pen.setStyle(QtCore.Qt.PenStyle.DashLine)
            p.setPen(pen)
            p.drawLine(pg_.pt(xf, y0), pg_.pt(xf, y0 + h))
        for ri, lead in enumerate(col):
            base_y = y0 + (ri + 0.5) * MEDIAN_ROW_MM
            pg_.text(cx, y0 + ri * MEDIAN_ROW_MM + 1.0, 20, 5, lead, 8, bold=True)
            if lead not in m.leads:
                continue
            mv = beats[m.leads.index(lead)].astype(np.float64)
            xs = cx + (t_ms - t_ms[0]) / 1000.0 * SPEED
            ys = base_y - mv * GAIN
            p.setPen(trace_pen)
            p.drawPolyline(QtGui.QPolygonF([pg_.pt(a, b) for a, b in zip(xs, ys)]))
    legend = "   ".join(f"{k.replace('_', ' ')} {v:+.0f} ms" for k, v in m.fiducials_ms.items() if v is not None)
    pg_.text(x0, y0 + h + 1.0, 280, 5, f"{SPEED:g} mm/s   {GAIN:g} mm/mV   fiducials (dashed), "
             f"time 0 = QRS alignment point: {legend}", 7)


def findings_rows(c: ReviewContent) -> list[list[str]]:
    """Rows of the findings table: finding, ECG p / thr / call, CXR p / thr / call."""
    return [[PATHOLOGY_NAMES[path], *prediction_cells(c.ecg_predictions.get(path), "–"),
             *prediction_cells(c.cxr_predictions.get(path), "–")] for path in PATHOLOGIES]


def findings_notes(c: ReviewContent) -> list[str]:
    """The flags and reasons printed under the findings table, one a line: per finding
    ("Cardiomegaly: ECG not assessable: ...", a note shared by every finding once under
    "All findings"), then why the teacher's calls are absent."""
    lines = [f"{title}: " + "; ".join(notes) for title, notes in grouped_notes(
        c.ecg_predictions, c.cxr_predictions, PATHOLOGIES, PATHOLOGY_NAMES)]
    if c.teacher_note:
        lines.append(c.teacher_note)
    return lines


def pairing_line(c: ReviewContent) -> tuple[str, str | None]:
    """(text, status) of the patient-identity strip along the top of the page; ("", None)
    when no chest X-ray was open."""
    if c.pairing is None:
        return "", None
    from app.pairing_guard import banner_text
    text = banner_text(c.pairing)
    if c.pairing.status == "different_patient":
        text += " That chest X-ray and its teacher calls are left out of this report."
    return text, c.pairing.status


def _draw_findings(pg_: _Page, c: ReviewContent) -> None:
    x, y = 118.0, MARGIN_MM
    pg_.text(x, y, 130, 6, "AI findings (ECG-only CroMoTEX vs chest X-ray teacher)", 9, bold=True)
    cols = [("Finding", 29), ("ECG p", 12), ("thr", 11), ("ECG call", 22),
            ("CXR p", 12), ("thr", 11), ("CXR call", 22)]
    yy = y + 7
    cx = x
    for name, wd in cols:
        pg_.text(cx, yy, wd, 5, name, 7, bold=True)
        cx += wd
    calls = {text: call for call, text in CALL_TEXT.items()}
    grey = QtGui.QColor(*CALL_RGB["not_assessable"])
    for row in findings_rows(c):
        yy += 5
        cx = x
        for k, ((name, wd), val) in enumerate(zip(cols, row)):
            call = calls.get(val) if k in (3, 6) else None
            # the probability of a not-assessable finding is printed grey: not a result
            na = k in (1, 4) and row[k + 2] == CALL_TEXT["not_assessable"]
            colour = QtGui.QColor(*CALL_RGB[call]) if call else (grey if na else None)
            pg_.text(cx, yy, wd, 5, val, 7, bold=call in BOLD_CALLS, colour=colour,
                     italic=call in ITALIC_CALLS)
            cx += wd
    if not c.ecg_predictions:
        pg_.text(x, yy + 5.5, 125, 4, "No ECG AI findings (model bundle unavailable).", 7)
    notes = findings_notes(c)
    if notes:
        pg_.fitted_text(x, yy + 5.5, 125, ECG_TOP_MM - 1.0 - (yy + 5.5),
                        "Flags: " + "\n".join(notes), 6.5, colour=QtGui.QColor(60, 60, 60))


def _draw_pairing(pg_: _Page, c: ReviewContent) -> None:
    """The patient-identity strip along the top margin (red for different patients)."""
    text, status = pairing_line(c)
    if not text:
        return
    r = (MARGIN_MM, 1.0, PAGE_W_MM - 2 * MARGIN_MM, MARGIN_MM - 1.5)
    if status == "different_patient":
        pg_.p.fillRect(pg_.rect(*r), QtGui.QColor(176, 30, 30))
        pg_.fitted_text(r[0] + 1, r[1] + 0.3, r[2] - 2, r[3] - 0.3, text, 8, bold=True,
                        colour=QtGui.QColor(255, 255, 255))
    else:
        colour = QtGui.QColor(30, 107, 50) if status == "same_patient" else QtGui.QColor(107, 68, 0)
        pg_.fitted_text(r[0], r[1] + 0.8, r[2], r[3] - 0.8, text, 7, colour=colour)


def _draw_cxr(pg_: _Page, image: CxrImage, c: ReviewContent | None = None) -> None:
    x, y, size = PAGE_W_MM - MARGIN_MM - 40.0, MARGIN_MM, 40.0
    pixels = np.asarray(image.pixels, dtype=np.float32)
    if c is not None and c.cxr_inverted:
        pixels = 1.0 - pixels
    px = np.clip(pixels * 255.0, 0, 255).astype(np.uint8)
    px = np.ascontiguousarray(px)
    h, w = px.shape
    qimg = QtGui.QImage(px.data, w, h, w, QtGui.QImage.Format.Format_Grayscale8).copy()
    scale = min(size / w, (size - 4.0) / h)  # room for the caption above the ECG
    dw, dh = w * scale, h * scale
    pg_.p.drawImage(pg_.rect(x + (size - dw) / 2, y, dw, dh), qimg)
    gate = c.cxr_gate if c is not None else None
    inverted = c is not None and c.cxr_inverted
    caption = "Paired chest X-ray" + (" (shown inverted)" if inverted else "")
    if gate is not None and not gate.accepted:  # its reason is printed under the findings
        from app.pairing_guard import refused_on_embedding
        what = ("Teacher: not assessable (see Flags)" if refused_on_embedding(gate)
                else "Refused by the gate (see Flags)")
        pg_.fitted_text(x, y + dh + 0.5, size, ECG_TOP_MM - 1.0 - (y + dh + 0.5), what, 6.5,
                        min_pt=4.0,
                        colour=QtGui.QColor(176, 30, 30), bold=True)
    else:
        pg_.text(x, y + dh + 0.5, size, 4, caption, 6.5)


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
        _draw_pairing(page, content)
        _draw_header(page, content)
        _draw_findings(page, content)
        if content.cxr is not None:
            _draw_cxr(page, content.cxr, content)
        _, h, applied = _draw_ecg(page, content)
        scale = (f"{SPEED:g} mm/s   {GAIN:g} mm/mV   Filters: "
                 f"{filter_label(applied)}   ECG at true scale when printed at 100%")
        if content.ecg_predictions and content.bundle:
            scale += (f"   Models: {content.bundle.get('bundle_id')}, trained on "
                      f"{content.bundle.get('data')} data; "
                      f"{calibration_note(content.ecg_predictions, short=True)}")
        page.text(MARGIN_MM, ECG_TOP_MM + h + 1.0, 250, 5, scale, 7)
        note = DEMO_DISCLAIMER if content.demo else NOT_DEMO_NOTE
        page.text(MARGIN_MM, PAGE_H_MM - MARGIN_MM - 6.0, PAGE_W_MM - 2 * MARGIN_MM, 6,
                  note, 9, bold=True, colour=QtGui.QColor(150, 60, 0))
        if content.record.meta.get("computed_measurements") is not None:
            writer.newPage()
            _draw_median_page(page, content)
        if content.saliency:
            from app.export_saliency import draw_saliency_page
            from engine.preprocess import preprocess_cxr
            x = preprocess_cxr(content.cxr) if content.cxr is not None else None
            draw_saliency_page(writer, page, content.saliency, x, PAGE_W_MM, MARGIN_MM)
        if content.signed_read:
            writer.newPage()
            _draw_signed_read(page, content.signed_read)
    finally:
        painter.end()
    log.info("exported review to %s", out)
    return out
