"""`cromotex-review --self-test`: verify an installation end to end, write a JSON report.

Checks, in this order (each one is timed and recorded; a failure never stops the
report from being written):

1. ``imports``: engine, numpy, onnxruntime, pydicom first, then PySide6 and
   pyqtgraph (the safe order for frozen builds: onnxruntime's native libraries
   load before Qt's).
2. ``resources``: where `resources/` is (source checkout or PyInstaller's
   ``sys._MEIPASS``), what the demo folder holds.
3. ``dicom_decoders``: pydicom finds its pylibjpeg plugins (found through entry
   points, which a frozen build must carry), and decodes a JPEG Baseline and a
   JPEG 2000 image made here with Pillow through them, pixel-exact; plus every
   compressed DICOM in the demo folder, through `engine.io.read_cxr`.
4. ``bundle``: `engine.bundle.load_bundle` (hashes, schema, preprocessing constants).
5. ``inference_ecg`` / ``inference_cxr``: every reference case of the bundle's
   ``reference_outputs.json`` (docs/bundle.md) read from the demo folder, scored
   with `engine.inference.Predictor` and compared with the stored probabilities
   within the file's ``atol``.
6. ``window``: the main window opened offscreen on the first reference ECG (or
   the first demo ECG); waits until the ECG is drawn and scored, then reads the
   plotted curve data: the 12 standard leads are drawn, each curve's samples are
   finite and equal the record's, and the window's ECG probabilities equal the
   headless ones; the review exports to a PDF.

Report (JSON): ``{"ok", "exit_code", "started_utc", "duration_s", "frozen",
"executable", "models_dir", "demo_dir", "versions", "checks": [{"name", "ok",
"error", "duration_s", "details"}]}``. Default location:
``appdirs.user_log_dir("cromotex-review")/self-test.json`` (windowed builds have
no stdout).
"""

from __future__ import annotations

import datetime as _dt
import faulthandler
import json
import logging
import os
import platform
import sys
import tempfile
import time
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

log = logging.getLogger(__name__)

APP_NAME = "cromotex-review"
REPORT_NAME = "self-test.json"
#: Environment variable naming a demo-case folder to use instead of `resources/demo/`.
DEMO_DIR_ENV = "CROMOTEX_DEMO_DIR"
#: Seconds the window check waits for the ECG to be drawn and scored.
WINDOW_TIMEOUT_S = 60.0
EXIT_OK, EXIT_FAILED, EXIT_CRASHED = 0, 1, 2


def default_report_path() -> Path:
    """`<user log dir>/self-test.json` (appdirs), e.g. ~/.cache/cromotex-review/log/ on Linux."""
    import appdirs
    return Path(appdirs.user_log_dir(APP_NAME, appauthor=False)) / REPORT_NAME


@dataclass
class Check:
    """One self-test step. `error` is a message (with the exception type) when not ok."""

    name: str
    ok: bool = False
    error: str | None = None
    duration_s: float = 0.0
    details: dict[str, Any] = field(default_factory=dict)


class SelfTestFailure(Exception):
    """A check's expectation did not hold (the message says which and by how much)."""


@dataclass
class _Context:
    models_dir: Path | None
    demo_dir: Path
    predictor: Any = None
    bundle: Any = None


def _run_check(checks: list[Check], name: str, fn: Callable[[Check], None],
               requires: tuple[str, ...] = ()) -> Check:
    check = Check(name)
    checks.append(check)
    failed = [c.name for c in checks if c.name in requires and not c.ok]
    if failed:
        check.error = f"skipped: depends on failed check(s) {', '.join(failed)}"
        return check
    t0 = time.perf_counter()
    try:
        fn(check)
        check.ok = True
    except Exception as exc:  # every failure becomes a report entry, never a crash
        check.error = f"{type(exc).__name__}: {exc}"
        check.details["traceback"] = traceback.format_exc(limit=8)
        log.error("self-test check %s failed: %s", name, check.error)
    check.duration_s = round(time.perf_counter() - t0, 4)
    return check


