"""What the screen shows is the right patient, the right image, and honestly certain or
uncertain (issue 14), in a real window offscreen with real files and real bundles:
the patient-identity banner, closing the other patient's pane, the chest X-ray gate,
borderline and not-assessable calls, flags readable at every size, and the PDF."""

from __future__ import annotations

import json
import shutil
import subprocess

import pydicom
import pytest

from app.controller import Controller
from app.findings import CALL_RGB
from app.qt import QtCore, QtGui, QtWidgets
from engine.constants import PATHOLOGIES

from app_samples import DATA, REPO, SAMPLE_ECGS

TIMEOUT = 30000
SIIM = next((DATA / "cxr/dicom").glob("siim_*.dcm"))      # patient 16d7f894..., M
DICOM_ECG = DATA / "ecg/dicom/pydicom_waveform_ecg.dcm"    # patient 642341, F, born 1971-01-23
LUDB_2 = DATA / "ecg/wfdb/ludb/2.hea"                      # no identifiers, M
PTB = SAMPLE_ECGS[4]                                       # out of the shipped model's range
SHIPPED = REPO / "resources" / "models"


def _live(window, errors, models, tmp_path, qtbot) -> Controller:
    ctl = Controller(window, models_dir=str(models), settings_dir=tmp_path / "config",
                     error_presenter=lambda t, m: errors.append((t, m)))
    with qtbot.waitSignal(ctl.models_ready, timeout=TIMEOUT) as ok:
        ctl.load_models()
    assert ok.args == [True]
    return ctl


@pytest.fixture
def live(window, errors, tiny_bundle, tmp_path, qtbot):
    return _live(window, errors, tiny_bundle, tmp_path, qtbot)


def _ecg(ctl, qtbot, path) -> None:
    with qtbot.waitSignal(ctl.ecg_predicted, timeout=TIMEOUT):
        ctl.open_ecg(path)


def _cxr(ctl, qtbot, path) -> None:
    with qtbot.waitSignal(ctl.cxr_predicted, timeout=TIMEOUT):
        ctl.open_cxr(path)


def _dicom_copy(src, dst, **tags):
    """A copy of a real DICOM file with some tags changed (pixels and waveform untouched)."""
    ds = pydicom.dcmread(src)
    for k, v in tags.items():
        setattr(ds, k, v)
    ds.save_as(dst)
    return dst


@pytest.fixture
def same_patient_cxr(tmp_path):
    """The SIIM chest film relabelled as the DICOM ECG's patient."""
    return _dicom_copy(SIIM, tmp_path / "cxr_642341.dcm", PatientID="642341",
                       PatientBirthDate="19710123", PatientSex="F")


def _pdf_text(ctl, tmp_path) -> str:
    out = ctl.export_pdf(tmp_path / "review.pdf")
    text = subprocess.run(["pdftotext", "-layout", str(out), "-"], capture_output=True,
                          text=True, check=True).stdout
    return " ".join(text.replace("\ufb01", "fi").replace("\ufb00", "ff").split())  # ligatures


def _teacher_cells(window) -> list[str]:
    return [window.ai_panel.cell_text(p, c) for p in PATHOLOGIES
            for c in ("CXR p", "CXR thr", "CXR call")]


def test_different_patient_banner_is_red_on_top_and_the_teacher_is_withheld(
        live, window, qtbot, tmp_path):
    window.act_keep_cxr.setChecked(True)          # the user keeps the X-ray on purpose
    _cxr(live, qtbot, SIIM)
    assert any(_teacher_cells(window))            # alone, the teacher's calls are shown
    _ecg(live, qtbot, DICOM_ECG)
    banner = window.banner
    assert live.cxr is not None and live.guard.pairing.status == "different_patient"
    assert banner.isVisible() and banner.status == "different_patient"
    assert banner.text().startswith("DIFFERENT PATIENTS: the patient ID, sex of the ECG")
    assert banner.text().endswith("Chest X-ray teacher comparison withheld.")
    assert "#b01e1e" in banner.styleSheet()
    assert banner.mapTo(window, QtCore.QPoint(0, 0)).y() < \
        window.ecg_view.mapTo(window, QtCore.QPoint(0, 0)).y()
    assert banner.width() > 0.9 * window.centralWidget().width()
    assert not any(_teacher_cells(window))        # withheld
    assert window.ai_panel.teacher_note.isVisible()
    assert "different patient" in window.ai_panel.teacher_note.text()
    assert "CXR" not in " ".join(window.ai_panel.cell_text(p, "Flags") for p in PATHOLOGIES)
    text = _pdf_text(live, tmp_path)              # the PDF leaves the other X-ray out
    assert "DIFFERENT PATIENTS" in text and "left out of this report" in text
    assert "Paired chest X-ray" not in text
    teacher_p = {f"{v.probability:.3f}" for v in live.cxr_predictions.values()}
    ecg_p = {f"{v.probability:.3f}" for v in live.ecg_predictions.values()}
    assert not any(f" {p} " in text for p in teacher_p - ecg_p)


