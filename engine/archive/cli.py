"""`cromotex archive ROOT... --out results.parquet`: score an ECG archive on Dask distributed.

The client (this process) finds the files (`engine.batch.iter_inputs`: the folder
search of `cromotex predict`), sends them to the Dask workers in chunks of
`--task-size` files with a bounded number of chunks in flight, and writes the rows
that come back into the Parquet dataset (`engine.archive.store`). The workers
open the bundle once each (`engine.archive.worker`) and score with
`cromotex predict`'s code. Without `--scheduler` a `distributed.LocalCluster` runs on
this machine (`--parallel`, `local_plan`): `--workers` processes of one thread each,
listening on the loopback address only, or, when `cromotex predict --parallel auto`
would use threads (a busy machine) or with `--parallel threads`, one worker in this
process with `--workers` threads (or one), on Dask's in-process transport: no extra
interpreters, imports and bundle loads, which a busy machine never earns back (figures
in docs/results/archive.md and `engine.cli.choose_parallel`). A file that crashes a
native decoder then takes the whole command down (as `cromotex predict` in threads):
rerun it, it resumes.

Exit status: 0 when the run finished (files that could not be scored are rows with
`ok` false and their `error`); 2 when it could not run (bad arguments, bundle,
output or cluster); 130 when interrupted (rows scored so far are kept in the part
files and the next run resumes).
"""

from __future__ import annotations

import argparse
import itertools
import logging
import os
import sys
from collections.abc import Iterator
from typing import Any, TextIO

from engine.archive.rows import path_key
from engine.archive.store import DEFAULT_FLUSH_EVERY, DEFAULT_FLUSH_SECONDS, ArchiveStore
from engine.archive.worker import WorkerSpec, manifest_sha256, score_chunk
from engine.batch import FILES_PER_TASK, InputItem, iter_inputs
from engine.cli import (DEFAULT_WORKERS,  # local workers: one per CPU (at most 16), as predict
                        PARALLEL_MODES, PROCESS_MIN_FILES, ParallelChoice, choose_parallel, load_average)
from engine.errors import BundleError, CromotexError
from engine.inference import DEVICES, PRECISIONS

log = logging.getLogger(__name__)

#: Files per Dask task: `cromotex predict`'s task size (read, preprocess and score 16 files
#: together: the per-file code and each model's weights stay in the CPU caches), and the
#: ~1-3 ms of Dask scheduling and transfer per task is spread over 16 files of 10-50 ms.
DEFAULT_TASK_SIZE = FILES_PER_TASK
#: Message of a file whose chunk failed on a worker twice (the worker died or the task raised).
WORKER_FAILED = ("the Dask worker scoring this file failed ({reason}); the file was skipped. Try it "
                 "alone with `cromotex predict FILE --workers 1`.")


