"""Startup benchmark: wall time from process start to a drawn ECG with its AI
findings, for demo case 1 of resources/demo/ (`cromotex-review --demo`: the ECG and
its paired CXR), offscreen. There is no substitute case: without resources/demo/ the
app exits with "No demo case" and this benchmark fails.

    QT_QPA_PLATFORM=offscreen python3 bench/startup.py [--runs 5] [--models DIR]
        [--checkout /work/main --checkout .] [--no-bare]
    QT_QPA_PLATFORM=offscreen python3 bench/startup.py --screenshots docs/screenshots

With several --checkout, the variants (and the bare PySide6 + pyqtgraph window, the floor)
are run alternately, and the load average is printed beside the medians.

Bytecode: an installed app runs from compiled bytecode (pip and the frozen build compile
it). A development machine with PYTHONDONTWRITEBYTECODE=1 (this one) compiles every
checkout module (~90 of app/ and engine/) from source at each launch, which the bare
window, all site-packages, does not. So by default the children write and use bytecode
under a temporary PYTHONPYCACHEPREFIX (nothing is written into the checkouts) after one
untimed warm-up launch per variant; --no-bytecode-cache keeps the environment as it is.

Each run is a fresh process (`python -m app.main --demo --quit-when-ready`); the
figure is measured by this parent from `Popen` to the child's READY line, which the
child prints after the ECG view has painted and the ECG predictions are shown. A
checkout that measures the ECG after showing it (issue 19 item 3) then prints a
MEASURED line when the header shows the measurements: that time is reported too (an
older checkout measures with the read, before READY: its measurements come with READY).
Without an installed bundle (resources/models/) it builds the tiny test bundle and
says so: such a figure excludes the real models' load time.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _models(arg: str | None) -> tuple[str | None, str]:
    if arg:
        return arg, "given"
    sys.path.insert(0, str(REPO))
    from engine.bundle import load_bundle
    from engine.errors import BundleError
    try:
        return str(load_bundle(None).directory), "shipped bundle"
    except BundleError:
        sys.path.insert(0, str(REPO / "tests" / "engine"))
        from bundle_factory import make_bundle
        return str(make_bundle(Path(tempfile.mkdtemp()) / "models")), "TINY TEST bundle (no shipped bundle)"


#: The floor: a bare PySide6 + pyqtgraph window drawing 12 x 5000 samples, no app code.
BARE = """
import sys
import numpy as np
import pyqtgraph as pg
from PySide6 import QtWidgets
app = QtWidgets.QApplication([])
w = pg.PlotWidget()
for i in range(12):
    w.plot(np.sin(np.arange(5000) / 50.0) + 3 * i)
w.resize(1500, 860)
w.show()
app.processEvents()
w.grab()
print("READY bare window", flush=True)
"""


def run_once(models: str | None, checkout: Path = REPO, bare: bool = False,
             pycache: str | None = None) -> tuple[float, str, float | None]:
    """(seconds to READY, the READY line, seconds to MEASURED or None without that line).
    `pycache`: bytecode folder (PYTHONPYCACHEPREFIX) the child writes and reads; None:
    the environment's setting."""
    env = {**os.environ, "QT_QPA_PLATFORM": os.environ.get("QT_QPA_PLATFORM", "offscreen"),
           "CROMOTEX_REVIEW_CONFIG_DIR": tempfile.mkdtemp(),
           "PYTHONPATH": str(checkout)}  # that checkout's code, not the editable install's
    if pycache is not None:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = pycache
    cmd = [sys.executable, "-m", "app.main", "--demo", "--quit-when-ready"]
    if models:
        cmd += ["--models", models]
    if bare:
        cmd = [sys.executable, "-c", BARE]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=checkout, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    for line in proc.stdout:
        if line.startswith("READY"):
            elapsed = time.perf_counter() - t0
            measured = None
            for later in proc.stdout:  # until MEASURED, or the end of a checkout without it
                if later.startswith("MEASURED"):
                    measured = time.perf_counter() - t0
                    break
            proc.wait(timeout=60)
            return elapsed, line.strip(), measured
    err = proc.stderr.read()
    proc.wait()
    raise RuntimeError(f"the app did not become ready (exit {proc.returncode}): {err[-2000:]}")


