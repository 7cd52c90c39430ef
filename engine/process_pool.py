"""Batch scoring in worker processes: one `Predictor` per process, no shared GIL.

`ProcessScorer(spec, workers)` starts `workers` processes (the "spawn" start
method on every platform: onnxruntime is not fork-safe), each opening its own
`Predictor` from a `PredictorSpec` (bundle re-verified, one intra-op thread per
session). `score(items)` sends file paths to them, `task_size` at a time, and
yields one `engine.batch.FileResult` per item, in input order, with at most
`prefetch` files in flight (bounded memory). Each worker runs exactly what the
thread mode runs (`engine.batch.load_and_score_many`), so outputs are
bit-identical to it and to the app.

Why processes: in one process the Python and numpy work of reading and
preprocessing holds the GIL, so file threads stop scaling at a few cores
(measured on a 16-core machine: 192 ECG/s with 16 threads against 451 ECG/s with
16 processes, docs/results/inference.md). The price is a start-up of about
1-2 s (each process imports the engine and opens the bundle), paid once per
scorer.

A worker that dies (killed by the operating system, out of memory, a crash in a
native file decoder) does not stop the run: the pool is restarted, the file
that was being waited for is retried alone, and a second death on it gives that
file a failed result; the other files in flight are resubmitted.
"""

from __future__ import annotations

import logging
import multiprocessing
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from multiprocessing.connection import wait as wait_ready

from engine.batch import FILES_PER_TASK, FileResult, InputItem, chunks, load_and_score_many
from engine.errors import InferenceError

log = logging.getLogger(__name__)

#: Seconds given to worker processes to exit when the scorer stops, before they are terminated.
STOP_TIMEOUT_S = 10.0

#: Message of a file whose worker process died twice while scoring it.
WORKER_DIED = ("the worker process scoring this file stopped unexpectedly, twice (killed by the "
               "operating system, out of memory, or a crash in a file decoder); the file was "
               "skipped. Try it alone with `cromotex predict FILE --workers 1`.")


@dataclass(frozen=True)
class PredictorSpec:
    """How a worker process opens its `Predictor` (picklable).

    Attributes:
        models: bundle directory (absolute path as str).
        device: "cpu", "cuda" or "auto".
        precision: "fp32" or "int8" (resolved, not "auto": every process scores alike).
        threads: onnxruntime intra-op threads per session (1: the processes are the parallelism).
    """

    models: str
    device: str
    precision: str
    threads: int = 1

    @classmethod
    def of(cls, predictor, threads: int = 1) -> "PredictorSpec":
        """The spec that reopens `predictor`'s bundle, device and precision."""
        return cls(str(predictor.bundle.directory), predictor.device, predictor.precision, threads)

    def open(self):
        """The worker's `engine.inference.Predictor` (bundle verified; models one after the
        other: the processes are the parallelism)."""
        from engine.inference import Predictor

        return Predictor(self.models, device=self.device, precision=self.precision,
                         threads=self.threads, parallel_models=False)


_worker_predictor = None


def _init_worker(spec: PredictorSpec) -> None:
    """Process initialiser: open the bundle once per worker process."""
    global _worker_predictor
    _worker_predictor = spec.open()


def score_in_worker(items: list[InputItem]) -> list[FileResult]:
    """Read, preprocess, quality-check and score files with the worker's Predictor."""
    return load_and_score_many(_worker_predictor, items)


def _stop(pool: ProcessPoolExecutor) -> None:
    """Shut `pool` down; terminate any of its processes still alive after STOP_TIMEOUT_S (a
    worker killed at the wrong moment can leave another blocked on a shared queue lock)."""
    processes = list((getattr(pool, "_processes", None) or {}).values())  # CPython 3.8-3.13
    pool.shutdown(wait=False, cancel_futures=True)
    for proc in _still_running(processes, STOP_TIMEOUT_S):
        log.warning("worker process %s did not stop within %g s; terminating it", proc.pid,
                    STOP_TIMEOUT_S)
        proc.terminate()
        proc.join(1.0)


def _still_running(processes: list, timeout_s: float) -> list:
    """The processes of `processes` (`multiprocessing.Process`) that have not exited after
    waiting up to `timeout_s` for all of them.

    Waits on each process's sentinel (readable once it has exited) instead of joining it:
    the pool's own management thread joins the same processes, and when it reaps a child
    first, `join` / `is_alive` here can report an exited process as alive (waitpid fails
    with ECHILD and `poll` then returns None). A sentinel never lies that way, and a process
    whose sentinel is not ready has not exited, so its pid cannot have been reused."""
    pending = {}
    for proc in processes:
        try:
            pending[proc.sentinel] = proc
        except ValueError:  # a closed Process object: it has been joined and released
            continue
    deadline = time.monotonic() + timeout_s
    while pending and (left := deadline - time.monotonic()) > 0:
        for sentinel in wait_ready(list(pending), left):
            del pending[sentinel]
    return list(pending.values())