def build_archive_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="cromotex archive",
        description="Score an ECG archive (folders searched recursively for any file `cromotex "
                    "predict` reads) on a Dask cluster into one Parquet file, one row per file. "
                    "Resumable: files already in --out, scored with the same bundle and with the "
                    "same content (sha256), are skipped.",
        epilog="Output: OUT (sorted by path, written at the end of the run) and, while running, "
               "OUT.parts/ (a part file every --flush-every rows; an interrupted run's parts are "
               "picked up by the next run). Columns: path, size, mtime, sha256, ok, error, "
               "bundle_id, data, demo, precision, probability_/threshold_/positive_/call_/"
               "call_reason_/ood_/ood_distance_<pathology>, n_windows, quality_ok, short_record, "
               "JSON text of "
               "window_probabilities, quality, preprocessing, measurements, device_measurements, "
               "statements and model, result_json (the exact `cromotex predict` JSON line) and "
               "scored_at. Exit status: 0 done (bad files are rows with ok false), 2 could not "
               "run, 130 interrupted.")
    ap.add_argument("roots", nargs="+", metavar="ROOT", help="folders, files or glob patterns")
    ap.add_argument("--out", required=True, metavar="OUT.parquet", help="the Parquet file to write")
    ap.add_argument("--scheduler", metavar="tcp://HOST:8786",
                    help="a running Dask scheduler (the site's cluster); default: a local cluster")
    ap.add_argument("--workers", type=int, default=DEFAULT_WORKERS,
                    help=f"local cluster worker processes (default: CPUs, at most 16: {DEFAULT_WORKERS} "
                         "here); ignored with --scheduler")
    ap.add_argument("--parallel", choices=PARALLEL_MODES, default="auto",
                    help="local cluster only: its workers are processes (one thread each: no shared "
                         "GIL, a crashing decoder takes only its worker down) or threads of one "
                         "worker in this process (no extra interpreters: on a busy or small machine "
                         "as fast as `cromotex predict`); auto (default): the rule of `cromotex "
                         "predict --parallel auto` for a large run (CPUs left idle by other work: "
                         "under 1, one thread; at least 2, processes; else --workers threads)")
    ap.add_argument("--models", metavar="DIR",
                    help="model bundle directory, at the same path on every worker (default: the "
                         "shipped resources/models/); its manifest must be signed by a trusted key")
    ap.add_argument("--trusted-key", action="append", default=[], metavar="KEY.pub",
                    help="also trust bundles signed with this key (as `cromotex predict`); the "
                         "workers trust exactly the keys this client trusts")
    ap.add_argument("--device", choices=DEVICES, default="cpu", help="cpu (default), cuda or auto")
    ap.add_argument("--precision", choices=PRECISIONS, default="auto",
                    help="ECG model precision: auto (int8 when the bundle ships it), fp32, int8")
    ap.add_argument("--task-size", type=int, default=DEFAULT_TASK_SIZE,
                    help=f"files per Dask task (default {DEFAULT_TASK_SIZE})")
    ap.add_argument("--flush-every", type=int, default=DEFAULT_FLUSH_EVERY,
                    help=f"rows per part file (default {DEFAULT_FLUSH_EVERY})")
    ap.add_argument("--flush-seconds", type=float, default=DEFAULT_FLUSH_SECONDS,
                    help=f"flush a part at least this often (default {DEFAULT_FLUSH_SECONDS:g} s)")
    ap.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    return ap


def resolve_precision(bundle, precision: str) -> str:
    """The precision a Predictor opens `bundle` with (the rule of `Predictor.__init__`)."""
    has_int8 = all(s.int8_file for s in bundle.ecg.values())
    if precision == "int8" and not has_int8:
        raise BundleError(f"Model bundle {bundle.directory}: manifest.json lists no int8 ECG model "
                          "for every pathology; use --precision fp32")
    return "int8" if precision == "int8" or (precision == "auto" and has_int8) else "fp32"


def worker_spec(args: argparse.Namespace) -> tuple[WorkerSpec, str]:
    """The workers' spec and the bundle id, after verifying the bundle here with the trust list.

    Raises:
        BundleError: missing, tampered with or untrusted bundle.
    """
    from engine.bundle import load_bundle
    from engine.signing import public_pem
    from engine.trust import load_trust

    trust = load_trust(args.trusted_key)
    bundle = load_bundle(args.models, trust)
    keys = tuple((k.label, public_pem(k.public_key).decode("ascii")) for k in trust.keys.values())
    spec = WorkerSpec(str(bundle.directory), args.device, resolve_precision(bundle, args.precision),
                      1, keys, manifest_sha256(bundle.directory))
    return spec, bundle.bundle_id


def local_plan(args: argparse.Namespace) -> ParallelChoice:
    """The local cluster's workers: `--parallel` with `--workers`, or for auto
    `engine.cli.choose_parallel` with this machine's CPUs and load, for a large run (an
    archive; the file count is not known before the walk)."""
    if args.parallel != "auto":
        return ParallelChoice(args.parallel, args.workers)
    return choose_parallel(os.cpu_count() or 1, load_average(), PROCESS_MIN_FILES, args.workers)


