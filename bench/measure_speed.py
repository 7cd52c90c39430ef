"""Speed of `engine.measure.measure_ecg` on a 10 s 12-lead record (500 Hz).

Usage: python3 bench/measure_speed.py [RECORD.hea] [--repeat N]
Prints the median and minimum wall time per call over N calls (after one
warm-up call), the median CPU time of this process per call (what the call
costs when it has a core to itself: wall time on a shared, loaded machine
includes waiting for a core) and the load average. Target: median under 20 ms.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.io import read_ecg  # noqa: E402
from engine.measure import measure_ecg  # noqa: E402

DEFAULT = Path(__file__).resolve().parents[1] / "tests/data/ecg/wfdb/ludb/1.hea"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("record", nargs="?", default=str(DEFAULT))
    ap.add_argument("--repeat", type=int, default=30)
    args = ap.parse_args()
    rec = read_ecg(args.record)
    measure_ecg(rec)
    times, cpu = [], []
    for _ in range(args.repeat):
        t, c = time.perf_counter(), time.process_time()
        measure_ecg(rec)
        times.append((time.perf_counter() - t) * 1000.0)
        cpu.append((time.process_time() - c) * 1000.0)
    print(f"{args.record}: {rec.signal.shape[0]} leads x {rec.duration_s:.1f} s at {rec.fs:g} Hz")
    print(f"measure_ecg: wall median {statistics.median(times):.1f} ms, min {min(times):.1f} ms; "
          f"CPU median {statistics.median(cpu):.1f} ms over {args.repeat} calls")
    if hasattr(os, "getloadavg"):
        print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
