"""Time of parsing pathological WFDB header lines: engine.io.wfdb_header (no regex, linear)
against wfdb-python's own record / signal patterns (`wfdb.io.header.rx_record`,
`rx_signal`, which the engine used verbatim before issue 15).

Each parse runs in a child process killed after `--timeout` seconds, so a pattern that
never finishes is reported as "> timeout" instead of hanging the bench.

Usage: python bench/header_parse.py [--timeout 20]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: name -> (kind of line, line)
LINES = {
    "record line 'a 12 1111111111111111111111111!' (32-byte header)": ("record", "a 12 " + "1" * 25 + "!"),
    "signal line of 5,000 letters": ("signal", "a" * 5_000),
    "signal line of 10,000 letters": ("signal", "a" * 10_000),
    "signal line of 20,000 letters": ("signal", "a" * 20_000),
    "real signal line (PTB-XL)": ("signal", "00001_lr.dat 16 1000.0(0)/mV 16 0 -119 1508 0 I"),
}

CODE = """
import sys, time
kind, line, which = sys.argv[1], sys.argv[2], sys.argv[3]
if which == "wfdb":
    import wfdb.io.header as h
    pattern = h.rx_record if kind == "record" else h.rx_signal
    parse = lambda: pattern.fullmatch(line) or pattern.match(line)
else:
    from engine.io.wfdb_header import record_fields, signal_fields
    fields = record_fields if kind == "record" else signal_fields
    def parse():
        try:
            return fields(line, "x")
        except Exception as exc:
            return exc
n = 0
start = time.perf_counter()
while True:
    parse(); n += 1
    if time.perf_counter() - start > 0.2 or n >= 1000:
        break
print((time.perf_counter() - start) / n)
"""


def timed(kind: str, line: str, which: str, timeout: float) -> str:
    try:
        done = subprocess.run([sys.executable, "-c", CODE, kind, line, which], capture_output=True,
                              text=True, timeout=timeout, cwd=ROOT)
    except subprocess.TimeoutExpired:
        return f"> {timeout:.0f} s (killed)"
    seconds = float(done.stdout.strip())
    return f"{seconds * 1e3:.3f} ms" if seconds < 1 else f"{seconds:.1f} s"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--timeout", type=float, default=20.0)
    args = ap.parse_args()
    print("| line | wfdb's patterns (before) | engine.io.wfdb_header (now) |")
    print("|---|---:|---:|")
    for name, (kind, line) in LINES.items():
        print(f"| {name} | {timed(kind, line, 'wfdb', args.timeout)} | "
              f"{timed(kind, line, 'engine', args.timeout)} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