# ---------------------------------------------------------------- checks
def _check_imports(check: Check) -> None:
    import numpy
    import onnxruntime
    import pydicom
    import engine
    import engine.inference  # noqa: F401  (engine and onnxruntime before Qt)
    import engine.io  # noqa: F401
    from app.qt import QtCore, pg
    check.details = {"engine": engine.__version__, "numpy": numpy.__version__,
                     "onnxruntime": onnxruntime.__version__,
                     "onnxruntime_providers": onnxruntime.get_available_providers(),
                     "pydicom": pydicom.__version__, "qt": QtCore.qVersion(),
                     "pyqtgraph": pg.__version__, "python": platform.python_version()}


def _check_resources(ctx: _Context, check: Check) -> None:
    from engine.resources import resource_root
    root = resource_root()
    check.details = {"frozen": bool(getattr(sys, "frozen", False)), "resource_root": str(root),
                     "demo_dir": str(ctx.demo_dir),
                     "demo_files": sorted(p.name for p in ctx.demo_dir.iterdir())
                     if ctx.demo_dir.is_dir() else []}
    if not root.is_dir():
        raise SelfTestFailure(f"resources folder {root} is missing: the installation is incomplete")
    if not ctx.demo_dir.is_dir():
        raise SelfTestFailure(f"demo folder {ctx.demo_dir} is missing")


def _encapsulated(pixels: Any, uid: Any, fmt: str, **save_kw: Any) -> Any:
    """A minimal DICOM dataset holding `pixels` (uint8 `[H, W]`) compressed by Pillow."""
    import io
    from PIL import Image
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.encaps import encapsulate
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format=fmt, **save_kw)
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = uid
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.PixelData = encapsulate([buf.getvalue()])
    ds["PixelData"].VR = "OB"
    return ds


def _check_dicom_decoders(ctx: _Context, check: Check) -> None:
    import numpy as np
    import pydicom
    from pydicom.pixels import get_decoder, pixel_array
    from pydicom.uid import JPEG2000Lossless, JPEGBaseline8Bit, RLELossless
    plugins = {}
    for uid in (JPEGBaseline8Bit, JPEG2000Lossless, RLELossless):
        plugins[uid.name] = list(get_decoder(uid).available_plugins)
    check.details["plugins"] = plugins
    missing = [name for name, found in plugins.items() if "pylibjpeg" not in found]
    if missing:
        raise SelfTestFailure(f"pydicom finds no pylibjpeg decoder for {', '.join(missing)}: the "
                              "pylibjpeg plugins (or their entry-point metadata) are not installed")
    ramp = (np.add.outer(np.arange(32), np.arange(32)) * 4).astype(np.uint8)  # [32, 32], 0..248
    for uid, fmt, kw in ((JPEGBaseline8Bit, "JPEG", {"quality": 95}),
                         (JPEG2000Lossless, "JPEG2000", {"irreversible": False})):
        decoded = pixel_array(_encapsulated(ramp, uid, fmt, **kw), decoding_plugin="pylibjpeg")
        err = int(np.abs(decoded.astype(np.int32) - ramp).max())
        check.details[f"max_error_{fmt}"] = err
        if decoded.shape != ramp.shape or err > 2:
            raise SelfTestFailure(f"pylibjpeg decoded a {fmt} image to shape {decoded.shape} with "
                                  f"max error {err} (expected {ramp.shape}, <= 2)")
    demo_compressed = []
    if ctx.demo_dir.is_dir():
        from engine.io import read_cxr
        for path in sorted(ctx.demo_dir.rglob("*.dcm")):
            ds = pydicom.dcmread(path, stop_before_pixels=True)
            syntax = ds.file_meta.get("TransferSyntaxUID")
            if syntax is None or not syntax.is_compressed or "waveform" in str(
                    ds.get("SOPClassUID", "")).lower():
                continue
            image = read_cxr(path)
            demo_compressed.append({"file": path.name, "shape": list(image.pixels.shape),
                                    "transfer_syntax": syntax.name})
    check.details["demo_compressed_dicoms"] = demo_compressed


def _check_bundle(ctx: _Context, check: Check) -> None:
    from engine.bundle import load_bundle
    ctx.bundle = load_bundle(ctx.models_dir)
    ref = ctx.bundle.reference
    check.details = {**ctx.bundle.describe(), "directory": str(ctx.bundle.directory),
                     "reference_cases": len(ref["cases"]) if ref else 0}
    if not ref or not ref["cases"]:
        raise SelfTestFailure(f"the bundle {ctx.bundle.directory} has no reference outputs "
                              "(reference_outputs.json) to check inference against")