#: Dask settings of the local cluster: its periodic monitoring (a statistical profiler sampling
#: the task threads every 10 ms, an event-loop tick every 20 ms, memory every 100 ms, system
#: every 500 ms) serves the dashboard, which is off. With these the idle cluster burns 0.007
#: instead of 0.057 CPU-s/s in-process, 0.015 instead of 0.122 with 2 worker processes
#: (docs/results/archive.md); a worker over its memory limit is still caught, within 1 s.
LOCAL_CLUSTER_CONFIG = {"distributed.worker.profile.enabled": False,
                        "distributed.admin.tick.interval": "500ms",
                        "distributed.admin.system-monitor.interval": "5s",
                        "distributed.worker.memory.monitor-interval": "1s"}


def local_cluster(plan: ParallelChoice):
    """A `distributed.LocalCluster` for `plan` (no dashboard): `workers` processes of one
    thread each (loopback only), or one worker in this process with `workers` threads
    (they share its Predictor: one model load; in-process transport)."""
    import dask
    from distributed import LocalCluster

    with dask.config.set(LOCAL_CLUSTER_CONFIG):  # read when the servers start (passed to nannies' workers)
        if plan.mode == "processes":
            return LocalCluster(n_workers=plan.workers, threads_per_worker=1, processes=True,
                                host="127.0.0.1", dashboard_address=None, silence_logs=logging.WARNING)
        # in-process: Dask's inproc:// transport, nothing listens on the network
        return LocalCluster(n_workers=1, threads_per_worker=plan.workers, processes=False,
                            dashboard_address=None, silence_logs=logging.WARNING)


def open_client(args: argparse.Namespace):
    """A `distributed.Client` on `--scheduler`, or on a new local cluster (`local_plan`:
    `--workers` processes of one thread each, or threads of one in-process worker).

    Raises:
        ArchiveError: Dask is not installed, or the scheduler cannot be reached.
    """
    from engine.errors import ArchiveError

    try:
        from distributed import Client
    except ImportError:
        raise ArchiveError("`cromotex archive` needs Dask and pyarrow: pip install "
                           "'cromotex-review[cluster]'") from None
    logging.getLogger("distributed").setLevel(logging.WARNING)  # its INFO lines drown the bar
    try:
        if args.scheduler:
            return Client(args.scheduler, timeout=30)
        plan = local_plan(args)
        log.info("archive: local cluster of %d %s", plan.workers, plan.mode)
        return Client(local_cluster(plan))
    except (OSError, TimeoutError) as exc:
        where = args.scheduler or "a local cluster"
        raise ArchiveError(f"cannot start or reach the Dask scheduler ({where}): {exc}") from None


def _engine_version() -> str:
    import engine
    return engine.__version__


def check_versions(client) -> None:
    """Every worker runs this client's engine version.

    Raises:
        ArchiveError: naming the workers that differ.
    """
    import engine
    from engine.errors import ArchiveError

    other = {w: v for w, v in client.run(_engine_version).items() if v != engine.__version__}
    if other:
        raise ArchiveError(f"workers run another cromotex-review version than this client "
                           f"({engine.__version__}): {other}; install the same version everywhere")


def _absolute(root: str) -> str:
    return root if os.path.isabs(root) else os.path.join(os.getcwd(), root)


def _tasks(items: Iterator[InputItem], done: dict[str, str], size: int) -> Iterator[list[tuple]]:
    it = iter(items)
    while chunk := list(itertools.islice(it, size)):
        yield [(i.path, i.error, None if i.error else done.get(path_key(i.path))) for i in chunk]


class _Counts:
    def __init__(self) -> None:
        self.scored = self.failed = self.skipped = 0


def _absorb(result, store: ArchiveStore, counts: _Counts, bar: Any) -> None:
    for row in result.rows:
        store.add(row)
        counts.scored += 1
        counts.failed += not row["ok"]
    counts.skipped += len(result.skipped)
    if store.due():
        store.flush()
    if bar is not None:
        bar.update(len(result.rows) + len(result.skipped))
        bar.set_postfix(failed=counts.failed, skipped=counts.skipped, refresh=False)


