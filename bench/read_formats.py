"""Read time per ECG file format, on the real sample files in tests/data.

For each sample file (GE MUSE XML, Philips XML 1.03 / 1.04 (UTF-16), HL7 aECG, SCP-ECG
(ECG Toolkit, Welch Allyn), EDF+, and for comparison the WFDB and DICOM samples), prints the median, min and max wall-clock and
CPU time of `engine.io.read_ecg(path)` over `--repeats` reads (after one warm-up read),
for the full read (median beats included) and the batch read (`annotations=False`).
Target: under 20 ms for a 10 s 12-lead file. Wall-clock times depend on what else
runs on the machine; CPU times much less.

Usage: python bench/read_formats.py [--repeats 31] [--files PATH ...]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine.io import read_ecg  # noqa: E402

DATA = ROOT / "tests" / "data"
FILES = [
    DATA / "formats/muse_xml/musephi_muse_ecg1.xml",
    DATA / "formats/muse_xml/egm_muse-sinus.xml",
    DATA / "formats/philips_xml/sierra_1-03_129DYPRG_HeartStartMRx.xml",
    DATA / "formats/philips_xml/philips_1-04_ad4d3d80-d165_PageWriterTouch.xml",
    DATA / "formats/hl7_aecg/hl7_2003-12_ballot_Example_aECG_Mortara.xml",
    DATA / "formats/scp_ecg/ecgtoolkit_Example.scp",
    DATA / "formats/scp_ecg/welchallyn_cardiocontrol_ECG_20060620_112352_ANON000002.SCP",
    DATA / "formats/edf/DERIVED_from_mortara_eli250_dicom.edf",
    DATA / "ecg/wfdb/ludb/1.hea",
    DATA / "ecg/dicom/pydicom_waveform_ecg.dcm",
]


def times(path: Path, annotations: bool, repeats: int) -> tuple[list[float], list[float]]:
    """(wall ms, CPU ms) of each of `repeats` reads of `path`."""
    read_ecg(path, annotations=annotations)  # warm-up: imports, caches
    wall, cpu = [], []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        read_ecg(path, annotations=annotations)
        wall.append((time.perf_counter() - t0) * 1e3)
        cpu.append((time.process_time() - c0) * 1e3)
    return wall, cpu


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=31, help="reads per file and mode")
    ap.add_argument("--files", nargs="*", type=Path, default=FILES)
    args = ap.parse_args(argv)
    print(f"read_ecg time per file, ms: median [min, max] of {args.repeats} reads "
          f"(wall clock | CPU)")
    print(f"{'format':12} {'file':52} {'leads x s':>10} {'full read':>30} {'annotations=False':>30}")
    for path in args.files:
        record = read_ecg(path)
        shape = f"{len(record.leads)} x {record.duration_s:.1f}"
        cells = []
        for annotations in (True, False):
            wall, cpu = times(path, annotations, args.repeats)
            cells.append(f"{statistics.median(wall):6.1f} [{min(wall):5.1f},{max(wall):6.1f}] | "
                         f"{statistics.median(cpu):5.1f}")
        print(f"{record.source.format:12} {path.name[:52]:52} {shape:>10} {cells[0]:>30} {cells[1]:>30}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
