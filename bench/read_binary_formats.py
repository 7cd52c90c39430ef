"""Read time of each binary vendor sample file (SCP-ECG, EDF, BDF, DICOM), and of the
independent decoders the tests use as oracles when they are installed.

Single process. For each file: the median wall-clock and CPU time of `engine.io.read_ecg`
over `--repeats` reads, with annotations (what the app does) and without (batch
scoring). Target: under 20 ms for a 10 s 12-lead file. With `--oracles`, the same for
`ecgdatakit` (SCP-ECG) and `pyedflib` (EDF/BDF). Wall-clock times depend on what else
runs on the machine; CPU times much less.

Usage: python bench/read_binary_formats.py [--repeats 30] [--oracles]
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

DATA = ROOT / "tests" / "data"
FILES = [
    DATA / "formats" / "scp_ecg" / "ecgtoolkit_Example.scp",
    DATA / "formats" / "scp_ecg" / "welchallyn_cardiocontrol_ECG_20060620_112352_ANON000002.SCP",
    DATA / "formats" / "edf" / "DERIVED_from_mortara_eli250_dicom.edf",
    DATA / "ecg" / "dicom" / "pydicom_waveform_ecg.dcm",
]


def timed(fn: Callable[[], object], repeats: int) -> tuple[float, float]:
    """(median wall ms, median CPU ms) of `fn()` after one warm-up call."""
    fn()
    wall, cpu = [], []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return statistics.median(wall) * 1e3, statistics.median(cpu) * 1e3


def _oracle(path: Path) -> Callable[[], object] | None:
    if path.suffix.lower() == ".scp":
        try:
            from ecgdatakit import FileParser
        except ImportError:
            return None
        return lambda: FileParser().parse(str(path))
    if path.suffix.lower() in (".edf", ".bdf"):
        try:
            import pyedflib
        except ImportError:
            return None

        def read():
            with pyedflib.EdfReader(str(path)) as reader:
                return [reader.readSignal(i) for i in range(reader.signals_in_file)]
        return read
    return None


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--oracles", action="store_true", help="also time ecgdatakit / pyedflib")
    args = parser.parse_args(argv)
    print(f"{'file':<62} {'shape':>12} {'full ms':>8} {'cpu':>6} {'signal-only ms':>15} {'cpu':>6}")
    for path in FILES:
        rec = read_ecg(path)
        full = timed(lambda: read_ecg(path), args.repeats)
        fast = timed(lambda: read_ecg(path, annotations=False), args.repeats)
        shape = f"{rec.signal.shape[0]}x{rec.n_samples}"
        print(f"{path.name:<62} {shape:>12} {full[0]:8.2f} {full[1]:6.2f} {fast[0]:15.2f} {fast[1]:6.2f}")
        oracle = _oracle(path) if args.oracles else None
        if oracle is not None:
            wall, cpu = timed(oracle, max(5, args.repeats // 3))
            name = "ecgdatakit" if path.suffix.lower() == ".scp" else "pyedflib"
            print(f"{'  (' + name + ')':<62} {'':>12} {wall:8.2f} {cpu:6.2f}")


if __name__ == "__main__":
    main()
