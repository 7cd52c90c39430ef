"""Regenerate the screenshots in this folder (offscreen): demo case 1 of the shipped
demo folder (resources/demo/, ECG and its paired CXR) scored by the shipped bundle
(resources/models/); it refuses to run without them rather than substitute others:

    QT_QPA_PLATFORM=offscreen python3 docs/screenshots/make_screenshots.py

Then the trust states of issue 14, with the real files of tests/data/:

- review_default.png: the window at its default size (whole page shown), demo case 1
  (its files carry no patient identifiers: "Patient identity not verified");
- pairing_different_patient.png: the SIIM chest film (patient 16d7f894..., M) kept open
  while the DICOM ECG of patient 642341 (F) is opened: red banner, teacher withheld;
- gate_refused.png: the DICOM ECG with a copy of the SIIM film relabelled as its patient
  and tagged BodyPartExamined=EXTREMITY (pydicom, in a temporary folder): same patient,
  image refused by the gate, teacher not run;
- call_not_assessable.png: PTB s0010 (out of the phantom-trained ECG models' range);
- call_borderline.png: LUDB record 1: probabilities inside the bootstrap bands of the
  thresholds the shipped bundle states;
- cxr_out_of_distribution.png: LUDB record 2 with a real NIH film: the phantom-trained
  teacher's embedding check refuses it, every teacher call "not assessable".

Then the reading workflow of issue 20 (`--workflow`: only these), on a temporary study store
of real files: the MUSE sample (2023), a copy of it as a 2022 visit (rate 72), the second MUSE
sample relabelled as the same patient's 2021 visit (so the trend has a different signal),
the DICOM ECG and a 2014 copy of it, three LUDB records, PTB s0010 and a truncated DICOM:

- worklist_window.png: the review window with the Worklist, Serial comparison and Overread docks,
  the 2023 MUSE ECG opened from the worklist;
- worklist.png: the worklist filled by a scan with the shipped models (the error row at the end);
- comparison_trend.png: the 2023 MUSE ECG above its 2022 prior, measurement differences and
  the patient's AI trend;
- overread_panel.png: the overread panel with an edited, an added and a struck statement,
  agreement recorded, after signing version 1 and amending it.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(REPO))  # this checkout's app and engine, not the installed ones


def _models_dir() -> str:
    """The shipped bundle (raises engine.errors.BundleError when it is not installed)."""
    from engine.bundle import load_bundle
    return str(load_bundle(None).directory)


def _save(widget_or_pixmap, name: str) -> None:
    """Save as an adaptive-palette PNG (keeps each file well under 400 KB)."""
    from PIL import Image
    from app.qt import QtGui
    pix = widget_or_pixmap if isinstance(widget_or_pixmap, QtGui.QPixmap) else widget_or_pixmap.grab()
    tmp = HERE / f".{name}"
    pix.save(str(tmp))
    Image.open(tmp).convert("RGB").quantize(colors=128).save(HERE / name, optimize=True)
    tmp.unlink()


def _review_window():
    """(QApplication, MainWindow, Controller on the shipped bundle): a fresh config folder,
    offscreen noise quietened, the window shown at 1600 x 900."""
    os.environ["CROMOTEX_REVIEW_CONFIG_DIR"] = tempfile.mkdtemp()
    from app.controller import Controller
    from app.main_window import MainWindow
    from app.qt import QtWidgets, quiet_offscreen_noise

    quiet_offscreen_noise()
    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication([])
    w = MainWindow()
    ctl = Controller(w, models_dir=_models_dir())
    w.resize(1600, 900)
    w.show()
    return app, w, ctl


def _waiter(app, default_ms: int = 30000, strict: bool = False):
    """`wait(pred, ms=default_ms)`: process `app`'s events until `pred()` holds or `ms`
    pass; with `strict`, raise SystemExit("timed out") when it still does not hold."""
    from app.qt import QtCore

    def wait(pred, ms=default_ms):
        t = QtCore.QElapsedTimer()
        t.start()
        while not pred() and t.elapsed() < ms:
            app.processEvents(QtCore.QEventLoop.ProcessEventsFlag.AllEvents, 20)
        if strict and not pred():
            raise SystemExit("timed out")
    return wait


def main() -> None:
    app, w, ctl = _review_window()
    from app.demo import demo_case
    from app.qt import QtCore, QtGui
    errors: list = []
    case = demo_case(1)
    ecg, cxr = case.ecg, case.cxr
    wait = _waiter(app)

    ctl.load_models()
    ctl.open_ecg(ecg)
    if cxr is not None:
        ctl.open_cxr(cxr)
    wait(lambda: ctl.ecg_predictions and (cxr is None or ctl.cxr_predictions))
    w.ecg_view.zoom_fit()
    wait(lambda: False, 300)
    _save(w, "review_3x4_cxr.png")
    w.act_layouts["12x1"].trigger()
    w.ecg_view.zoom_fit()
    wait(lambda: False, 300)
    _save(w, "review_12x1.png")
    _save(w.header, "header_measurements.png")
    w.act_layouts["median"].trigger()
    w.median_view.zoom_fit()
    wait(lambda: False, 300)
    _save(w, "median_beats.png")
    w.act_layouts["3x4"].trigger()
    w.ecg_view.zoom_fit()
    bad = Path(tempfile.mkdtemp(prefix="inbox-")) / "truncated.hea"
    bad.write_text("truncated 12 500\n")
    ctl.open_ecg(bad)
    wait(lambda: ctl.error_box is not None and ctl.error_box.isVisible())
    wait(lambda: False, 300)
    shot = w.grab()
    box = ctl.error_box.grab()
    painter = QtGui.QPainter(shot)
    painter.fillRect(shot.rect(), QtGui.QColor(0, 0, 0, 60))
    # offscreen dialogs have no window-manager frame: draw a plain title bar above it
    x, y, bar = (shot.width() - box.width()) // 2, (shot.height() - box.height()) // 3, 28
    painter.fillRect(x - 1, y - bar - 1, box.width() + 2, box.height() + bar + 2,
                     QtGui.QColor(90, 90, 90))
    painter.fillRect(x, y - bar, box.width(), bar, QtGui.QColor(225, 225, 225))
    painter.setPen(QtGui.QColor(20, 20, 20))
    painter.drawText(x + 10, y - bar, box.width() - 20, bar,
                     int(QtCore.Qt.AlignmentFlag.AlignVCenter), ctl.error_box.windowTitle())
    painter.drawPixmap(x, y, box)
    painter.end()
    _save(shot, "error_dialog.png")
    ctl.error_box.close()
    ctl.export_pdf(Path(tempfile.mkdtemp()) / "review.pdf")
    # computed beside the device's own measurements (the Mortara DICOM test file)
    dicom = REPO / "tests" / "data" / "ecg" / "dicom" / "pydicom_waveform_ecg.dcm"
    ctl.open_ecg(str(dicom))
    wait(lambda: ctl.record is not None and ctl.record.source is not None
         and ctl.record.source.path.endswith(".dcm"))
    wait(lambda: False, 300)
    _save(w.header, "header_device_comparison.png")
    del errors
    trust_states(app, wait, _models_dir())
    workflow_shots(app, wait, _models_dir())


def trust_states(app, wait, models: str) -> None:
    """The screenshots of issue 14's states (see the module docstring)."""
    import pydicom
    from app.controller import Controller
    from app.demo import demo_case
    from app.main_window import MainWindow

    data = REPO / "tests" / "data"
    siim = next((data / "cxr" / "dicom").glob("siim_*.dcm"))
    dicom_ecg = data / "ecg" / "dicom" / "pydicom_waveform_ecg.dcm"
    tmp = Path(tempfile.mkdtemp(prefix="trust-"))
    ds = pydicom.dcmread(siim)
    ds.PatientID, ds.PatientBirthDate, ds.PatientSex = "642341", "19710123", "F"
    ds.BodyPartExamined = "EXTREMITY"
    leg = tmp / "same_patient_extremity.dcm"
    ds.save_as(leg)

    def shot(name: str, files: list[tuple[str, Path]], models_dir: str = models,
             keep_cxr: bool = False, size: tuple[int, int] | None = None) -> None:
        w = MainWindow()
        ctl = Controller(w, models_dir=models_dir)
        if size:
            w.resize(*size)
        w.show()
        w.act_keep_cxr.setChecked(keep_cxr)
        ctl.load_models()
        wait(lambda: ctl.predictor is not None)
        for kind, path in files:
            getattr(ctl, f"open_{kind}")(path)
            wait(lambda: (ctl.ecg_predictions if kind == "ecg" else
                          (ctl.cxr_predictions or (ctl.cxr_gate is not None
                                                   and not ctl.cxr_gate.accepted))))
            wait(lambda: not w.ai_panel.busy)
        wait(lambda: False, 400)
        _save(w, name)
        w.close()

    case = demo_case(1)
    shot("review_default.png", [("ecg", case.ecg), ("cxr", case.cxr)])
    shot("pairing_different_patient.png", [("cxr", siim), ("ecg", dicom_ecg)], keep_cxr=True)
    shot("gate_refused.png", [("ecg", dicom_ecg), ("cxr", leg)])
    shot("call_not_assessable.png", [("ecg", data / "ecg/wfdb/ptb_diagnostic/s0010_re.hea")])
    shot("call_borderline.png", [("ecg", data / "ecg/wfdb/ludb/1.hea")])
    shot("cxr_out_of_distribution.png", [("ecg", data / "ecg/wfdb/ludb/2.hea"),
                                         ("cxr", data / "cxr/png/nih/00000001_000.png")])