def test_same_patient_is_confirmed_quietly_and_the_teacher_shown(
        live, window, qtbot, tmp_path, same_patient_cxr):
    _ecg(live, qtbot, DICOM_ECG)
    _cxr(live, qtbot, same_patient_cxr)
    assert live.record is not None and live.cxr is not None
    assert window.banner.status == "same_patient" and window.banner.isVisible()
    assert window.banner.text().startswith("Same patient: patient ID") and "#b01e1e" not in \
        window.banner.styleSheet()
    for p in PATHOLOGIES:
        assert window.ai_panel.cell_text(p, "CXR p") == f"{live.cxr_predictions[p].probability:.3f}"
    assert not window.ai_panel.teacher_note.isVisible()
    assert window.cxr_view.gate_label.text().startswith("Gate: accepted")
    text = _pdf_text(live, tmp_path)
    assert "Same patient" in text and "Paired chest X-ray" in text


def test_unknown_identity_is_said_and_nothing_is_cleared(live, window, qtbot):
    _cxr(live, qtbot, SIIM)
    _ecg(live, qtbot, LUDB_2)                     # WFDB: no identifiers, same sex
    assert live.cxr is not None and live.record is not None
    assert window.banner.status == "unknown"
    assert window.banner.text().startswith("Patient identity not verified")
    assert any(_teacher_cells(window))


def test_opening_another_patients_file_clears_the_other_pane(
        live, window, qtbot, tmp_path, same_patient_cxr):
    _ecg(live, qtbot, DICOM_ECG)
    _cxr(live, qtbot, same_patient_cxr)
    other_ecg = _dicom_copy(DICOM_ECG, tmp_path / "ecg_other.dcm", PatientID="999001",
                            PatientName="Roe^Richard", PatientSex="M")
    _ecg(live, qtbot, other_ecg)                  # another patient: the X-ray goes
    assert live.cxr is None and window.cxr_view.image is None
    assert not any(_teacher_cells(window)) and not window.banner.isVisible()
    assert "Chest X-ray closed" in window.statusBar().currentMessage()
    window.act_keep_cxr.setChecked(True)          # kept on purpose: it stays, flagged
    _cxr(live, qtbot, same_patient_cxr)
    _ecg(live, qtbot, other_ecg)
    assert live.cxr is not None and window.banner.status == "different_patient"
    window.act_keep_cxr.setChecked(False)
    _ecg(live, qtbot, DICOM_ECG)                  # the X-ray's own patient again
    assert window.banner.status == "same_patient"
    _cxr(live, qtbot, SIIM)                       # the reverse: an X-ray of another patient
    assert live.record is None and window.ecg_view.record is None
    assert window.header.fields == {} and not window.banner.isVisible()
    assert not any(window.ai_panel.cell_text(p, "ECG p") for p in PATHOLOGIES)


@pytest.mark.parametrize("tags, words", [
    ({"BodyPartExamined": "EXTREMITY"}, "EXTREMITY"),
    ({"ViewPosition": "LL"}, "LL")], ids=["extremity", "lateral"])
def test_a_non_chest_or_lateral_radiograph_is_refused(live, window, qtbot, tmp_path, tags, words):
    path = _dicom_copy(SIIM, tmp_path / "refused.dcm", **tags)
    _ecg(live, qtbot, LUDB_2)
    _cxr(live, qtbot, path)
    assert live.cxr_gate is not None and not live.cxr_gate.accepted
    assert live.cxr_predictions == {}             # the teacher was not run
    gate = window.cxr_view.gate_label
    assert gate.isVisible() and gate.text().startswith("Not a frontal chest radiograph")
    assert words in gate.text() and gate.text().count("frontal chest radiograph") == 1
    assert not any(_teacher_cells(window))
    assert "not run" in window.ai_panel.teacher_note.text()
    text = _pdf_text(live, tmp_path)
    assert "Refused by the gate" in text and "Chest X-ray teacher not run" in text


@pytest.fixture
def banded_bundle(tiny_bundle, tmp_path):
    """The tiny bundle with a stated uncertainty band 0.40-0.50 around its cardiomegaly
    threshold (0.45), as a training run writes it into the manifest."""
    out = tmp_path / "banded"
    shutil.copytree(tiny_bundle, out)
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["pathologies"]["cardiomegaly"]["ecg"]["borderline"] = {"low": 0.40, "high": 0.50}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1))
    from bundle_factory import sign
    sign(out)  # re-signed with the (trusted) test key, as a site's build would sign it
    return out


def test_a_borderline_call_is_neither_red_nor_plain_negative(window, errors, banded_bundle,
                                                             tmp_path, qtbot):
    ctl = _live(window, errors, banded_bundle, tmp_path, qtbot)
    _ecg(ctl, qtbot, DICOM_ECG)
    pred = ctl.ecg_predictions["cardiomegaly"]
    assert 0.40 <= pred.probability <= 0.50 and pred.call == "borderline"
    panel = window.ai_panel
    cell = panel.cell("cardiomegaly", "ECG call")
    assert cell.text() == "borderline"
    assert not cell.font().bold() and cell.font().italic()
    assert cell.foreground().color() == QtGui.QColor(*CALL_RGB["borderline"])
    assert CALL_RGB["borderline"] not in (CALL_RGB["positive"], CALL_RGB["negative"])
    assert "uncertainty band 0.400-0.500" in cell.toolTip()
    assert "ECG borderline: probability" in panel.cell_text("cardiomegaly", "Flags")
    assert panel.cell_text("edema", "ECG call") in ("POSITIVE", "negative")
    text = _pdf_text(ctl, tmp_path)
    assert "borderline" in text and "Flags: Cardiomegaly: ECG borderline" in text


