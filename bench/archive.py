"""Benchmark of `cromotex archive` (Dask) against `cromotex predict` on the same files.

    python bench/archive.py [--models DIR] [--files 256] [--rounds 3] [--workers 1 2]
        [--cluster threads processes] [--task-size N] [--json OUT]

`--cluster threads` (`cromotex archive --parallel threads`, what `auto` picks on a busy
machine): one in-process Dask worker with W threads, against `cromotex predict --parallel
threads --workers W`, rounds alternating (`threads_cluster` in the JSON; per-round
overheads too, since adjacent runs share the load).

`--cluster processes`, for each worker count W:
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

CPU (`cpu_s`): CPU seconds of this process and every process under it (Dask scheduler
thread, nannies and workers; predict's worker processes) spent during the run, summed
with psutil; on a machine that other jobs keep busy this is the steadier figure (the
wall time there is roughly CPU / the share the scheduler gives us). `cpu_overhead`
compares the archive's CPU with the same-mode predict (processes). `idle_cpu_per_s`: CPU
the started, idle cluster (or worker processes) burns per second with no task (event
loops, heartbeats): paid for the whole run whatever the work.

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

from engine.archive.cli import build_archive_parser, local_cluster, run_archive, worker_spec  # noqa: E402
from engine.cli import ParallelChoice, build_predict_parser, predictor_threads, run_predict  # noqa: E402
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


def tree_cpu() -> tuple[float, float]:
    """CPU seconds (user + system) of this process (client, Dask scheduler and nannies, or
    predict's main loop) and of all its live descendants (Dask or predict worker processes)."""
    import psutil

    me = psutil.Process()
    t = me.cpu_times()
    own, rest = t.user + t.system, 0.0
    for p in me.children(recursive=True):
        try:
            t = p.cpu_times()
            rest += t.user + t.system
        except psutil.Error:  # exited meanwhile
            continue
    return own, rest


def tree_cpu_s() -> float:
    """CPU seconds of this process and all its live descendants."""
    return sum(tree_cpu())


def idle_cpu_per_s(seconds: float = 2.0) -> float:
    """CPU per second of this process tree while nothing is submitted."""
    c = tree_cpu_s()
    time.sleep(seconds)
    return (tree_cpu_s() - c) / seconds


def time_predict(folder: Path, models: str | None, workers: int, parallel: str, out: Path,
                 predictor: Predictor, scorer: ProcessScorer | None) -> float:
    args = build_predict_parser().parse_args(
        [str(folder), "--workers", str(workers), "--parallel", parallel, "--no-progress"]
        + (["--models", models] if models else []))
    t = time.perf_counter()
    with open(out, "w", encoding="utf-8") as fh:
        run_predict(args, fh, io.StringIO(), predictor=predictor, scorer=scorer)
    return time.perf_counter() - t


TASK_SIZE: list[str] = []  # ["--task-size", N] when asked


def time_archive(folder: Path, models: str | None, out: Path, client, spec, bundle_id) -> float:
    args = build_archive_parser().parse_args(
        [str(folder), "--out", str(out), "--no-progress", *TASK_SIZE]
        + (["--models", models] if models else []))
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


def bench_threads_cluster(a, w: int, folder: Path, warm: Path, tmp: Path, spec, bundle_id) -> dict:
    """`cromotex archive --parallel threads`: one in-process Dask worker with `w` threads,
    against `cromotex predict --parallel threads --workers w`, alternating rounds."""
    from distributed import Client

    t = time.perf_counter()
    cluster = local_cluster(ParallelChoice("threads", w))
    client = Client(cluster)
    time_archive(warm, a.models, tmp / f"warm_t{w}.parquet", client, spec, bundle_id)
    start = time.perf_counter() - t
    pargs = build_predict_parser().parse_args(["x", "--workers", str(w)])
    predictor = Predictor(a.models, threads=predictor_threads(pargs), parallel_models=False)
    idle = idle_cpu_per_s()
    runs = {"archive_threads": lambda r: time_archive(
                folder, a.models, tmp / f"at{w}_{r}.parquet", client, spec, bundle_id),
            "predict_threads": lambda r: time_predict(
                folder, a.models, w, "threads", tmp / "p.jsonl", predictor, None)}
    times = {k: [] for k in runs}
    cpu = {k: [] for k in runs}
    loads = []
    for r in range(a.rounds):
        loads.append(os.getloadavg()[0])
        for k in (list(runs) if r % 2 == 0 else list(runs)[::-1]):
            c = tree_cpu_s()
            times[k].append(runs[k](r))
            cpu[k].append(tree_cpu_s() - c)
        print(f"  threads W={w} round {r} (load {loads[-1]:.1f}): "
              + ", ".join(f"{k} {v[-1]:.2f} s / {cpu[k][-1]:.2f} s CPU" for k, v in times.items()),
              file=sys.stderr, flush=True)
    client.close()
    cluster.close()
    med = {k: statistics.median(v) for k, v in times.items()}
    cpu_med = {k: statistics.median(v) for k, v in cpu.items()}
    # per-round ratios as well: rounds are adjacent in time, so they share the load
    ratios = [x / y - 1 for x, y in zip(times["archive_threads"], times["predict_threads"])]
    return {"files_per_s": {k: a.files / v for k, v in med.items()},
            "overhead": med["archive_threads"] / med["predict_threads"] - 1,
            "overhead_per_round": ratios, "overhead_median_of_rounds": statistics.median(ratios),
            "cpu_s": cpu_med, "cpu_overhead": cpu_med["archive_threads"] / cpu_med["predict_threads"] - 1,
            "startup_s": start, "idle_cpu_per_s": idle, "load_average_1min_per_round": loads,
            "times_s": times, "cpu_s_per_round": cpu}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", help="bundle directory (default: the shipped bundle)")
    ap.add_argument("--files", type=int, default=256)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--json", help="write the figures here too")
    ap.add_argument("--cpu-only", action="store_true", help="only the CPU-per-file figures")
    ap.add_argument("--task-size", type=int, default=None, help="archive --task-size (default: its own)")
    ap.add_argument("--cluster", nargs="+", choices=("processes", "threads"), default=["threads", "processes"],
                    help="local cluster kinds to time: W processes (against predict with W processes and W "
                         "threads) and/or one in-process worker of W threads (against predict with W threads)")
    a = ap.parse_args()
    if a.task_size:
        TASK_SIZE[:] = ["--task-size", str(a.task_size)]
    from distributed import Client
    import logging
    logging.getLogger("distributed").setLevel(logging.WARNING)

    load_before = os.getloadavg()
    results = {"files": a.files, "rounds": a.rounds, "cpus": os.cpu_count(), "workers": {},
               "threads_cluster": {}}
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
        for w in ([] if a.cpu_only or "threads" not in a.cluster else a.workers):
            results["threads_cluster"][w] = bench_threads_cluster(a, w, folder, warm, tmp, spec, bundle_id)
        for w in ([] if a.cpu_only or "processes" not in a.cluster else a.workers):
            t = time.perf_counter()
            cluster = local_cluster(ParallelChoice("processes", w))
            client = Client(cluster)
            time_archive(warm, a.models, tmp / f"warm{w}.parquet", client, spec, bundle_id)
            cluster_start = time.perf_counter() - t
            pargs = build_predict_parser().parse_args(["x", "--workers", str(w)])
            predictor = Predictor(a.models, threads=predictor_threads(pargs), parallel_models=False)
            t = time.perf_counter()
            scorer = ProcessScorer(PredictorSpec.of(predictor, 1), w)
            scorer.start()
            process_start = time.perf_counter() - t
            idle = {"archive": None, "predict_processes": None}
            idle["archive"] = idle_cpu_per_s()  # the cluster idles; predict's workers too, but both are up
            times = {"archive": [], "predict_processes": [], "predict_threads": []}
            cpu = {k: [] for k in times}
            cpu_parts = {k: [] for k in times}  # (this process, worker processes)
            loads = []
            runs = {
                "predict_threads": lambda r: time_predict(
                    folder, a.models, w, "threads", tmp / "p.jsonl", predictor, None),
                "archive": lambda r: time_archive(
                    folder, a.models, tmp / f"a{w}_{r}.parquet", client, spec, bundle_id),
                "predict_processes": lambda r: time_predict(
                    folder, a.models, w, "processes", tmp / "p.jsonl", predictor, scorer)}
            order = list(runs)
            for r in range(a.rounds):
                loads.append(os.getloadavg()[0])
                for k in order[r % 3:] + order[:r % 3]:  # rotated each round
                    c = tree_cpu()
                    times[k].append(runs[k](r))
                    c2 = tree_cpu()
                    cpu[k].append(c2[0] + c2[1] - c[0] - c[1])
                    cpu_parts[k].append((c2[0] - c[0], c2[1] - c[1]))
                print(f"  W={w} round {r} (load {loads[-1]:.1f}): "
                      + ", ".join(f"{k} {v[-1]:.2f} s / {cpu[k][-1]:.2f} s CPU" for k, v in times.items()),
                      file=sys.stderr, flush=True)
            idle["predict_processes"] = idle_cpu_per_s()
            scorer.close()
            client.close()
            cluster.close()
            rate = {k: a.files / statistics.median(v) for k, v in times.items()}
            best = max(rate["predict_processes"], rate["predict_threads"])
            cpu_med = {k: statistics.median(v) for k, v in cpu.items()}
            results["workers"][w] = {
                "files_per_s": rate, "overhead_vs_best_predict": best / rate["archive"] - 1,
                "archive_startup_s": cluster_start, "predict_process_start_s": process_start,
                "cpu_s": cpu_med, "cpu_overhead_vs_predict_processes":
                    cpu_med["archive"] / cpu_med["predict_processes"] - 1,
                "idle_cpu_per_s": idle, "load_average_1min_per_round": loads,
                "cpu_s_main_process_median": {k: statistics.median(x[0] for x in v)
                                              for k, v in cpu_parts.items()},
                "cpu_s_worker_processes_median": {k: statistics.median(x[1] for x in v)
                                                  for k, v in cpu_parts.items()},
                "times_s": times, "cpu_s_per_round": cpu, "cpu_s_parts_per_round": cpu_parts}
    load_after = os.getloadavg()
    results["load_average_before"] = load_before
    results["load_average_after"] = load_after
    print(f"{a.files} files, median of {a.rounds} rounds; load average before "
          f"{load_before[0]:.1f}/{load_before[1]:.1f}/{load_before[2]:.1f}, after "
          f"{load_after[0]:.1f}/{load_after[1]:.1f}/{load_after[2]:.1f} on {os.cpu_count()} CPUs")
    print(f"{'W':>2} {'archive':>9} {'predict proc':>13} {'predict thr':>12} {'overhead':>9} "
          f"{'cluster start':>14} {'proc start':>11} {'CPU arch/proc/thr (s)':>22} {'CPU ovh':>8} "
          f"{'idle CPU/s cluster/procs':>25}")
    for w, r in results["workers"].items():
        f, c, i = r["files_per_s"], r["cpu_s"], r["idle_cpu_per_s"]
        print(f"{w:>2} {f['archive']:>7.1f}/s {f['predict_processes']:>11.1f}/s "
              f"{f['predict_threads']:>10.1f}/s {100 * r['overhead_vs_best_predict']:>8.1f}% "
              f"{r['archive_startup_s']:>12.1f} s {r['predict_process_start_s']:>9.1f} s "
              f"{c['archive']:>7.2f}/{c['predict_processes']:.2f}/{c['predict_threads']:.2f} "
              f"{100 * r['cpu_overhead_vs_predict_processes']:>7.1f}% "
              f"{i['archive']:>12.3f}/{i['predict_processes']:.3f}")
        m, wk = r["cpu_s_main_process_median"], r["cpu_s_worker_processes_median"]
        print(f"   CPU s, main process / worker processes: archive {m['archive']:.2f} / {wk['archive']:.2f}, "
              f"predict processes {m['predict_processes']:.2f} / {wk['predict_processes']:.2f}, "
              f"predict threads {m['predict_threads']:.2f}")
    for w, r in results["threads_cluster"].items():
        f, c = r["files_per_s"], r["cpu_s"]
        print(f"threads W={w}: archive {f['archive_threads']:.1f}/s, predict {f['predict_threads']:.1f}/s, "
              f"overhead {100 * r['overhead']:.1f}% (median of per-round "
              f"{100 * r['overhead_median_of_rounds']:.1f}%), CPU {c['archive_threads']:.2f} / "
              f"{c['predict_threads']:.2f} s ({100 * r['cpu_overhead']:+.1f}%), cluster start "
              f"{r['startup_s']:.1f} s, idle {r['idle_cpu_per_s']:.3f} CPU/s")
    if a.json:
        Path(a.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
