"""Screenshot of the review window with a GE MUSE XML file open (derived leads marked,
device measurements and statements in the header), scored by the shipped bundle:

    QT_QPA_PLATFORM=offscreen python3 docs/screenshots/make_formats_screenshot.py
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(REPO))

from make_screenshots import _models_dir, _save  # noqa: E402

MUSE = REPO / "tests/data/formats/muse_xml/egm_muse-sinus.xml"


def main() -> None:
    os.environ["CROMOTEX_REVIEW_CONFIG_DIR"] = tempfile.mkdtemp()
    from app.controller import Controller
    from app.main_window import MainWindow
    from app.qt import QtCore, QtWidgets, quiet_offscreen_noise

    quiet_offscreen_noise()
    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication([])
    w = MainWindow()
    ctl = Controller(w, models_dir=_models_dir())
    w.resize(1600, 900)
    w.show()

    def wait(pred, ms=30000):
        t = QtCore.QElapsedTimer()
        t.start()
        while not pred() and t.elapsed() < ms:
            app.processEvents(QtCore.QEventLoop.ProcessEventsFlag.AllEvents, 20)

    ctl.load_models()
    ctl.open_ecg(MUSE)
    wait(lambda: bool(ctl.ecg_predictions))
    w.ecg_view.zoom_fit()
    wait(lambda: False, 300)
    _save(w, "review_muse_xml.png")


if __name__ == "__main__":
    main()
