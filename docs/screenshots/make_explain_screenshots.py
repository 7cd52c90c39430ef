"""Regenerate the saliency screenshots (offscreen): demo case 1 (ECG + paired CXR) scored
by the shipped bundle, "Explain ECG" and "Explain X-ray" switched on (maps computed in the
app's worker), cardiomegaly selected:

    QT_QPA_PLATFORM=offscreen python3 docs/screenshots/make_explain_screenshots.py
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parents[1]))  # this checkout's app / engine

from make_screenshots import _models_dir, _save  # noqa: E402


def main() -> None:
    os.environ["CROMOTEX_REVIEW_CONFIG_DIR"] = tempfile.mkdtemp()
    from app.controller import Controller
    from app.demo import demo_case
    from app.main_window import MainWindow
    from app.qt import QtCore, QtWidgets, quiet_offscreen_noise

    quiet_offscreen_noise()
    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication([])
    w = MainWindow()
    ctl = Controller(w, models_dir=_models_dir())
    w.resize(1600, 900)
    w.show()

    def wait(pred, ms=180000):
        t = QtCore.QElapsedTimer()
        t.start()
        while not pred() and t.elapsed() < ms:
            app.processEvents(QtCore.QEventLoop.ProcessEventsFlag.AllEvents, 20)
        if not pred():
            raise SystemExit("timed out")

    ctl.load_models()
    wait(lambda: ctl.predictor is not None)
    case = demo_case(1)
    ctl.open_ecg(case.ecg)
    ctl.open_cxr(case.cxr)
    wait(lambda: bool(ctl.ecg_predictions) and bool(ctl.cxr_predictions))
    s = ctl.saliency
    s.ecg_bar.toggle.setChecked(True)
    s.cxr_bar.toggle.setChecked(True)
    wait(lambda: bool(s.ecg_maps) and bool(s.cxr_maps))
    for _ in range(20):
        app.processEvents()
    _save(w, "explain_cardiomegaly.png")
    s.ecg_bar.finding.setCurrentIndex(2)
    s.cxr_bar.finding.setCurrentIndex(2)
    s.cxr_bar.opacity.setValue(70)
    for _ in range(20):
        app.processEvents()
    _save(w, "explain_pleural_effusion.png")
    print(s.ecg_bar.caption.text())
    print(s.cxr_bar.caption.text())


if __name__ == "__main__":
    main()