def _ready(items: list[InputItem]) -> list[FileResult]:
    """A no-op task: returns once a worker has started and opened the bundle."""
    return []


class ProcessScorer:
    """Scores ECG files in worker processes; reusable for several runs; a context manager.

    Args:
        spec: how each worker opens its Predictor.
        workers: number of processes (>= 1).
        prefetch: most files in flight (bounds memory; at least 2 tasks per worker, so
            that every worker is busy with one queued).
        task_size: files sent to a worker together.
        task: the function run in the workers on a list of items, returning one FileResult
            per item (module-level, picklable); default `score_in_worker`: read, preprocess,
            quality-check and score the files with the worker's Predictor.
    """

    def __init__(self, spec: PredictorSpec, workers: int, prefetch: int | None = None,
                 task_size: int = FILES_PER_TASK,
                 task: Callable[[list[InputItem]], list[FileResult]] | None = None):
        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        self.spec = spec
        self.workers = int(workers)
        self.task_size = max(1, int(task_size))
        self.prefetch = max(int(prefetch or 0), 2 * self.workers * self.task_size)
        self.task = task or score_in_worker
        self.restarts = 0
        self._pool: ProcessPoolExecutor | None = None

    def __enter__(self) -> "ProcessScorer":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _new_pool(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"),
                                   initializer=_init_worker, initargs=(self.spec,))

    def start(self) -> float:
        """Start every worker now (each imports the engine and opens the bundle); returns the
        seconds it took. Optional: `score` starts the pool on first use.

        Raises:
            InferenceError: the worker processes cannot start or cannot open the bundle.
        """
        t = time.perf_counter()
        if self._pool is None:
            self._pool = self._new_pool()
        # the pool starts processes on demand; enough simultaneous no-op tasks start them all
        probes = [self._pool.submit(_ready, [InputItem(str(i))]) for i in range(4 * self.workers)]
        try:
            for f in probes:
                f.result()
        except BrokenProcessPool as exc:
            self.close()
            raise InferenceError(f"the worker processes could not start ({exc}); "
                                 "use --parallel threads") from None
        return time.perf_counter() - t

    def close(self) -> None:
        """Stop the worker processes (those still running after STOP_TIMEOUT_S are terminated)."""
        if self._pool is not None:
            _stop(self._pool)
            self._pool = None

    def _restart(self) -> None:
        """A fresh pool after a worker died; raises InferenceError if its workers cannot start
        (a file cannot cause that: the probe reads none)."""
        if self._pool is not None:
            _stop(self._pool)
        self._pool = self._new_pool()
        self.restarts += 1
        try:
            self._pool.submit(_ready, []).result()
        except BrokenProcessPool as exc:
            self.close()
            raise InferenceError(f"the worker processes could not be restarted ({exc}); "
                                 "use --parallel threads") from None

    def _submit(self, items: list[InputItem]) -> Future:
        if self._pool is None:
            self._pool = self._new_pool()
        return self._pool.submit(self.task, items)

    def _alone(self, item: InputItem) -> FileResult:
        """`item` scored alone in the (fresh) pool, so that a death is this file's doing."""
        try:
            return self._submit([item]).result()[0]
        except BrokenProcessPool:
            self._restart()
            return FileResult(item.path, False, WORKER_DIED)

    def _recover(self, task: list[InputItem], pending: deque) -> list[FileResult]:
        """A worker died: restart the pool, retry each file of `task` alone, resubmit the
        unfinished tasks of `pending`."""
        log.warning("a worker process stopped unexpectedly while scoring %d file(s) from %s on; "
                    "restarting the workers", len(task), task[0].path)
        self._restart()
        results = [self._alone(item) for item in task]
        kept = [(t, f) if f.done() and not f.cancelled() and f.exception() is None
                else (t, self._submit(t)) for t, f in pending]
        pending.clear()
        pending.extend(kept)
        return results

    def score(self, items: Iterable[InputItem]) -> Iterator[FileResult]:
        """One `FileResult` per item, in input order, as soon as each is done."""
        it = chunks(items, self.task_size)
        pending: deque[tuple[list[InputItem], Future]] = deque()

        def fill() -> None:
            while len(pending) * self.task_size < self.prefetch:
                task = next(it, None)
                if task is None:
                    return
                pending.append((task, self._submit(task)))

        fill()
        while pending:
            task, future = pending.popleft()
            try:
                results = future.result()
            except BrokenProcessPool:
                results = self._recover(task, pending)
            fill()
            yield from results
