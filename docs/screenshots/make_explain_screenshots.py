"""Regenerate the saliency screenshots (offscreen): demo case 1 (ECG + paired CXR) scored
by the shipped bundle, "Explain ECG" and "Explain X-ray" switched on (maps computed in the
app's worker), cardiomegaly selected:

    QT_QPA_PLATFORM=offscreen python3 docs/screenshots/make_explain_screenshots.py
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parents[1]))  # this checkout's app / engine

from make_screenshots import _review_window, _save, _waiter  # noqa: E402


def main() -> None:
    app, w, ctl = _review_window()
    from app.demo import demo_case
    wait = _waiter(app, default_ms=180000, strict=True)

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
