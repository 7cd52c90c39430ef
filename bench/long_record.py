"""Peak memory and time of `cromotex predict` on a long (Holter-length) WFDB record.

Writes a synthetic N-hour 12-lead format-16 record (default 24 h at 500 Hz: 43.2 M
samples per lead, 1.04 GB) into a temporary folder (a repeating real 10 s ECG from
tests/data, so the model sees ECG-like windows), then runs `python3 -m engine.cli
predict` on it in a child process under `/usr/bin/time -v` and prints wall time, peak
RSS (maximum resident set size) and the result's first fields. Also times opening the
record and reading its first 10 s page and a 2000-point overview with `open_ecg`.

    nice python3 bench/long_record.py [--hours 24] [--fs 500] [--keep DIR] [--app]
        [--checkout /work/main --checkout .]

With --app the record is also opened in the review window (offscreen, in a child, after
its models are loaded): time to the first page painted, to overview + findings done, one page turn, peak RSS.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine.io import read_ecg  # noqa: E402
from engine.io.windowed import open_ecg  # noqa: E402

LEADS = ["I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6"]


def write_long_record(folder: Path, hours: float, fs: int, name: str = "holter") -> Path:
    """A format-16 WFDB record of `hours` at `fs` Hz written in 10 s blocks (bounded memory)."""
    seed = read_ecg(ROOT / "tests/data/ecg/wfdb/ludb/1.hea")  # 12 x 5000 at 500 Hz, mV
    block = np.round(seed.signal[:, :int(10 * fs)] * 1000).astype("<i2").T.copy()  # uV, [n, 12]
    n_blocks = int(hours * 3600 // 10)
    with open(folder / f"{name}.dat", "wb") as f:
        for _ in range(n_blocks):
            f.write(block.tobytes())
    n = n_blocks * block.shape[0]
    lines = [f"{name} 12 {fs} {n}"]
    checksums = (block.astype(np.int64).sum(axis=0) * n_blocks) % 65536
    checksums = np.where(checksums >= 32768, checksums - 65536, checksums)
    lines += [f"{name}.dat 16 1000/mV 16 0 {block[0, i]} {checksums[i]} 0 {lead}"
              for i, lead in enumerate(LEADS)]
    (folder / f"{name}.hea").write_text("\n".join(lines) + "\n")
    return folder / f"{name}.hea"


def run_predict(header: Path, cwd: Path) -> dict:
    cmd = ["/usr/bin/time", "-v", sys.executable, "-m", "engine.cli", "predict", str(header)]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    peak_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr).group(1))
    line = proc.stdout.strip().splitlines()[0] if proc.stdout.strip() else "{}"
    out = json.loads(line)
    return {"wall_s": wall, "peak_mb": peak_kb / 1024, "rc": proc.returncode, "ok": out.get("ok"),
            "error": out.get("error"), "windows": len((out.get("preprocessing") or {}).get(
                "window_starts_s", [])), "stderr_tail": proc.stderr.strip().splitlines()[:2]}


APP_CHILD = r"""
import os, resource, sys, time
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, {root!r})
t0 = time.perf_counter()
from app.qt import QtWidgets
qapp = QtWidgets.QApplication([])
from app.controller import Controller
from app.main_window import MainWindow
w = MainWindow()
c = Controller(w, error_presenter=lambda t, m: print("ERROR", t, m, file=sys.stderr))
w.resize(1500, 860); w.show()
ready = []
c.models_ready.connect(lambda ok: ready.append(ok))
c.load_models()
while not ready and time.perf_counter() - t0 < 120:  # the app is up, its models loaded
    qapp.processEvents(); time.sleep(0.01)
t_open = time.perf_counter()
c.open_ecg({path!r})
first = None
preds = {{}}
c.ecg_predicted.connect(lambda p: preds.update(p))
while time.perf_counter() - t_open < 120:
    qapp.processEvents()
    view = getattr(w, "long_view", None)
    if first is None and view is not None:
        qapp.processEvents(); w.grab()  # the first page painted
        first = time.perf_counter() - t_open
    if view is not None and view.strip.overview is not None and preds:
        break
    time.sleep(0.005)
done = time.perf_counter() - t_open
if view is not None:
    for _ in range(20):
        view.page(+1); qapp.processEvents()
    t_page = time.perf_counter(); view.page(+1); w.grab(); t_page = time.perf_counter() - t_page
print(f"APP first_page_s={{first}} all_done_s={{done:.2f}} page_turn_ms={{t_page * 1000:.0f}} "
      f"findings={{len(preds)}} peak_rss_mb={{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f}}")
"""


def run_app(header: Path, checkout: Path) -> str:
    """Open the record in the review window (offscreen) in a child; its figures."""
    code = APP_CHILD.format(root=str(checkout), path=str(header))
    proc = subprocess.run(["/usr/bin/time", "-v", sys.executable, "-c", code], cwd=checkout,
                          capture_output=True, text=True, timeout=300)
    line = next((x for x in proc.stdout.splitlines() if x.startswith("APP")), "APP (no result)")
    peak_kb = re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr)
    errors = [x for x in proc.stderr.splitlines() if x.startswith("ERROR")][:2]
    return f"{line} time_v_peak_mb={int(peak_kb.group(1)) / 1024 if peak_kb else float('nan'):.0f} {errors}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hours", type=float, default=24.0)
    ap.add_argument("--fs", type=int, default=500)
    ap.add_argument("--keep", type=Path, help="write the record here instead of a temp dir")
    ap.add_argument("--app", action="store_true", help="also open it in the review window")
    ap.add_argument("--checkout", type=Path, action="append",
                    help="checkout(s) to run predict from (default: this one); e.g. /work/main")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        header = write_long_record(folder, args.hours, args.fs)
        print(f"record: {args.hours:g} h x 12 leads at {args.fs} Hz, "
              f"{(folder / 'holter.dat').stat().st_size / 1e9:.2f} GB, written in "
              f"{time.perf_counter() - t0:.1f} s")
        t0 = time.perf_counter()
        src = open_ecg(header)
        page = src.read(0, 10 * args.fs)
        t_page = time.perf_counter() - t0
        t0 = time.perf_counter()
        ov = src.overview(2000)
        t_ov = time.perf_counter() - t0
        print(f"open_ecg + first 10 s page: {t_page * 1000:.1f} ms ({page.shape}); "
              f"overview of 2000 points: {t_ov:.1f} s")
        for checkout in args.checkout or [ROOT]:
            r = run_predict(header, checkout)
            print(f"predict from {checkout}: rc {r['rc']}, ok {r['ok']}, peak RSS {r['peak_mb']:.0f} MB, "
                  f"wall {r['wall_s']:.1f} s, windows scored {r['windows']}"
                  + (f", error: {r['error'][:160]}" if r["error"] else ""))
            if args.app:
                print(f"app from {checkout}: {run_app(header, checkout)}")


if __name__ == "__main__":
    main()
