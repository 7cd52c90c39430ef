"""Benchmark of the study store: indexing 10,000 small records and the worklist's queries.

    python bench/index_store.py [--n 10000] [--ai-n 1000] [--workers 2] [--json OUT] [--keep DIR]

Builds `--n` records in a temporary folder (500 per sub-folder) from real sample files:
90 % copies of the PTB-XL record 00001_lr (WFDB, 100 Hz, 10 s: a 596-byte header and a
24 kB signal file) and 10 % copies of the GE MUSE sample egm_muse-sinus.xml (146 kB) with
the patient ID set to one of n/100 patients, the acquisition date spread over 2020-2023 and
the rate varied (so the worklist's patient and date filters have something to find).
Then, each on a fresh store:

1. index without AI (`scan(..., predictor=None)`: read, preprocess, quality, store);
2. index `--ai-n` of the files with the shipped model bundle (the whole pipeline);
3. re-scan of the folder of step 1 (incremental: nothing changed);

reporting files/s, the time until the first 100 rows are queryable from a second
connection (what the app's worklist does while the scan thread writes), and the median
time (20 runs) of the worklist's queries on the n-row store: the first page (200 rows)
of each filter and sort, the count, a patient's ECGs and AI trend.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from engine.store import (Store, WorklistFilter, ai_trend, count_worklist, patient_ecgs,  # noqa: E402
                          scan, worklist)

PTBXL = REPO / "tests/data/ecg/wfdb/ptbxl/00001_lr"
MUSE = REPO / "tests/data/formats/muse_xml/egm_muse-sinus.xml"


def make_records(root: Path, n: int) -> Path:
    """`n` records under root/records (see the module docstring)."""
    folder = root / "records"
    hea = (PTBXL.with_suffix(".hea")).read_text().splitlines()
    dat = PTBXL.with_suffix(".dat").read_bytes()
    muse = MUSE.read_text(encoding="latin-1")
    n_patients = max(1, n // 100)
    for i in range(n):
        sub = folder / f"{i // 500:03d}"
        if i % 500 == 0:
            sub.mkdir(parents=True)
        if i % 10 == 9:
            k = i // 10
            text = (muse.replace("<PatientID>081486213</PatientID>", f"<PatientID>P{k % n_patients:05d}</PatientID>")
                    .replace("<AcquisitionDate>04-29-2023</AcquisitionDate>",
                             f"<AcquisitionDate>{1 + k % 12:02d}-{1 + k % 28:02d}-{2020 + k % 4}</AcquisitionDate>")
                    .replace("<VentricularRate>90</VentricularRate>", f"<VentricularRate>{60 + k % 60}</VentricularRate>"))
            (sub / f"m{i:05d}.xml").write_text(text, encoding="latin-1")
        else:
            name = f"r{i:05d}"
            (sub / f"{name}.dat").write_bytes(dat)
            lines = [hea[0].replace("00001_lr", name, 1)] + [ln.replace("00001_lr.dat", f"{name}.dat") for ln in hea[1:]]
            (sub / f"{name}.hea").write_text("\n".join(lines) + "\n")
    return folder


def index(folder: Path | list[Path], db: Path, predictor, workers: int) -> dict:
    """Scan into a fresh store; files/s and time to the first 100 rows seen by another connection."""
    reader = None
    first_100 = None
    t0 = time.perf_counter()
    with Store(db) as store:
        reader = Store(db)
        last = None
        for last in scan(folder if isinstance(folder, list) else [folder], store, predictor=predictor,
                         workers=workers):
            if first_100 is None and last.done >= 100 and count_worklist(reader) >= 100:
                first_100 = time.perf_counter() - t0
                rows = worklist(reader, limit=100)
                assert len(rows) == 100
        seconds = time.perf_counter() - t0
        reader.close()
    return {"files": last.done, "indexed": last.indexed, "unchanged": last.unchanged, "failed": last.failed,
            "seconds": round(seconds, 2), "files_per_s": round(last.done / seconds, 1),
            "first_100_rows_s": round(first_100, 3) if first_100 else None}


def query_times(db: Path, reps: int = 20) -> dict[str, float]:
    """Median ms of the worklist's queries."""
    out = {}
    with Store(db) as s:
        key = next(e.patient_key for e in worklist(s, WorklistFilter(failed=False), limit=50) if e.patient_key)
        cases = {
            "all, by time (200 rows)": lambda: worklist(s, limit=200),
            "unread (200)": lambda: worklist(s, WorklistFilter(unread=True), limit=200),
            "AI positive (200)": lambda: worklist(s, WorklistFilter(ai_positive=True), limit=200),
            "flagged (200)": lambda: worklist(s, WorklistFilter(flagged=True), limit=200),
            "date range 2021 (200)": lambda: worklist(s, WorklistFilter(date_from="2021-01-01", date_to="2021-12-31"), limit=200),
            "patient substring (200)": lambda: worklist(s, WorklistFilter(patient="p0004"), limit=200),
            "sorted by patient (200)": lambda: worklist(s, sort="patient", descending=False, limit=200),
            "count (all)": lambda: count_worklist(s),
            "count (unread)": lambda: count_worklist(s, WorklistFilter(unread=True)),
            "patient's ECGs": lambda: patient_ecgs(s, key),
            "patient's AI trend": lambda: ai_trend(s, key),
        }
        for name, fn in cases.items():
            fn()
            times = []
            for _ in range(reps):
                t = time.perf_counter()
                fn()
                times.append(time.perf_counter() - t)
            out[name] = round(statistics.median(times) * 1000, 2)
    return out


@contextmanager
def removed_unless_kept(root: Path, keep: str | None) -> Iterator[None]:
    """Remove the bench folder `root` when the block ends (also on an error), unless it is
    the --keep folder."""
    try:
        yield
    finally:
        if not keep:
            shutil.rmtree(root, ignore_errors=True)


def write_figures(path: str | None, result: dict) -> None:
    """Write `result` as indented JSON to `path` (the --json option) when one is given."""
    if path:
        Path(path).write_text(json.dumps(result, indent=1))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--ai-n", type=int, default=1000, help="files indexed with AI scoring (0: skip)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--json", help="write the figures here")
    ap.add_argument("--keep", help="build the records in this folder and keep them")
    args = ap.parse_args()
    root = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="cromotex-index-"))
    with removed_unless_kept(root, args.keep):
        t = time.perf_counter()
        folder = make_records(root, args.n)
        print(f"made {args.n} records in {time.perf_counter() - t:.1f} s under {folder}")
        result: dict = {"n": args.n, "workers": args.workers}
        result["index_no_ai"] = index(folder, root / "plain.sqlite3", None, args.workers)
        print("index, no AI:", result["index_no_ai"])
        result["rescan_unchanged"] = index(folder, root / "plain.sqlite3", None, args.workers)
        print("re-scan, nothing changed:", result["rescan_unchanged"])
        if args.ai_n:
            from engine.inference import Predictor

            predictor = Predictor(threads=1)
            subset = sorted(folder.iterdir())[: max(1, -(-args.ai_n // 500))]
            result["index_ai"] = index(subset, root / "ai.sqlite3", predictor, args.workers)
            result["index_ai"]["bundle"] = predictor.bundle.bundle_id
            print("index with AI:", result["index_ai"])
        result["query_ms"] = query_times(root / "plain.sqlite3")
        for k, v in result["query_ms"].items():
            print(f"  {k:28s} {v:8.2f} ms")
        result["store_bytes"] = (root / "plain.sqlite3").stat().st_size
        write_figures(args.json, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
