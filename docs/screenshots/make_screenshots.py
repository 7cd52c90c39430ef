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
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]


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


def main() -> None:
    os.environ["CROMOTEX_REVIEW_CONFIG_DIR"] = tempfile.mkdtemp()
    from app.demo import demo_case
    from app.qt import QtCore, QtGui, QtWidgets
    from app.controller import Controller
    from app.main_window import MainWindow

    from app.qt import quiet_offscreen_noise
    quiet_offscreen_noise()
    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication([])
    w = MainWindow()
    errors: list = []
    ctl = Controller(w, models_dir=_models_dir())
    w.resize(1600, 900)
    w.show()
    case = demo_case(1)
    ecg, cxr = case.ecg, case.cxr

    def wait(pred, ms=30000):
        t = QtCore.QElapsedTimer()
        t.start()
        while not pred() and t.elapsed() < ms:
            app.processEvents(QtCore.QEventLoop.ProcessEventsFlag.AllEvents, 20)

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


if __name__ == "__main__":
    main()