def workflow_shots(app, wait, models: str) -> None:
    """The screenshots of issue 20 (see the module docstring)."""
    import shutil

    import pydicom

    from app.controller import Controller
    from app.main_window import MainWindow
    from app.worklist_controller import WorklistController
    from engine.inference import Predictor

    data = REPO / "tests" / "data"
    root = Path(tempfile.mkdtemp(prefix="worklist-shots-"))
    folder = root / "inbox"
    (folder / "muse").mkdir(parents=True)
    (folder / "dicom").mkdir()
    muse = (data / "formats/muse_xml/egm_muse-sinus.xml").read_text(encoding="latin-1")
    (folder / "muse" / "doe_2023.xml").write_text(muse, encoding="latin-1")
    (folder / "muse" / "doe_2022.xml").write_text(
        muse.replace("<AcquisitionDate>04-29-2023</AcquisitionDate>", "<AcquisitionDate>04-29-2022</AcquisitionDate>")
        .replace("<VentricularRate>90</VentricularRate>", "<VentricularRate>72</VentricularRate>"), encoding="latin-1")
    other = (data / "formats/muse_xml/musephi_muse_ecg1.xml").read_text(encoding="latin-1")
    (folder / "muse" / "doe_2021.xml").write_text(
        other.replace("<PatientID>JAX01234</PatientID>", "<PatientID>081486213</PatientID>")
        .replace("<PatientLastName>TEST 05</PatientLastName>", "<PatientLastName>DOE</PatientLastName>"),
        encoding="latin-1")
    dcm = data / "ecg/dicom/pydicom_waveform_ecg.dcm"
    shutil.copyfile(dcm, folder / "dicom" / "ecg_2013.dcm")
    ds = pydicom.dcmread(dcm)
    ds.AcquisitionDateTime = "20140301093000"
    ds.save_as(folder / "dicom" / "ecg_2014.dcm")
    (folder / "dicom" / "truncated.dcm").write_bytes(dcm.read_bytes()[:3000])
    for src in ("ludb/1", "ludb/2", "ludb/3", "ptb_diagnostic/s0010_re"):
        for f in (data / "ecg/wfdb").glob(src + ".*"):
            (folder / "wfdb").mkdir(exist_ok=True)
            shutil.copyfile(f, folder / "wfdb" / f.name)

    w = MainWindow()
    ctl = Controller(w, models_dir=models, error_presenter=lambda t, m: None)
    ctl.settings.reader_name = "Dr A. Reader"
    ctl.settings.reports_dir = str(root / "reports")
    wl = WorklistController(ctl, root / "store.sqlite3")
    w.resize(1600, 1000)
    w.show()
    ctl.predictor = Predictor(models)
    done = []
    wl.scan_finished.connect(lambda c, e: done.append(e))
    wl.scan([str(folder)])
    wait(lambda: bool(done), 180000)
    wl.model.refresh()
    row = next(i for i in range(wl.model.rowCount()) if wl.model.entry(i).path.endswith("doe_2023.xml"))
    wl.view.select_row(row)
    wl.open_entry(wl.model.entry(row))
    wait(lambda: wl.current is not None and bool(ctl.ecg_predictions))
    wait(lambda: False, 500)
    _save(w, "worklist_window.png")
    wl.view.setParent(None)
    wl.view.resize(1600, 420)
    wl.view.show()
    wait(lambda: False, 300)
    _save(wl.view, "worklist.png")
    comp = wl.comparison
    comp.setParent(None)
    comp.resize(1600, 900)
    comp.show()
    comp.current_view.zoom_fit()
    wait(lambda: comp.prior_view.record is not None)
    wait(lambda: False, 500)
    _save(comp, "comparison_trend.png")

    panel = wl.overread
    panel.list.item(0).setText(panel.list.item(0).text() + " (rate 90)")
    panel.add_statement("No significant change from prior ECG")
    if panel.list.count() > 2:
        panel.list.setCurrentRow(panel.list.count() - 2)
        panel.remove_selected()
    for combo in panel.agreement_combos.values():
        combo.setCurrentIndex(combo.findData("agree"))
    wl.sign()
    panel.add_statement("Sinus tachycardia")
    panel.reason_edit.setText("rhythm statement added")
    wl.sign()
    panel.comment_edit.setText("")
    panel.setParent(None)
    panel.resize(520, 900)
    panel.show()
    wait(lambda: False, 300)
    _save(panel, "overread_panel.png")
    wl.shutdown()
    w.close()


if __name__ == "__main__":
    if "--workflow" in sys.argv:
        os.environ["CROMOTEX_REVIEW_CONFIG_DIR"] = tempfile.mkdtemp()
        from app.qt import QtCore, QtWidgets, quiet_offscreen_noise
        quiet_offscreen_noise()
        _app = QtWidgets.QApplication.instance() or QtWidgets.QApplication([])

        def _wait(pred, ms=30000):
            t = QtCore.QElapsedTimer()
            t.start()
            while not pred() and t.elapsed() < ms:
                _app.processEvents(QtCore.QEventLoop.ProcessEventsFlag.AllEvents, 20)
        workflow_shots(_app, _wait, _models_dir())
    else:
        main()
