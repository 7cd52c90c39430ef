"""Peak memory and time of reading size bombs: small files that declare gigabytes.

Builds the bombs of tests/engine/fuzz_mutants.py (a 13000 x 13000 PNG, a deflated
16384^2 16-bit DICOM chest X-ray, a deflated DICOM ECG of 12 x 3.5 M samples, a WFDB
header declaring 24 hours of 12 leads over a sparse signal file) and reads each in a
child process (a chest X-ray is also preprocessed, as `cromotex predict --cxr` does),
printing the outcome, the seconds and the child's peak RSS (`ru_maxrss`). The child's
address space is limited (`--memory-mb`, with `ulimit -v` semantics) so that an old
engine that allocates gigabytes fails instead of exhausting the machine.

Usage: python bench/size_bombs.py [--engine-root OLD_CHECKOUT] [--memory-mb 10000] [--timeout 300]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "engine"))

CHILD = """
import resource, sys, time
limit = int(sys.argv[4]) * 1024 * 1024
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
sys.path.insert(0, sys.argv[3])
from engine.io import read_cxr, read_ecg
reader, path = sys.argv[1], sys.argv[2]
start = time.perf_counter()
try:
    if reader == "read_cxr":
        from engine.preprocess.cxr import preprocess_cxr
        preprocess_cxr(read_cxr(path))
        out = "read and preprocessed"
    else:
        out = f"read {read_ecg(path, annotations=(reader == 'read_ecg')).signal.shape}"
except BaseException as exc:
    cause = f" (from {type(exc.__cause__).__name__})" if exc.__cause__ else ""
    out = f"{type(exc).__name__}{cause}: {str(exc)[:90]}"
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(f"{out} | {time.perf_counter() - start:.1f} s | {peak:,.0f} MiB")
"""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--engine-root", type=Path, default=ROOT, help="checkout whose engine reads")
    ap.add_argument("--memory-mb", type=int, default=10_000)
    ap.add_argument("--timeout", type=float, default=300.0)
    args = ap.parse_args()
    import fuzz_mutants as F

    print(f"engine: {args.engine_root}\n")
    print("| input (file size) | reader | outcome | seconds | peak RSS |")
    print("|---|---|---|---:|---:|")
    with tempfile.TemporaryDirectory() as tmp:
        for family, path, reader in F.bomb_cases(Path(tmp)):
            size = path.stat().st_size if path.suffix != ".hea" else (path.parent / "day.dat").stat().st_size
            try:
                done = subprocess.run([sys.executable, "-c", CHILD, reader, str(path),
                                       str(args.engine_root), str(args.memory_mb)],
                                      capture_output=True, text=True, timeout=args.timeout,
                                      cwd=args.engine_root)
                line = (done.stdout.strip().splitlines() or [f"no output: {done.stderr[-200:]}"])[-1]
            except subprocess.TimeoutExpired:
                line = f"killed after {args.timeout:.0f} s | - | -"
            print(f"| {family}: {path.name} ({size / 1024:,.0f} KB) | {reader} | {line} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
