"""Throughput of reading and preprocessing real 500 Hz, 10 s ECG records.

Single process, single thread of Python. Uses the real 500 Hz 10 s sample
records in tests/data (LUDB 1, 2, 8, 17 in WFDB format 16; CinC 2021 E07505 in
WFDB-in-.mat format 16x1+24), cycled to `--records` reads per repeat, and
prints the median (and min / max) records per second over `--repeats` repeats
for: reading (`engine.io.read_ecg`), preprocessing (`engine.preprocess.preprocess_ecg`)
and both together (read then preprocess, as inference does). Wall-clock
rates depend on what else runs on the machine; CPU-time rates much less.

Usage: python bench/read_preprocess.py [--records 300] [--repeats 7]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine.io import read_ecg  # noqa: E402
from engine.preprocess import preprocess_ecg  # noqa: E402

DATA = ROOT / "tests" / "data" / "ecg"
FILES = [DATA / "wfdb" / "ludb" / f"{n}.hea" for n in (1, 2, 8, 17)] + [
    DATA / "wfdb_mat" / "cinc2021" / "E07505.hea"]


def rate(fn: Callable[[int], None], n: int, repeats: int) -> tuple[list[float], list[float]]:
    """Records per second of `fn(i)` for i in range(n), once per repeat, by
    wall-clock time and by this process's CPU time (the latter is what the code
    costs when other programs compete for the cores)."""
    wall, cpu = [], []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        for i in range(n):
            fn(i)
        wall.append(n / (time.perf_counter() - t0))
        cpu.append(n / (time.process_time() - c0))
    return wall, cpu


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", type=int, default=300, help="records per repeat")
    ap.add_argument("--repeats", type=int, default=7, help="repeats (median reported)")
    args = ap.parse_args(argv)

    records = [read_ecg(f) for f in FILES]
    for f, r in zip(FILES, records):
        if r.fs != 500 or r.n_samples != 5000:
            raise SystemExit(f"{f} is not a 500 Hz 10 s record ({r.fs} Hz, {r.n_samples} samples)")
    k = len(FILES)
    for r in records:  # warm up (filter design caches, imports)
        preprocess_ecg(r)

    results = {
        "read": rate(lambda i: read_ecg(FILES[i % k]), args.records, args.repeats),
        "preprocess": rate(lambda i: preprocess_ecg(records[i % k]), args.records, args.repeats),
        "read+preprocess": rate(lambda i: preprocess_ecg(read_ecg(FILES[i % k])),
                                args.records, args.repeats),
    }
    print(f"{k} real 500 Hz 10 s records cycled, {args.records} per repeat, "
          f"{args.repeats} repeats, single process")
    for name, (wall, cpu) in results.items():
        med = statistics.median(wall)
        print(f"{name:>16}: {med:7.1f} records/s wall ({1000 / med:.2f} ms/record; "
              f"min {min(wall):.1f}, max {max(wall):.1f}); "
              f"{statistics.median(cpu):7.1f} records/s of CPU time")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
