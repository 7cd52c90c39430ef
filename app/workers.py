"""Slow work off the GUI thread: a QRunnable that calls a plain function in the
global QThreadPool and reports back through Qt signals (queued to the GUI thread).
"""

from __future__ import annotations

import logging
import time
from typing import Any, Callable

from app.qt import QtCore, Signal

log = logging.getLogger(__name__)


class WorkerSignals(QtCore.QObject):
    """`done(result, seconds)` on success; `failed(exception)` on any exception."""

    done = Signal(object, float)
    failed = Signal(object)


class Worker(QtCore.QRunnable):
    """Runs `fn(*args)` in a pool thread. Engine functions stay synchronous and pure;
    this is the only place they meet threads."""

    def __init__(self, fn: Callable[..., Any], *args: Any, name: str = "") -> None:
        super().__init__()
        self.fn = fn
        self.args = args
        self.name = name or getattr(fn, "__name__", "work")
        self.signals = WorkerSignals()
        self.setAutoDelete(True)

    def run(self) -> None:  # runs in a pool thread
        t0 = time.perf_counter()
        try:
            result = self.fn(*self.args)
        except Exception as exc:  # reported to the GUI, which shows it
            log.info("%s failed: %s", self.name, exc)
            self._emit(self.signals.failed, exc)
            return
        self._emit(self.signals.done, result, time.perf_counter() - t0)

    def _emit(self, signal: Any, *values: Any) -> None:
        """Report back unless the receiver side is gone (the app quit past the
        `wait_for_workers` timeout): then the result is dropped and logged."""
        try:
            signal.emit(*values)
        except RuntimeError as exc:  # "Signal source has been deleted"
            log.debug("%s finished after shutdown; result dropped (%s)", self.name, exc)


def start(fn: Callable[..., Any], *args: Any,
          on_done: Callable[[Any, float], None],
          on_failed: Callable[[BaseException], None],
          pool: QtCore.QThreadPool | None = None, name: str = "") -> Worker:
    """Run `fn(*args)` in `pool` (default: the global pool); call `on_done(result, s)`
    or `on_failed(exc)` on the GUI thread."""
    worker = Worker(fn, *args, name=name)
    worker.signals.done.connect(on_done, QtCore.Qt.ConnectionType.QueuedConnection)
    worker.signals.failed.connect(on_failed, QtCore.Qt.ConnectionType.QueuedConnection)
    (pool or QtCore.QThreadPool.globalInstance()).start(worker)
    return worker


def wait_for_workers(pool: QtCore.QThreadPool | None = None, timeout_ms: int = 15000) -> bool:
    """Drop queued work and wait for running work in `pool` (default: global pool).

    Called when the app quits, so that no worker outlives the objects it reports to.
    Returns True when every worker finished within `timeout_ms` milliseconds.
    """
    pool = pool or QtCore.QThreadPool.globalInstance()
    pool.clear()  # queued, not started: never run
    finished = bool(pool.waitForDone(timeout_ms))
    if not finished:
        log.warning("a worker is still running after %d ms; quitting anyway", timeout_ms)
    return finished