def resolve_case_file(rel: str, demo_dir: Path) -> Path:
    """The file a reference case names (docs/bundle.md: e.g. "resources/demo/x.hea").

    Looked up, in order: as an absolute path; below `demo_dir` at the path it has
    below `resources/demo/`; in `demo_dir` by file name; relative to the folder
    holding `resources/` (source checkout or frozen app); relative to the working
    directory; anywhere under `demo_dir` by file name.

    Raises:
        FileNotFoundError: none exists.
    """
    from engine.resources import resource_root
    p = Path(rel)
    if p.is_absolute():
        candidates = [p]
    else:
        below_demo = Path(*p.parts[2:]) if p.parts[:2] == ("resources", "demo") else None
        candidates = ([demo_dir / below_demo] if below_demo else []) + [
            demo_dir / p.name, resource_root().parent / p, Path.cwd() / p]
    for c in candidates:
        if c.is_file():
            return c
    if demo_dir.is_dir():  # a demo folder holding the cases in sub-folders
        found = sorted(demo_dir.rglob(p.name))
        if found:
            return found[0]
    raise FileNotFoundError(f"reference case file {rel!r} not found (looked in "
                            f"{', '.join(str(c.parent) for c in candidates)})")


def _compare(found: dict[str, float], expected: dict[str, float], atol: float,
             what: str) -> dict[str, float]:
    diffs = {}
    for p, want in expected.items():
        if p not in found:
            raise SelfTestFailure(f"{what}: no prediction for {p}")
        diffs[p] = abs(float(found[p]) - float(want))
    bad = {p: d for p, d in diffs.items() if not d <= atol}
    if bad:
        raise SelfTestFailure(f"{what}: probabilities differ from the reference outputs by "
                              + ", ".join(f"{p} {d:.2e}" for p, d in bad.items())
                              + f" (tolerance {atol:g})")
    return diffs


def _cases(ctx: _Context, key: str) -> list[dict]:
    return [c for c in ctx.bundle.reference["cases"] if c.get(key)]


def _predictor(ctx: _Context) -> Any:
    if ctx.predictor is None:
        from engine.inference import Predictor
        ctx.predictor = Predictor(ctx.bundle)
    return ctx.predictor


def _check_inference(ctx: _Context, check: Check, modality: str) -> None:
    from engine.io import read_cxr, read_ecg
    key, probs_key = (("ecg", "probabilities") if modality == "ecg"
                      else ("cxr", "cxr_probabilities"))
    cases = _cases(ctx, key)
    atol = float(ctx.bundle.reference.get("atol", 1e-5))
    if not cases:
        raise SelfTestFailure(f"reference_outputs.json has no {key.upper()} case")
    predictor = _predictor(ctx)
    results = []
    for case in cases:
        path = resolve_case_file(case[key], ctx.demo_dir)
        if modality == "ecg":
            preds = predictor.predict_ecg(read_ecg(path))
        else:
            preds = predictor.predict_cxr(read_cxr(path))
        found = {p: pred.probability for p, pred in preds.items()}
        diffs = _compare(found, case[probs_key], atol, path.name)
        results.append({"file": path.name, "probabilities": found,
                        "max_abs_diff": max(diffs.values()) if diffs else 0.0})
    check.details = {"atol": atol, "cases": results, "precision": predictor.precision}


def _window_ecg(ctx: _Context) -> Path:
    if ctx.bundle is not None and ctx.bundle.reference:
        for case in _cases(ctx, "ecg"):
            return resolve_case_file(case["ecg"], ctx.demo_dir)
    hea = sorted(ctx.demo_dir.glob("*.hea")) if ctx.demo_dir.is_dir() else []
    if not hea:
        raise SelfTestFailure(f"no demo ECG to open in {ctx.demo_dir}")
    return hea[0]


