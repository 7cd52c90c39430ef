"""Benchmark of `cromotex archive` (Dask) against `cromotex predict` on the same files.

    python bench/archive.py [--models DIR] [--files 256] [--rounds 3] [--workers 1 2] [--json OUT]

For each worker count W:
- archive: a `distributed.LocalCluster` of W processes (one thread each), started and
  warmed once (every worker has opened the bundle: `startup_s`), then `--rounds` runs of
  `engine.archive.cli.run_archive` over the folder into a new Parquet file each (so
  nothing is skipped): hashing, reading, scoring, part files and the final compaction.
- predict: `engine.cli.run_predict` over the same folder into a JSON-lines file, with W
  worker processes (`--parallel processes`, started once before the rounds) and with W
  threads (`--parallel threads`), as `cromotex predict FOLDER -o OUT --workers W` runs.
Rounds are interleaved; figures are medians, in files/s. `overhead` is the archive's
time per file over the faster predict mode's, minus 1 (target: within 10%). The one-off
start-ups (cluster, worker processes) are reported apart: they do not grow with the
archive. The load average is printed beside the figures (the machine is shared).

Inputs: the 10 s real sample records of tests/data (WFDB, DICOM, GE MUSE XML), symlinked
`--files` times into a temporary folder, one patient folder each.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from engine.archive.cli import build_archive_parser, run_archive, worker_spec  # noqa: E402
from engine.cli import build_predict_parser, predictor_threads, run_predict  # noqa: E402
from engine.inference import Predictor  # noqa: E402
from engine.process_pool import PredictorSpec, ProcessScorer  # noqa: E402

SAMPLES = [["tests/data/ecg/wfdb/ptbxl/00001_lr.hea", "tests/data/ecg/wfdb/ptbxl/00001_lr.dat"],
           ["tests/data/ecg/wfdb/ludb/1.hea", "tests/data/ecg/wfdb/ludb/1.dat"],
           ["tests/data/ecg/dicom/pydicom_waveform_ecg.dcm"],
           ["tests/data/formats/muse_xml/egm_muse-sinus.xml"]]


def make_folder(root: Path, n: int) -> Path:
    for i in range(n):
        d = root / f"patient_{i:05d}"
        d.mkdir(parents=True)
        for f in SAMPLES[i % len(SAMPLES)]:
            os.symlink(REPO / f, d / Path(f).name)
    return root


def time_predict(folder: Path, models: str | None, workers: int, parallel: str, out: Path,
                 predictor: Predictor, scorer: ProcessScorer | None) -> float:
    args = build_predict_parser().parse_args(
        [str(folder), "--workers", str(workers), "--parallel", parallel, "--no-progress"]
        + (["--models", models] if models else []))
    t = time.perf_counter()
    with open(out, "w", encoding="utf-8") as fh:
        run_predict(args, fh, io.StringIO(), predictor=predictor, scorer=scorer)
    return time.perf_counter() - t


def time_archive(folder: Path, models: str | None, out: Path, client, spec, bundle_id) -> float:
    args = build_archive_parser().parse_args(
        [str(folder), "--out", str(out), "--no-progress"] + (["--models", models] if models else []))
    t = time.perf_counter()
    code = run_archive(args, client, spec, bundle_id, io.StringIO())
    assert code == 0
    return time.perf_counter() - t


def cpu_per_file(folder: Path, models: str | None, n: int) -> dict[str, float]:
    """CPU ms per file, in this process, of what `cromotex predict` does for a file (read,
    preprocess, quality, score, JSON line) and of what the archive adds to it (content hash,
    row, Parquet part): a load-independent view of the archive's own cost."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from datetime import datetime, timezone

    from engine.archive.rows import archive_row, file_facts, schema
    from engine.batch import iter_inputs, load_and_score_many
    from engine.predict_output import dumps, model_json, result_json

    pa.Table.from_pylist([], schema=schema())  # one-off: pyarrow's first table (~0.3 s) is not per file
    predictor = Predictor(models, threads=1, parallel_models=False)
    items = list(iter_inputs([str(folder)]))[:n]
    model = model_json(predictor)
    t = time.process_time()
    objs = [result_json(r, model, None) for r in load_and_score_many(predictor, items)]
    lines = [dumps(o) for o in objs]  # the JSON line `cromotex predict` writes
    predict_ms = 1000 * (time.process_time() - t) / len(items)
    t = time.process_time()
    now = datetime.now(timezone.utc)
    rows = [archive_row(o, file_facts(i.path), now) for o, i in zip(objs, items)]
    with tempfile.TemporaryDirectory() as tmp:
        pq.write_table(pa.Table.from_pylist(rows, schema=schema()), Path(tmp) / "p.parquet")
    archive_ms = 1000 * (time.process_time() - t) / len(items)
    return {"predict_work_ms": predict_ms, "archive_extra_ms": archive_ms,
            "extra_fraction": archive_ms / predict_ms, "files": len(lines)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", help="bundle directory (default: the shipped bundle)")
    ap.add_argument("--files", type=int, default=256)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--json", help="write the figures here too")
    ap.add_argument("--cpu-only", action="store_true", help="only the CPU-per-file figures")
    a = ap.parse_args()
    from distributed import Client, LocalCluster
    import logging
    logging.getLogger("distributed").setLevel(logging.WARNING)

    load_before = os.getloadavg()
    results = {"files": a.files, "rounds": a.rounds, "cpus": os.cpu_count(), "workers": {}}
    with tempfile.TemporaryDirectory(prefix="cromotex-archive-bench-") as tmp:
        tmp = Path(tmp)
        folder = make_folder(tmp / "archive", a.files)
        warm = make_folder(tmp / "warm", 8)
        spec_args = build_archive_parser().parse_args(
            ["x", "--out", str(tmp / "x.parquet")] + (["--models", a.models] if a.models else []))
        spec, bundle_id = worker_spec(spec_args)
        results["cpu_per_file"] = cpu = cpu_per_file(folder, a.models, min(a.files, 128))
        print(f"CPU per file in one process: cromotex predict's work {cpu['predict_work_ms']:.2f} ms, "
              f"the archive's extra work (hash, row, Parquet) {cpu['archive_extra_ms']:.2f} ms "
              f"({100 * cpu['extra_fraction']:.1f}%)")
        for w in ([] if a.cpu_only else a.workers):
            t = time.perf_counter()
            cluster = LocalCluster(n_workers=w, threads_per_worker=1, processes=True, host="127.0.0.1",
                                   dashboard_address=None, silence_logs=logging.WARNING)
            client = Client(cluster)
            time_archive(warm, a.models, tmp / f"warm{w}.parquet", client, spec, bundle_id)
            cluster_start = time.perf_counter() - t
            pargs = build_predict_parser().parse_args(["x", "--workers", str(w)])
            predictor = Predictor(a.models, threads=predictor_threads(pargs), parallel_models=False)
            t = time.perf_counter()
            scorer = ProcessScorer(PredictorSpec.of(predictor, 1), w)
            scorer.start()
            process_start = time.perf_counter() - t
            times = {"archive": [], "predict_processes": [], "predict_threads": []}
            for r in range(a.rounds):
                times["predict_threads"].append(time_predict(
                    folder, a.models, w, "threads", tmp / "p.jsonl", predictor, None))
                times["archive"].append(time_archive(
                    folder, a.models, tmp / f"a{w}_{r}.parquet", client, spec, bundle_id))
                times["predict_processes"].append(time_predict(
                    folder, a.models, w, "processes", tmp / "p.jsonl", predictor, scorer))
                print(f"  W={w} round {r}: " + ", ".join(f"{k} {v[-1]:.2f} s" for k, v in times.items()),
                      file=sys.stderr)
            scorer.close()
            client.close()
            cluster.close()
            rate = {k: a.files / statistics.median(v) for k, v in times.items()}
            best = max(rate["predict_processes"], rate["predict_threads"])
            results["workers"][w] = {
                "files_per_s": rate, "overhead_vs_best_predict": best / rate["archive"] - 1,
                "archive_startup_s": cluster_start, "predict_process_start_s": process_start,
                "times_s": times}
    load_after = os.getloadavg()
    results["load_average_before"] = load_before
    results["load_average_after"] = load_after
    print(f"{a.files} files, median of {a.rounds} rounds; load average before "
          f"{load_before[0]:.1f}/{load_before[1]:.1f}/{load_before[2]:.1f}, after "
          f"{load_after[0]:.1f}/{load_after[1]:.1f}/{load_after[2]:.1f} on {os.cpu_count()} CPUs")
    print(f"{'W':>2} {'archive':>9} {'predict proc':>13} {'predict thr':>12} {'overhead':>9} "
          f"{'cluster start':>14} {'proc start':>11}")
    for w, r in results["workers"].items():
        f = r["files_per_s"]
        print(f"{w:>2} {f['archive']:>7.1f}/s {f['predict_processes']:>11.1f}/s "
              f"{f['predict_threads']:>10.1f}/s {100 * r['overhead_vs_best_predict']:>8.1f}% "
              f"{r['archive_startup_s']:>12.1f} s {r['predict_process_start_s']:>9.1f} s")
    if a.json:
        Path(a.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
