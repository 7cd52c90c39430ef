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
import time
import traceback
from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable

from app.selftest_checks import (Check, Context, check_bundle, check_dicom_decoders,
                                 check_imports, check_inference, check_resources, check_window,
                                 resolve_case_file)

__all__ = ["run_self_test", "run_checks", "default_report_path", "resolve_case_file", "main"]

log = logging.getLogger(__name__)

APP_NAME = "cromotex-review"
REPORT_NAME = "self-test.json"
#: Environment variable naming a demo-case folder to use instead of `resources/demo/`.
DEMO_DIR_ENV = "CROMOTEX_DEMO_DIR"
EXIT_OK, EXIT_FAILED, EXIT_CRASHED = 0, 1, 2


def default_report_path() -> Path:
    """`<user log dir>/self-test.json` (appdirs), e.g. ~/.cache/cromotex-review/log/ on Linux."""
    import appdirs
    return Path(appdirs.user_log_dir(APP_NAME, appauthor=False)) / REPORT_NAME


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

# ---------------------------------------------------------------- runner
def run_checks(models_dir: str | Path | None = None,
               demo_dir: str | Path | None = None) -> list[Check]:
    """Run every check (see the module docstring) and return them, in order."""
    from engine.resources import demo_dir as shipped_demo_dir
    demo = Path(demo_dir or os.environ.get(DEMO_DIR_ENV) or shipped_demo_dir())
    ctx = Context(models_dir=Path(models_dir) if models_dir else None, demo_dir=demo)
    checks: list[Check] = []
    _run_check(checks, "imports", check_imports)
    _run_check(checks, "resources", lambda c: check_resources(ctx, c), requires=("imports",))
    _run_check(checks, "dicom_decoders", lambda c: check_dicom_decoders(ctx, c),
               requires=("imports",))
    _run_check(checks, "bundle", lambda c: check_bundle(ctx, c), requires=("imports",))
    _run_check(checks, "inference_ecg", lambda c: check_inference(ctx, c, "ecg"),
               requires=("bundle",))
    _run_check(checks, "inference_cxr", lambda c: check_inference(ctx, c, "cxr"),
               requires=("bundle",))
    _run_check(checks, "window", lambda c: check_window(ctx, c), requires=("imports", "bundle"))
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