def screenshots(out_dir: Path, models: str | None) -> list[Path]:
    """Grab this checkout's window (1600 x 900, offscreen) on demo case 1 at `ready` (the
    ECG drawn, its findings shown, the header saying "measuring…") and once the
    measurements are shown: startup_measuring.png, startup_measured.png in `out_dir`."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    os.environ["CROMOTEX_REVIEW_CONFIG_DIR"] = tempfile.mkdtemp()
    sys.path.insert(0, str(REPO))
    import engine.inference  # noqa: F401  (engine before Qt, as app.main)
    from PIL import Image

    from app.controller import Controller
    from app.main_window import MainWindow
    from app.qt import QtCore, QtWidgets, quiet_offscreen_noise

    quiet_offscreen_noise()
    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication([])
    window = MainWindow()
    ctl = Controller(window, models_dir=models)
    window.resize(1600, 900)
    window.show()
    saved: list[Path] = []

    def grab(name: str) -> None:
        app.processEvents()
        tmp, path = out_dir / f".{name}", out_dir / name
        window.grab().save(str(tmp))
        Image.open(tmp).convert("RGB").quantize(colors=128).save(path, optimize=True)
        tmp.unlink()
        saved.append(path)
        print(f"saved {path} (measuring={ctl.measuring})", flush=True)

    # 50 ms after `ready` (the panels' layout settled; the measurement starts at 100 ms)
    ctl.ready.connect(lambda: None if saved else QtCore.QTimer.singleShot(
        50, lambda: grab("startup_measuring.png")))
    ctl.measured.connect(lambda _m: (grab("startup_measured.png"), app.quit()))
    ctl.load_models()
    if not ctl.open_demo(1):
        raise RuntimeError(f"no demo case: {ctl.last_error}")
    QtCore.QTimer.singleShot(120000, app.quit)
    app.exec()
    ctl.shutdown()
    return saved


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--models", help="bundle folder (default: shipped, else a tiny test bundle)")
    ap.add_argument("--checkout", type=Path, action="append",
                    help="checkout(s) to start the app from, run alternately (e.g. /work/main and "
                         "this one); default: this one")
    ap.add_argument("--no-bare", action="store_true", help="skip the bare PySide6 + pyqtgraph window")
    ap.add_argument("--no-bytecode-cache", action="store_true",
                    help="run as the environment says (PYTHONDONTWRITEBYTECODE=1: every launch "
                         "compiles the checkout's modules), no warm-up launch")
    ap.add_argument("--screenshots", type=Path, metavar="DIR",
                    help="only save this checkout's window at 'measuring…' and after, to DIR")
    args = ap.parse_args(argv)
    models, what = _models(args.models)
    if args.screenshots:
        return 0 if len(screenshots(args.screenshots, models)) == 2 else 1
    checkouts = [c.resolve() for c in (args.checkout or [REPO])]
    names = [str(c) for c in checkouts] + ([] if args.no_bare else ["bare PySide6 + pyqtgraph window"])
    times: dict[str, list[float]] = {n: [] for n in names}
    measured: dict[str, list[float]] = {n: [] for n in names}
    pycache = None if args.no_bytecode_cache else tempfile.mkdtemp(prefix="startup-pycache-")
    if pycache is not None:
        for name in names:  # untimed: writes each checkout's bytecode, as an install has it
            bare = name.startswith("bare")
            run_once(models, REPO if bare else Path(name), bare=bare, pycache=pycache)
    print("bytecode: " + ("as the environment says (PYTHONDONTWRITEBYTECODE="
                          f"{os.environ.get('PYTHONDONTWRITEBYTECODE', '')!r})" if pycache is None else
                          f"compiled, in {pycache} (one untimed warm-up launch per variant)"))
    load = " ".join(f"{v:.2f}" for v in os.getloadavg())
    print(f"load average (1, 5, 15 min) at the start: {load}, {os.cpu_count()} CPUs", flush=True)
    for i in range(args.runs):
        for name in names:  # alternately, so that load changes hit every variant alike
            bare = name.startswith("bare")
            t, line, m = run_once(models, REPO if bare else Path(name), bare=bare, pycache=pycache)
            times[name].append(t)
            if m is not None:
                measured[name].append(m)
            print(f"run {i + 1} {name}: {t:.2f} s" + (f", measurements shown {m:.2f} s" if m else "")
                  + f"  ({line})", flush=True)
    print(f"load average (1, 5, 15 min) at the end: {' '.join(f'{v:.2f}' for v in os.getloadavg())}, "
          f"{os.cpu_count()} CPUs")
    for name, ts in times.items():
        ms = measured[name]
        after = (f"; measurements shown (MEASURED) median {statistics.median(ms):.2f} s" if ms else
                 "; measurements computed with the read, before READY (no MEASURED line)")
        print(f"{name}: startup to drawn ECG with predictions ({what}) median {statistics.median(ts):.2f} s,"
              f" min {min(ts):.2f} s, max {max(ts):.2f} s over {len(ts)} runs{after}"
              if not name.startswith("bare") else
              f"{name}: median {statistics.median(ts):.2f} s, min {min(ts):.2f} s over {len(ts)} runs")
    print("target < 1.5 s on an idle 2-core machine (on a shared machine the spread is load: "
          "quote medians measured in the same run)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