def run_archive(args: argparse.Namespace, client, spec: WorkerSpec, bundle_id: str, err: TextIO,
                stop_after: int | None = None) -> int:
    """Score every input on `client`'s cluster into `args.out`; returns the exit status.

    `stop_after`: stop (as an interrupt would) once this many rows were flushed (tests).
    """
    from distributed import as_completed

    store = ArchiveStore(args.out, args.flush_every, args.flush_seconds)
    done = store.done_index(bundle_id)
    n_slots = max(1, sum(client.nthreads().values()))
    limit = 2 * n_slots + 2  # every worker thread busy with one task queued behind it
    tasks = _tasks(iter_inputs([_absolute(r) for r in args.roots]), done, max(1, args.task_size))
    bar = None
    if not args.no_progress:
        from tqdm import tqdm
        bar = tqdm(unit="file", file=err, desc="archive", dynamic_ncols=True)
    counts = _Counts()
    chunk_of: dict[Any, list[tuple]] = {}
    retried: set[str] = set()
    pending = as_completed()

    def submit(chunk: list[tuple]) -> None:
        future = client.submit(score_chunk, spec, chunk, pure=False, retries=1)
        chunk_of[future] = chunk
        pending.add(future)

    try:
        for chunk in itertools.islice(tasks, limit):
            submit(chunk)
        for future in pending:
            chunk = chunk_of.pop(future)
            try:
                result = future.result()
            except CromotexError:
                raise  # the bundle, trust or set-up on the worker: nothing will score
            except Exception as exc:  # a worker died (KilledWorker) or a task raised
                log.warning("archive: a task of %d file(s) from %s failed: %r", len(chunk),
                            chunk[0][0], exc)
                if len(chunk) > 1:
                    for one in chunk:  # find the culprit: each file alone
                        submit([one])
                    continue
                path, error, known = chunk[0]
                if path in retried:
                    raise
                retried.add(path)
                submit([(path, WORKER_FAILED.format(reason=type(exc).__name__), None)])
                continue
            finally:
                future.release()
            _absorb(result, store, counts, bar)
            if stop_after is not None and store.rows_written >= stop_after:
                raise KeyboardInterrupt
            for next_chunk in itertools.islice(tasks, 1):
                submit(next_chunk)
    except KeyboardInterrupt:
        store.flush()
        err.write(f"cromotex archive: interrupted; {store.rows_written} rows kept in "
                  f"{store.parts}; run the same command again to resume\n")
        return 130
    finally:
        if bar is not None:
            bar.close()
    n_rows = store.compact()
    err.write(f"cromotex archive: {counts.scored + counts.skipped} files: {counts.scored} scored "
              f"({counts.failed} could not be scored: ok false), {counts.skipped} already archived "
              f"(same bundle and content); {args.out} holds {n_rows} rows\n")
    return 0


def main(argv: list[str]) -> int:
    """`cromotex archive ...` (argv without the subcommand); returns the exit status."""
    try:
        args = build_archive_parser().parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    if args.workers < 1 or args.task_size < 1 or args.flush_every < 1:
        sys.stderr.write("cromotex archive: --workers, --task-size and --flush-every must be >= 1\n")
        return 2
    client = None
    try:
        spec, bundle_id = worker_spec(args)
        ArchiveStore(args.out).done_index(bundle_id)  # an unusable --out fails before the cluster starts
        client = open_client(args)
        check_versions(client)
        return run_archive(args, client, spec, bundle_id, sys.stderr)
    except CromotexError as exc:
        sys.stderr.write(f"cromotex archive: {exc}\n")
        return 2
    finally:
        if client is not None:
            _close(client)


def _close(client) -> None:
    cluster = client.cluster if hasattr(client, "cluster") else None
    client.close()
    if cluster is not None:
        cluster.close()