def _tooltip_at(table: QtWidgets.QTableWidget, row: int, col: int, qtbot) -> str:
    """The tooltip Qt shows on hovering a cell (a real help event to the viewport)."""
    rect = table.visualRect(table.model().index(row, col))
    pos = rect.center()
    event = QtGui.QHelpEvent(QtCore.QEvent.Type.ToolTip, pos, table.viewport().mapToGlobal(pos))
    QtWidgets.QApplication.sendEvent(table.viewport(), event)
    qtbot.waitUntil(lambda: QtWidgets.QToolTip.isVisible(), timeout=2000)
    return QtWidgets.QToolTip.text()


@pytest.mark.parametrize("size", [(1500, 860), (1100, 700)])
def test_a_flagged_finding_is_not_assessable_with_its_reason_readable(
        window, errors, tmp_path, qtbot, size):
    window.resize(*size)
    ctl = _live(window, errors, SHIPPED, tmp_path, qtbot)
    _ecg(ctl, qtbot, PTB)
    panel, table = window.ai_panel, window.ai_panel.table
    qtbot.wait(20)
    for r, p in enumerate(PATHOLOGIES):
        pred = ctl.ecg_predictions[p]
        assert pred.ood and pred.call == "not_assessable"
        cell = panel.cell(p, "ECG call")
        assert cell.text() == "not assessable" and not cell.font().bold()
        assert cell.foreground().color() != QtGui.QColor(190, 30, 30)
        assert "outside the model's training ECGs" in cell.toolTip()
        flags = panel.cell_text(p, "Flags")
        assert flags.startswith("ECG not assessable: the ECG lies outside the model's training")
        assert f"{pred.ood_distance:.1f}" in flags
        assert panel.cell_text(p, "Finding").endswith("⚑")
        assert flags in panel.flags_label.text().replace("&gt;", ">").replace("&#x27;", "'")
    # the reason lines wrap to the panel: whole, inside it, nothing cut to "ECG OO…"
    label = panel.flags_label
    assert label.isVisible() and label.wordWrap()
    assert label.mapTo(panel, QtCore.QPoint(label.width(), 0)).x() <= panel.width()
    assert label.height() >= label.heightForWidth(label.width())
    assert label.mapTo(window, QtCore.QPoint(0, label.height())).y() <= window.height()
    assert _tooltip_at(table, 0, 0, qtbot) == panel.cell_text(PATHOLOGIES[0], "Flags")
    QtWidgets.QToolTip.hideText()
    text = _pdf_text(ctl, tmp_path)
    assert text.count("not assessable") >= 6      # three calls and three reasons
    assert "Mahalanobis distance" in text


def test_a_real_film_out_of_the_phantom_teachers_range_is_not_assessable(
        window, errors, tmp_path, qtbot):
    """The shipped teacher was trained on phantom drawings: on a real NIH film the gate's
    embedding check refuses it after the teacher ran, and every teacher call is "not
    assessable" with that reason, never a POSITIVE."""
    from app_samples import NIH_CXR
    ctl = _live(window, errors, SHIPPED, tmp_path, qtbot)
    _ecg(ctl, qtbot, LUDB_2)
    _cxr(ctl, qtbot, NIH_CXR)
    gate = ctl.cxr_gate
    assert not gate.accepted and gate.checks["embedding_ood"]["ok"] is False
    label = window.cxr_view.gate_label
    assert label.isVisible() and label.text().startswith("Teacher calls not assessable")
    assert "#b01e1e" in label.styleSheet()
    panel = window.ai_panel
    for p in PATHOLOGIES:
        pred = ctl.cxr_predictions[p]
        assert pred.call == "not_assessable"
        assert panel.cell_text(p, "CXR call") == "not assessable"
        assert not panel.cell(p, "CXR call").font().bold()
        assert "CXR not assessable" in panel.cell_text(p, "Flags")
        assert "Mahalanobis distance" in panel.cell_text(p, "Flags")
    assert panel.flags_label.text().count("CXR not assessable") == 1   # said once ...
    assert "<b>All findings</b>: CXR not assessable" in panel.flags_label.text()  # ... for all
    text = _pdf_text(ctl, tmp_path)
    assert text.count("All findings: CXR not assessable: out of distribution") == 1
    n_ecg = sum(v.call == "not_assessable" for v in ctl.ecg_predictions.values())
    assert text.count("not assessable") == 3 + 2 + 2 * n_ecg  # the three teacher calls
    assert "Teacher: not assessable" in text
