"""Worker mode of `cromotex predict`: one thread, threads, processes, and `auto`, end to end.

    python bench/predict_parallel.py [--files 256] [--small 16] [--rounds 3]
        [--modes threads1 threads2 processes2 auto] [--json OUT]

Each run is the real command line in a fresh interpreter, as a user runs it:

    python3 -m engine.cli predict FOLDER -o OUT --no-progress [--parallel MODE --workers W]

so every figure includes the interpreter start, the imports, opening the bundle and, for
worker processes, spawning them (each imports the engine and opens the bundle again).
Modes: `threads1` (`--parallel threads --workers 1`, the single-thread baseline),
`threads2` / `processes2` (`--parallel threads|processes --workers 2`), `auto` (no flags:
what a user gets). Rounds alternate the order of the modes (rotated each round) so that
a changing background load hits every mode alike; figures are medians over rounds.

Per run: wall seconds, CPU seconds of the command and every process it started
(`RUSAGE_CHILDREN`), the 1-minute load average and the number of runnable tasks
(`/proc/loadavg`) just before it, and whether its output is byte-identical to the
`threads1` output of the same round. With `--small N` every mode is also run on N
files: the difference between the two sizes separates the fixed cost of a run (start,
imports, bundle, spawning workers) from the cost per file, so that the file count at
which processes start to pay off can be computed (`crossover_files`). For `auto` the
choice of `engine.cli.choose_parallel` is recorded from the load average read just
before the run (the command reads it ~0.2 s later).

Inputs: the 10 s sample records of tests/data (7 WFDB + 1 DICOM), symlinked as in
bench/predict.py.
"""

from __future__ import annotations

import argparse
import filecmp
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from predict import make_corpus  # noqa: E402  (bench/predict.py)

MODES = {"threads1": ["--parallel", "threads", "--workers", "1"],
         "threads2": ["--parallel", "threads", "--workers", "2"],
         "processes2": ["--parallel", "processes", "--workers", "2"],
         "auto": []}


def loadavg() -> tuple[float, int]:
    """(1-minute load average, runnable tasks now) from /proc/loadavg (Linux)."""
    try:
        parts = Path("/proc/loadavg").read_text().split()
        return float(parts[0]), int(parts[3].split("/")[0])
    except (OSError, IndexError, ValueError):
        return os.getloadavg()[0], -1


def run_once(folder: Path, mode: str, out: Path) -> dict:
    """One `cromotex predict` run in a fresh interpreter: wall s, CPU s (with its workers), load."""
    from engine.cli import choose_parallel

    load1, runnable = loadavg()
    cmd = [sys.executable, "-m", "engine.cli", "predict", str(folder), "-o", str(out),
           "--no-progress", *MODES[mode]]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode not in (0, 1):
        raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}: {proc.stderr[-2000:]}")
    n = sum(1 for _ in open(out, encoding="utf-8"))
    rec = {"wall_s": wall, "cpu_s": (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime),
           "load1_before": load1, "runnable_before": runnable, "lines": n}
    if mode == "auto":
        rec["auto_choice"] = choose_parallel(os.cpu_count() or 1, load1, n, 2)
    return rec


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--files", type=int, default=256)
    ap.add_argument("--small", type=int, default=0, help="also run every mode on this many files")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--modes", nargs="+", choices=list(MODES), default=list(MODES))
    ap.add_argument("--json", help="write the raw runs and medians here")
    a = ap.parse_args(argv)

    sizes = [a.files] + ([a.small] if a.small else [])
    runs: dict[int, dict[str, list[dict]]] = {n: {m: [] for m in a.modes} for n in sizes}
    same = True
    with tempfile.TemporaryDirectory(prefix="cromotex-parallel-bench-") as tmp:
        tmp = Path(tmp)
        folders = {}
        for n in sizes:
            folders[n] = tmp / f"ecgs{n}"
            make_corpus(folders[n], n)
        for r in range(a.rounds):
            order = a.modes[r % len(a.modes):] + a.modes[:r % len(a.modes)]
            for n in sizes:
                for mode in order:
                    out = tmp / f"{mode}_{n}.jsonl"
                    rec = run_once(folders[n], mode, out)
                    runs[n][mode].append(rec)
                    print(f"  round {r} n={n} {mode:>10}: {rec['wall_s']:6.2f} s wall, "
                          f"{rec['cpu_s']:6.2f} s CPU, load {rec['load1_before']:.2f} "
                          f"(runnable {rec['runnable_before']})"
                          + (f", auto -> {rec['auto_choice']}" if "auto_choice" in rec else ""),
                          file=sys.stderr, flush=True)
                ref = tmp / f"{a.modes[0]}_{n}.jsonl"
                for mode in a.modes[1:]:
                    same &= filecmp.cmp(ref, tmp / f"{mode}_{n}.jsonl", shallow=False)

    med = {n: {m: {"wall_s": statistics.median(x["wall_s"] for x in v),
                   "cpu_s": statistics.median(x["cpu_s"] for x in v),
                   "files_per_s": n / statistics.median(x["wall_s"] for x in v)}
               for m, v in runs[n].items()} for n in sizes}
    result = {"files": a.files, "small": a.small, "rounds": a.rounds, "cpus": os.cpu_count(),
              "outputs_identical": same, "median": med, "runs": runs}
    if a.small and a.small < a.files:
        fit = {}
        for m in a.modes:
            big, small = med[a.files][m], med[a.small][m]
            per_file = (big["wall_s"] - small["wall_s"]) / (a.files - a.small)
            fit[m] = {"per_file_ms": 1000 * per_file, "fixed_s": small["wall_s"] - a.small * per_file,
                      "cpu_per_file_ms": 1000 * (big["cpu_s"] - small["cpu_s"]) / (a.files - a.small),
                      "cpu_fixed_s": small["cpu_s"] - a.small * (big["cpu_s"] - small["cpu_s"]) / (a.files - a.small)}
        result["fit"] = fit
        if "processes2" in fit:
            p = fit["processes2"]
            for other in ("threads1", "threads2"):
                if other in fit:
                    o = fit[other]
                    gain = o["per_file_ms"] - p["per_file_ms"]
                    result[f"crossover_files_vs_{other}"] = (
                        1000 * (p["fixed_s"] - o["fixed_s"]) / gain if gain > 0 else None)

    loads = [x["load1_before"] for n in sizes for v in runs[n].values() for x in v]
    print(f"{os.cpu_count()} CPUs; load average (1 min) before the runs {min(loads):.2f}-{max(loads):.2f}; "
          f"outputs identical across modes: {same}")
    for n in sizes:
        print(f"{n} files, median of {a.rounds} rounds:")
        for m, v in med[n].items():
            print(f"  {m:>10}: {v['wall_s']:6.2f} s  {v['files_per_s']:6.1f} files/s  CPU {v['cpu_s']:6.2f} s"
                  f"  ({v['wall_s'] / med[n][a.modes[0]]['wall_s']:.2f} x {a.modes[0]})")
    for m, f in result.get("fit", {}).items():
        print(f"  {m:>10}: fixed {f['fixed_s']:.2f} s + {f['per_file_ms']:.2f} ms/file "
              f"(CPU {f['cpu_fixed_s']:.2f} s + {f['cpu_per_file_ms']:.2f} ms/file)")
    for k in ("crossover_files_vs_threads1", "crossover_files_vs_threads2"):
        if k in result:
            print(f"  {k}: {result[k]}")
    if a.json:
        Path(a.json).parent.mkdir(parents=True, exist_ok=True)
        Path(a.json).write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
