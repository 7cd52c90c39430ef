"""`cromotex-review [ECG_FILE] [--cxr CXR_FILE] [--models DIR] [--demo]`: the GUI."""

from __future__ import annotations

import argparse
import logging
import sys
import time
from concurrent.futures import Future
from pathlib import Path

log = logging.getLogger(__name__)

_T0 = time.perf_counter()


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="cromotex-review",
                                description="Review a 12-lead ECG with CroMoTEX AI findings "
                                            "and the paired chest X-ray.")
    p.add_argument("ecg", nargs="?", metavar="ECG_FILE", help="ECG to open (WFDB .hea, DICOM)")
    p.add_argument("--cxr", metavar="CXR_FILE", help="paired chest X-ray (DICOM, PNG, JPEG)")
    p.add_argument("--models", metavar="DIR", help="model bundle folder (default: the shipped "
                   "bundle, or the one chosen in settings)")
    p.add_argument("--demo", action="store_true", help="open the bundled demo case 1 (ECG + "
                   "its paired CXR; File > Open demo case lists them all)")
    p.add_argument("--demo-case", type=int, metavar="N", help="open bundled demo case N "
                   "(implies --demo)")
    p.add_argument("--quit-when-ready", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--self-test", action="store_true", help="check the installation (bundle, "
                   "demo-case inference against the reference outputs, window offscreen), write "
                   "a JSON report and exit 0 when every check passed")
    p.add_argument("--report", metavar="PATH", help="self-test report file (default: "
                   "self-test.json in the user's log folder)")
    p.add_argument("--demo-dir", metavar="DIR", help="self-test: demo cases folder (default: "
                   "the shipped resources/demo/, or $CROMOTEX_DEMO_DIR)")
    p.add_argument("-v", "--verbose", action="store_true", help="log to stderr")
    return p


def _warm_ecg_preprocessing() -> None:
    """Import what `engine.preprocess` imports lazily on its first ECG (scipy.special for
    the resampling filter's Kaiser window, scipy.ndimage for the baseline's median
    filter: ~0.2-0.7 s on this machine), so that the first prediction does not wait for
    it after the ECG is shown. Neither pulls in scipy.stats or scipy.signal."""
    import scipy.ndimage  # noqa: F401
    import scipy.special  # noqa: F401


def _start_loading_models(models_arg: str | None) -> tuple[str | None, Future]:
    """Start loading the model bundle (`--models`, else the one chosen in settings,
    else the shipped one: `Controller`'s rule) in a thread now, so that the sessions are
    built while Qt is imported and the window drawn (onnxruntime builds them without
    holding the GIL); the ECG preprocessing's imports are warmed in a second thread.
    `Controller.load_models(future)` takes the result. Returns (the folder asked for,
    None for the default; the future)."""
    from concurrent.futures import ThreadPoolExecutor

    from app.settings import Settings
    from engine.inference import Predictor
    models_dir = models_arg if models_arg is not None else (Settings.load().models_dir or None)
    pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="start")
    future = pool.submit(Predictor, models_dir or None)
    pool.submit(_warm_ecg_preprocessing)
    pool.shutdown(wait=False)  # the threads end with their tasks
    return models_dir, future


def main(argv: list[str] | None = None) -> int:
    import multiprocessing
    multiprocessing.freeze_support()  # the worklist's scan process (app.worklist.scan_process) in frozen builds
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    if args.self_test:  # before any Qt import: the self-test imports in the safe order itself
        from app.selftest import main as self_test
        return self_test(args.models, args.demo_dir, args.report)
    # engine (and onnxruntime) before Qt: the safe import order for frozen builds
    import engine.inference  # noqa: F401
    models_dir, models = _start_loading_models(args.models)  # beside Qt's imports and the window
    from app.qt import QtCore, QtWidgets, quiet_offscreen_noise
    quiet_offscreen_noise()
    from app.controller import Controller
    from app.main_window import MainWindow

    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication(sys.argv[:1])
    app.setApplicationName("CroMoTEX Review")
    from engine.resources import resource_path
    from app.qt import QtGui
    icon = resource_path("icons", "cromotex.png")
    if icon.is_file():
        app.setWindowIcon(QtGui.QIcon(str(icon)))
    window = MainWindow()
    ctl = Controller(window, models_dir=models_dir)
    from app.worklist_controller import WorklistController
    worklist = WorklistController(ctl)  # worklist, serial comparison, overread (issue 20)
    ecg, cxr = (Path(args.ecg) if args.ecg else None), (Path(args.cxr) if args.cxr else None)
    if args.quit_when_ready:
        reported: list[str] = []  # "ready" once: a later `ready` (re-scoring) prints nothing

        def done() -> None:
            if reported:
                return
            reported.append("ready")
            app.processEvents()
            window.ecg_view.grab()  # force a real paint of the ECG
            n = len(window.ecg_view.traces())
            sys.stdout.write(f"READY {time.perf_counter() - _T0:.3f} s traces={n} "
                             f"predictions={len(ctl.ecg_predictions)} "
                             f"measuring={int(ctl.measuring)}\n")
            sys.stdout.flush()
            if ctl.measuring:  # quit once the measurements follow (MEASURED line)
                ctl.measured.connect(measured)
            else:
                QtCore.QTimer.singleShot(0, app.quit)

        def measured(m: object) -> None:
            ctl.measured.disconnect(measured)
            QtCore.QTimer.singleShot(0, app.quit)  # first: quits even if stdout is gone
            window.header.grab()
            sys.stdout.write(f"MEASURED {time.perf_counter() - _T0:.3f} s "
                             f"ok={int(m is not None)}\n")
            sys.stdout.flush()
        ctl.ready.connect(done)
        ctl.error_shown.connect(lambda t, m: (sys.stderr.write(f"ERROR {t}: {m}\n"),
                                              QtCore.QTimer.singleShot(0, lambda: app.exit(2))))
    window.show()
    ctl.load_models(models)
    if args.demo or args.demo_case is not None:
        ctl.open_demo(args.demo_case if args.demo_case is not None else 1)
    if ecg is not None:
        ctl.open_ecg(ecg)
    if cxr is not None:
        ctl.open_cxr(cxr)
    app.aboutToQuit.connect(ctl.save_settings)
    app.aboutToQuit.connect(worklist.shutdown)
    app.aboutToQuit.connect(ctl.shutdown)
    return int(app.exec())


if __name__ == "__main__":
    sys.exit(main())
