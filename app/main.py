"""`cromotex-review [ECG_FILE] [--cxr CXR_FILE] [--models DIR] [--demo]`: the GUI."""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

log = logging.getLogger(__name__)

_T0 = time.perf_counter()

ECG_SUFFIXES = (".hea", ".dcm", ".mat", ".xml", ".dat")
CXR_SUFFIXES = (".png", ".jpg", ".jpeg", ".dcm")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="cromotex-review",
                                description="Review a 12-lead ECG with CroMoTEX AI findings "
                                            "and the paired chest X-ray.")
    p.add_argument("ecg", nargs="?", metavar="ECG_FILE", help="ECG to open (WFDB .hea, DICOM)")
    p.add_argument("--cxr", metavar="CXR_FILE", help="paired chest X-ray (DICOM, PNG, JPEG)")
    p.add_argument("--models", metavar="DIR", help="model bundle folder (default: the shipped "
                   "bundle, or the one chosen in settings)")
    p.add_argument("--demo", action="store_true", help="open the bundled demo case (ECG + CXR)")
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


def demo_case() -> tuple[Path, Path | None]:
    """(ECG, CXR or None) of the bundled demo case in resources/demo/.

    Falls back to the PTB-XL sample of a source checkout (logged) when no demo case
    is installed.

    Raises:
        FileNotFoundError: neither exists.
    """
    from engine.resources import demo_dir
    d = demo_dir()
    if d.is_dir():
        ecgs = sorted(f for f in d.iterdir() if f.suffix.lower() in (".hea",))
        ecgs += sorted(f for f in d.iterdir() if f.suffix.lower() == ".dcm"
                       and "cxr" not in f.name.lower())
        cxrs = sorted(f for f in d.iterdir() if f.suffix.lower() in CXR_SUFFIXES
                      and ("cxr" in f.name.lower() or f.suffix.lower() != ".dcm"))
        if ecgs:
            return ecgs[0], (cxrs[0] if cxrs else None)
    repo = Path(__file__).resolve().parent.parent
    ecg = repo / "tests" / "data" / "ecg" / "wfdb" / "ptbxl" / "00001_lr.hea"
    cxr = repo / "tests" / "data" / "cxr" / "png" / "nih" / "00000001_000.png"
    if ecg.is_file():
        log.warning("no demo case in %s; showing the PTB-XL sample instead", d)
        return ecg, (cxr if cxr.is_file() else None)
    raise FileNotFoundError(f"No demo case found in {d}")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    if args.self_test:  # before any Qt import: the self-test imports in the safe order itself
        from app.selftest import main as self_test
        return self_test(args.models, args.demo_dir, args.report)
    # engine (and onnxruntime) before Qt: the safe import order for frozen builds
    import engine.inference  # noqa: F401
    from app.qt import QtCore, QtWidgets
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
    ctl = Controller(window, models_dir=args.models)
    ecg, cxr = (Path(args.ecg) if args.ecg else None), (Path(args.cxr) if args.cxr else None)
    if args.demo:
        try:
            ecg, demo_cxr = demo_case()
            cxr = cxr or demo_cxr
        except FileNotFoundError as exc:
            ctl.show_error("No demo case", str(exc))
    window.show()
    ctl.load_models()
    if ecg is not None:
        ctl.open_ecg(ecg)
    if cxr is not None:
        ctl.open_cxr(cxr)
    app.aboutToQuit.connect(ctl.save_settings)
    if args.quit_when_ready:
        def done() -> None:
            app.processEvents()
            window.ecg_view.grab()  # force a real paint of the ECG
            n = len(window.ecg_view.traces())
            sys.stdout.write(f"READY {time.perf_counter() - _T0:.3f} s traces={n} "
                             f"predictions={len(ctl.ecg_predictions)}\n")
            sys.stdout.flush()
            QtCore.QTimer.singleShot(0, app.quit)
        ctl.ready.connect(done)
        ctl.error_shown.connect(lambda t, m: (sys.stderr.write(f"ERROR {t}: {m}\n"),
                                              app.exit(2)))
    return int(app.exec())


if __name__ == "__main__":
    sys.exit(main())
