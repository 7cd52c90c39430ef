"""Screenshot of the review window with a GE MUSE XML file open (derived leads marked,
device measurements and statements in the header), scored by the shipped bundle:

    QT_QPA_PLATFORM=offscreen python3 docs/screenshots/make_formats_screenshot.py
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(REPO))

from make_screenshots import _review_window, _save, _waiter  # noqa: E402

MUSE = REPO / "tests/data/formats/muse_xml/egm_muse-sinus.xml"


def main() -> None:
    app, w, ctl = _review_window()
    wait = _waiter(app)

    ctl.load_models()
    ctl.open_ecg(MUSE)
    wait(lambda: bool(ctl.ecg_predictions))
    w.ecg_view.zoom_fit()
    wait(lambda: False, 300)
    _save(w, "review_muse_xml.png")


if __name__ == "__main__":
    main()