def _check_window(ctx: _Context, check: Check) -> None:
    import numpy as np
    from app.qt import QtCore, QtWidgets
    from app.controller import Controller
    from app.main_window import MainWindow
    from app.settings import Settings
    from engine.constants import LEADS
    ecg = _window_ecg(ctx)
    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication(sys.argv[:1])
    check.details["qt_platform"] = app.platformName()
    errors: list[tuple[str, str]] = []
    with tempfile.TemporaryDirectory(prefix="cromotex-selftest-") as tmp:
        window = MainWindow()
        models = str(ctx.bundle.directory) if ctx.bundle is not None else (
            str(ctx.models_dir) if ctx.models_dir else None)
        # fresh settings in a temporary folder: the user's own settings stay untouched
        ctl = Controller(window, settings=Settings(), models_dir=models,
                         error_presenter=lambda t, m: errors.append((t, m)),
                         settings_dir=Path(tmp))
        loop = QtCore.QEventLoop()
        state = {"ready": False}

        def on_ready() -> None:
            state["ready"] = True
            loop.quit()

        ctl.ready.connect(on_ready)
        ctl.error_shown.connect(lambda *_: loop.quit())
        QtCore.QTimer.singleShot(int(WINDOW_TIMEOUT_S * 1000), loop.quit)
        t0 = time.perf_counter()
        window.resize(1400, 860)
        window.show()
        ctl.load_models()
        ctl.open_ecg(ecg)
        loop.exec()
        check.details["seconds_to_ready"] = round(time.perf_counter() - t0, 3)
        try:
            if errors:
                raise SelfTestFailure(f"the window showed an error: {errors[0][0]}: {errors[0][1]}")
            if not state["ready"]:
                raise SelfTestFailure(f"the ECG {ecg.name} was not drawn and scored within "
                                      f"{WINDOW_TIMEOUT_S:.0f} s")
            app.processEvents()
            window.ecg_view.grab()  # a real paint of the ECG paper
            record = ctl.record
            traces = window.ecg_view.traces()
            drawn = set()
            for panel, trace in traces:
                x, y = trace.getData()
                t_orig, y_orig = trace.original()
                if x is None or len(x) < 2 or not np.isfinite(y).all():
                    raise SelfTestFailure(f"lead {panel.lead}: the plotted curve holds "
                                          f"{0 if x is None else len(x)} points or non-finite values")
                i0 = int(round(t_orig[0] * record.fs))
                want = record.lead(panel.lead)[i0:i0 + len(y_orig)]
                if panel.invert:
                    want = -want
                if not np.allclose(y_orig, want, atol=1e-6):
                    raise SelfTestFailure(f"lead {panel.lead}: plotted samples differ from the record")
                drawn.add(panel.lead)
            check.details.update({"ecg": ecg.name, "traces": len(traces),
                                  "leads_drawn": [lead for lead in LEADS if lead in drawn]})
            missing = [lead for lead in LEADS if lead not in drawn]
            if missing:
                raise SelfTestFailure(f"leads not drawn: {', '.join(missing)}")
            if ctl.predictor is None:
                raise SelfTestFailure(f"the window could not load the models: {ctl.models_error}")
            window_probs = {p: pred.probability for p, pred in ctl.ecg_predictions.items()}
            check.details["probabilities"] = window_probs
            if not window_probs:
                raise SelfTestFailure("the window shows no ECG predictions")
            if ctx.bundle is not None:
                from engine.io import read_ecg
                headless = _predictor(ctx).predict_ecg(read_ecg(ecg))
                _compare(window_probs, {p: v.probability for p, v in headless.items()}, 1e-6,
                         "window vs headless")
            pdf = ctl.export_pdf(Path(tmp) / "review.pdf")  # QPdfWriter, fonts, paper
            head = pdf.read_bytes()[:5]
            check.details["pdf_bytes"] = pdf.stat().st_size
            if head != b"%PDF-" or pdf.stat().st_size < 10_000:
                raise SelfTestFailure(f"the PDF export wrote {pdf.stat().st_size} bytes "
                                      f"starting {head!r}, not a review PDF")
        finally:
            ctl.pool.waitForDone(10000)
            window.close()
            window.deleteLater()
            app.processEvents()


# ---------------------------------------------------------------- runner
def run_checks(models_dir: str | Path | None = None,
               demo_dir: str | Path | None = None) -> list[Check]:
    """Run every check (see the module docstring) and return them, in order."""
    from engine.resources import demo_dir as shipped_demo_dir
    demo = Path(demo_dir or os.environ.get(DEMO_DIR_ENV) or shipped_demo_dir())
    ctx = _Context(models_dir=Path(models_dir) if models_dir else None, demo_dir=demo)
    checks: list[Check] = []
    _run_check(checks, "imports", _check_imports)
    _run_check(checks, "resources", lambda c: _check_resources(ctx, c), requires=("imports",))
    _run_check(checks, "dicom_decoders", lambda c: _check_dicom_decoders(ctx, c),
               requires=("imports",))
    _run_check(checks, "bundle", lambda c: _check_bundle(ctx, c), requires=("imports",))
    _run_check(checks, "inference_ecg", lambda c: _check_inference(ctx, c, "ecg"),
               requires=("bundle",))
    _run_check(checks, "inference_cxr", lambda c: _check_inference(ctx, c, "cxr"),
               requires=("bundle",))
    _run_check(checks, "window", lambda c: _check_window(ctx, c), requires=("imports", "bundle"))
    return checks


