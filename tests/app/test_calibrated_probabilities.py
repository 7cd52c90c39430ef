"""The AI panel and the PDF say whether the ECG probabilities are calibrated (issue 18, item 3):
a real window offscreen with a copy of the shipped bundle whose manifest states temperatures
(re-signed by the trusted test key), and with the shipped (uncalibrated) bundle."""

from __future__ import annotations

import math
import os
import shutil
import subprocess

import pytest

from app.controller import Controller
from engine.constants import PATHOLOGIES

from app_samples import DATA, REPO

TIMEOUT = 30000
SHIPPED = REPO / "resources" / "models"
ECG = DATA / "ecg/dicom/pydicom_waveform_ecg.dcm"
TEMPERATURES = {"cardiomegaly": 1.7, "edema": 0.6, "pleural_effusion": 2.5}


@pytest.fixture
def calibrated_bundle(tiny_bundle, tmp_path):
    """The shipped bundle (hard-linked copy) with a temperature per ECG model, as `build` writes it."""
    from bundle_factory import edit_manifest, trust_test_key

    from engine.calibration import calibrated_threshold

    def add(m):
        for p, t in TEMPERATURES.items():
            e = m["pathologies"][p]["ecg"]
            e.update(temperature=t, threshold_calibrated=calibrated_threshold(e["threshold"], t),
                     calibration={"test_ece_raw": 0.13, "test_ece_calibrated": 0.05})
    trust_test_key()
    d = tmp_path / "calibrated"
    d.mkdir()
    for f in SHIPPED.iterdir():  # the models hard-linked (read only), the manifest copied
        if f.is_file():
            (shutil.copyfile if f.name.startswith("manifest") else os.link)(f, d / f.name)
    edit_manifest(d, add)
    return d


def _scored(window, errors, models, tmp_path, qtbot) -> Controller:
    ctl = Controller(window, models_dir=str(models), settings_dir=tmp_path / "config",
                     error_presenter=lambda t, m: errors.append((t, m)))
    with qtbot.waitSignal(ctl.models_ready, timeout=TIMEOUT) as ok:
        ctl.load_models()
    assert ok.args == [True]
    with qtbot.waitSignal(ctl.ecg_predicted, timeout=TIMEOUT):
        ctl.open_ecg(ECG)
    return ctl


def _pdf_text(ctl, tmp_path) -> str:
    out = ctl.export_pdf(tmp_path / "review.pdf")
    text = subprocess.run(["pdftotext", "-layout", str(out), "-"], capture_output=True,
                          text=True, check=True).stdout
    return " ".join(text.split())


def _header_tooltip(panel, column: str) -> str:
    from app.views.ai_panel import COLUMNS
    return panel.table.horizontalHeaderItem(COLUMNS.index(column)).toolTip()


def test_calibrated_probabilities_are_shown_and_said_calibrated(window, errors, calibrated_bundle,
                                                                 tmp_path, qtbot):
    ctl = _scored(window, errors, calibrated_bundle, tmp_path, qtbot)
    panel = window.ai_panel
    for p in PATHOLOGIES:
        pred = ctl.ecg_predictions[p]
        assert pred.temperature == TEMPERATURES[p]
        assert panel.cell_text(p, "ECG p") == f"{pred.probability:.3f}"
        assert panel.cell_text(p, "ECG thr") == \
            f"{ctl.predictor.bundle.ecg[p].threshold_calibrated:.3f}"
    note = ("ECG probabilities calibrated (temperature scaling: T = 1.70, 0.60, 2.50); thresholds "
            "and borderline bands on the same scale, calls as the uncalibrated model's")
    assert _header_tooltip(panel, "ECG p") == note == _header_tooltip(panel, "ECG thr")
    assert panel.provenance.text().endswith("· ECG p calibrated (temperature scaling)")
    window.grab().save(str(tmp_path / "calibrated.png"))
    assert "ECG p calibrated (temperature scaling)" in _pdf_text(ctl, tmp_path)


def test_the_shipped_bundle_is_said_uncalibrated_with_the_same_calls(window, errors, calibrated_bundle,
                                                                     tmp_path, qtbot):
    ctl = _scored(window, errors, SHIPPED, tmp_path, qtbot)
    from engine.inference import Predictor
    from engine.io import read_ecg
    calibrated = Predictor(calibrated_bundle, threads=1, parallel_models=False).predict_ecg(read_ecg(ECG))
    panel = window.ai_panel
    for p in PATHOLOGIES:
        pred = ctl.ecg_predictions[p]
        assert pred.temperature is None and pred.call == calibrated[p].call
        # the same logit: p_raw = sigmoid(l), p_calibrated = sigmoid(l / T)
        logit = math.log(pred.probability / (1 - pred.probability))
        assert calibrated[p].probability == pytest.approx(1 / (1 + math.exp(-logit / TEMPERATURES[p])),
                                                          abs=1e-9)
    assert _header_tooltip(panel, "ECG p") == "ECG probabilities uncalibrated (sigmoid of the model output)"
    assert panel.provenance.text().endswith("· ECG p uncalibrated")
    assert "ECG p uncalibrated" in _pdf_text(ctl, tmp_path)
