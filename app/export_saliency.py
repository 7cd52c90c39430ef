"""The optional saliency page of the review PDF (app.export_pdf): the ECG occlusion maps as
heat strips (one row per lead) and the chest X-ray maps over the model's square, one per
finding, with the per-lead summary; a map that is not assessable is listed with its reason
and not drawn. Pictures come from engine.explain_export (Pillow)."""

from __future__ import annotations

from typing import Any

import numpy as np

from app.qt import QtGui
from engine.constants import PATHOLOGY_NAMES
from engine.explain import SaliencyMap
from engine.explain_export import cxr_png, ecg_png

NOTE = ("Occlusion maps: red = the model's probability fell when that part of the input was "
        "hidden. They show the model's sensitivity, not where disease is (model card, "
        "docs/explain.md).")


def _qimage(img: Any) -> QtGui.QImage:
    rgb = np.ascontiguousarray(np.asarray(img.convert("RGB"), dtype=np.uint8))
    h, w, _ = rgb.shape
    return QtGui.QImage(rgb.data, w, h, 3 * w, QtGui.QImage.Format.Format_RGB888).copy()


def draw_saliency_page(writer: QtGui.QPdfWriter, page: Any, saliency: dict[str, dict[str, SaliencyMap]],
                       cxr_inputs: np.ndarray | None, page_w: float, margin: float) -> None:
    """Start a new page on `writer` and draw `saliency` ({"ecg"|"cxr": {pathology: map}}).

    `page` is export_pdf's millimetre helper; `cxr_inputs` the teacher's input
    `[1, 224, 224]` the CXR maps were computed on (None: no CXR pictures)."""
    writer.newPage()
    page.text(margin, margin, 200, 6, "CroMoTEX Review: saliency maps", 11, bold=True)
    page.text(margin, margin + 6, page_w - 2 * margin, 8, NOTE, 7)
    y = margin + 16
    for p, m in saliency.get("ecg", {}).items():
        label = f"ECG {PATHOLOGY_NAMES.get(p, p)}: "
        if not m.valid:
            page.text(margin, y, 190, 5, label + f"not assessable ({m.reason}); map not shown", 7.5)
            y += 7
            continue
        img = _qimage(ecg_png(m))
        w_mm = 190.0
        h_mm = w_mm * img.height() / img.width()
        page.p.drawImage(page.rect(margin, y, w_mm, h_mm), img)
        page.text(margin, y + h_mm + 0.5, 190, 5, label + m.summary + f" ({m.method})", 6.5)
        y += h_mm + 7
    x, yc, size = margin + 200.0, margin + 16, 50.0
    for p, m in saliency.get("cxr", {}).items():
        label = f"CXR {PATHOLOGY_NAMES.get(p, p)}: "
        if not m.valid or cxr_inputs is None:
            page.text(x, yc, 80, 8, label + (f"not assessable ({m.reason})" if not m.valid
                                             else "no image"), 7)
            yc += 10
            continue
        page.p.drawImage(page.rect(x, yc, size, size), _qimage(cxr_png(m, cxr_inputs)))
        page.text(x + size + 1, yc, 80 - size - 1, size, label + m.summary, 6.5)
        yc += size + 3