def _versions() -> dict[str, str]:
    try:
        import engine
        return {"app": engine.__version__, "python": platform.python_version(),
                "platform": platform.platform()}
    except Exception:  # noqa: BLE001  (the report must be written whatever failed)
        return {"python": platform.python_version(), "platform": platform.platform()}


def write_report(path: Path, report: dict[str, Any]) -> Path:
    """Write `report` as indented JSON to `path` (parents created); return the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(report, indent=1, default=str), encoding="utf-8")
    tmp.replace(path)
    return path


def run_self_test(models_dir: str | Path | None = None, demo_dir: str | Path | None = None,
                  report_path: str | Path | None = None) -> tuple[int, dict[str, Any], Path]:
    """Run the self-test; write the JSON report; return (exit code, report, report path).

    Exit code 0 when every check passed, 1 when a check failed, 2 when the runner
    itself failed (the report then holds the traceback). A native crash (segfault)
    is dumped by `faulthandler` to `<report>.crash.txt`.
    """
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    path = Path(report_path) if report_path else default_report_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    started = _dt.datetime.now(_dt.timezone.utc)
    t0 = time.perf_counter()
    report: dict[str, Any] = {
        "ok": False, "exit_code": EXIT_CRASHED, "started_utc": started.isoformat(timespec="seconds"),
        "frozen": bool(getattr(sys, "frozen", False)), "executable": sys.executable,
        "models_dir": str(models_dir) if models_dir else "(shipped bundle)",
        "demo_dir": str(demo_dir or os.environ.get(DEMO_DIR_ENV) or "(shipped demo cases)"),
        "versions": _versions(), "checks": []}
    crash_file = path.with_name(path.name + ".crash.txt")
    was_enabled = faulthandler.is_enabled()
    with open(crash_file, "w", encoding="utf-8") as crash:
        faulthandler.enable(crash)
        try:
            checks = run_checks(models_dir, demo_dir)
            report["checks"] = [asdict(c) for c in checks]
            report["ok"] = all(c.ok for c in checks)
            report["exit_code"] = EXIT_OK if report["ok"] else EXIT_FAILED
            report["failed"] = [c.name for c in checks if not c.ok]
        except BaseException as exc:  # the report is written whatever happens
            report["error"] = f"{type(exc).__name__}: {exc}"
            report["traceback"] = traceback.format_exc()
        finally:
            faulthandler.disable()
            if was_enabled and sys.__stderr__ is not None:
                faulthandler.enable(sys.__stderr__)
            report["duration_s"] = round(time.perf_counter() - t0, 3)
            write_report(path, report)
    crash_file.unlink(missing_ok=True)
    return int(report["exit_code"]), report, path


def summary(report: dict[str, Any], path: Path) -> str:
    """A few lines for a console: each check's ok/FAIL, then where the report is."""
    lines = [f"{'ok  ' if c['ok'] else 'FAIL'} {c['name']:<15} {c['duration_s']:7.2f} s"
             + (f"  {c['error']}" if c["error"] else "") for c in report.get("checks", [])]
    if report.get("error"):
        lines.append(f"self-test crashed: {report['error']}")
    lines.append(f"self-test {'passed' if report['ok'] else 'FAILED'}; report: {path}")
    return "\n".join(lines)


def main(models_dir: str | None, demo_dir: str | None, report_path: str | None) -> int:
    """Entry point for `cromotex-review --self-test`: run, write the report, print a summary
    where there is a console (windowed builds have none)."""
    code, report, path = run_self_test(models_dir, demo_dir, report_path)
    stream = sys.stdout
    if stream is not None:
        try:
            stream.write(summary(report, path) + "\n")
            stream.flush()
        except (OSError, ValueError):
            pass
    return code
