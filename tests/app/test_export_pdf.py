"""PDF export: a readable A4 landscape page with the ECG grid, findings, CXR and
disclaimer (checked with poppler's pdfinfo / pdftotext / pdftoppm)."""

from __future__ import annotations

import subprocess

import numpy as np
import pytest
from PIL import Image

from app.export_pdf import ReviewContent, export_review
from app.filters import DisplayFilters
from engine.constants import DEMO_DISCLAIMER
from engine.io import read_cxr, read_ecg
from engine.records import Prediction

from app_samples import NIH_CXR, PTBXL


def _pred(p, prob, positive, modality="ecg"):
    return Prediction(pathology=p, modality=modality, probability=prob, threshold=0.4,
                      positive=positive, embedding=np.zeros(256, np.float32),
                      model_name=f"{modality}_{p}.onnx", provenance="phantom", demo=True)


def test_pdf_page_is_readable_and_true_scale(qapp, tmp_path):
    content = ReviewContent(
        record=read_ecg(PTBXL), cxr=read_cxr(NIH_CXR),
        ecg_predictions={"cardiomegaly": _pred("cardiomegaly", 0.812, True),
                         "edema": _pred("edema", 0.123, False)},
        cxr_predictions={"cardiomegaly": _pred("cardiomegaly", 0.9, True, "cxr")},
        filters=DisplayFilters(baseline_hz=0.5), demo=True,
        bundle={"bundle_id": "test-tiny-0", "data": "phantom"})
    out = export_review(tmp_path / "review.pdf", content)
    info = subprocess.run(["pdfinfo", str(out)], capture_output=True, text=True, check=True).stdout
    fields = {k.strip(): v.strip() for k, v in (ln.split(":", 1) for ln in info.splitlines())}
    assert fields["Pages"] == "1"
    assert fields["Page size"].startswith("842 x 595 pts")   # A4 landscape
    text = " ".join(subprocess.run(["pdftotext", "-layout", str(out), "-"], capture_output=True,
                                   text=True, check=True).stdout.split())
    for needle in (DEMO_DISCLAIMER, "Cardiomegaly", "0.812", "POSITIVE", "Pulmonary edema",
                   "25 mm/s", "10 mm/mV", "HP 0.5 Hz", "aVR", "V6"):
        assert needle in text, needle
    subprocess.run(["pdftoppm", "-r", "50", "-png", "-singlefile", str(out),
                    str(tmp_path / "page")], check=True)
    img = np.asarray(Image.open(tmp_path / "page.png").convert("RGB")).astype(int)
    assert img.shape[:2] == (pytest.approx(413, abs=2), pytest.approx(585, abs=2))
    ink = (img.sum(axis=2) < 200).mean()
    pink = ((img[..., 0] > 200) & (img[..., 1] < 200) & (img[..., 2] < 200)).mean()
    assert ink > 0.005 and pink > 0.01                  # traces/text and a red grid


def test_pdf_export_to_missing_folder_raises(qapp, tmp_path):
    with pytest.raises(OSError, match="does not exist"):
        export_review(tmp_path / "nope" / "r.pdf", ReviewContent(record=read_ecg(PTBXL)))


def test_pdf_labels_the_filters_actually_applied(qapp, tmp_path):
    """PTB-XL is sampled at 100 Hz: a 50 Hz notch sits at Nyquist and is not applied, and the
    page must say so, as the screen does, instead of claiming the requested filter."""
    content = ReviewContent(record=read_ecg(PTBXL), filters=DisplayFilters(notch_hz=50.0), demo=True)
    out = export_review(tmp_path / "review.pdf", content)
    text = " ".join(subprocess.run(["pdftotext", "-layout", str(out), "-"], capture_output=True,
                                   text=True, check=True).stdout.split())
    assert "notch 50 Hz n/a at 100 Hz" in text


def test_pdf_prints_measurement_line_and_median_beats(qapp, tmp_path):
    from app.controller import _read_ecg

    rec = _read_ecg(PTBXL)
    m = rec.meta["computed_measurements"]
    out = export_review(tmp_path / "m.pdf", ReviewContent(record=rec))
    info = subprocess.run(["pdfinfo", str(out)], capture_output=True, text=True, check=True).stdout
    assert "Pages:           2" in info
    pages = [" ".join(subprocess.run(["pdftotext", "-layout", "-f", str(i), "-l", str(i), str(out), "-"],
                                     capture_output=True, text=True, check=True).stdout.split())
             for i in (1, 2)]
    assert f"QT {m.values['qt_ms']:g} ms" in pages[0] and "Computed" in pages[0]
    assert "Automated measurements" in pages[1] and "qrs on" in pages[1] and "V6" in pages[1]
    assert f"QTc {m.values['qtc_ms']:.0f} ms" in pages[1]
