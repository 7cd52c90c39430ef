"""`ScanProcess`: runs the worklist's scan (`app.worklist.scan_child.run`) in a child
process and reports each file and the end through Qt signals, polled from a queue on
the GUI thread. Cancel with `cancel()`: the scan stops between chunks, and what it
saved stays saved.

Why a process and not a QThread: the scan is mostly Python (readers, SQLite rows), so
a scan thread holds the GIL most of the time, and the GUI thread, which needs it for
every cell the table paints, stalled for up to 2.5 s (bench/worklist.py, 10,000 files).
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import queue as queue_mod
from pathlib import Path

from app.qt import QtCore, Signal
from app.worklist import scan_child

log = logging.getLogger(__name__)

#: Queue polling interval (ms) and most messages handled per poll.
POLL_MS = 50
MAX_PER_POLL = 2000


class ScanProcess(QtCore.QObject):
    """Index `paths` into the store at `store_path`, with the models of `models_dir` when
    `use_models` (the child loads its own copy once the files are listed).

    Signals:
        progress(ScanProgress): one file handled (phase "index", then "score").
        finished_scan(bool, str): (cancelled, error message or "") when the scan ends.
    """

    progress = Signal(object)
    finished_scan = Signal(bool, str)

    def __init__(self, paths: list[str], store_path: Path, models_dir: str | None = None,
                 use_models: bool = False, workers: int = 1, parent: QtCore.QObject | None = None) -> None:
        super().__init__(parent)
        ctx = mp.get_context("spawn")  # no fork of a Qt process
        self._queue = ctx.Queue()
        self._cancel = ctx.Event()
        self._proc = ctx.Process(target=scan_child.run, name="cromotex-scan", daemon=True,
                                 args=([str(p) for p in paths], str(store_path), models_dir, use_models,
                                       self._queue, self._cancel, workers))
        self._timer = QtCore.QTimer(self, interval=POLL_MS)
        self._timer.timeout.connect(self._poll)
        self._finished = False

    def start(self) -> None:
        self._proc.start()
        self._timer.start()

    def cancel(self) -> None:
        self._cancel.set()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def isRunning(self) -> bool:  # noqa: N802 (the QThread name the controller uses)
        return not self._finished

    def wait(self, timeout_ms: int = 60000) -> bool:
        """Handle messages until the scan ends or `timeout_ms` pass (tests, quitting)."""
        deadline = QtCore.QDeadlineTimer(timeout_ms)
        while not self._finished and not deadline.hasExpired():
            self._poll(block_s=0.05)
        return self._finished

    def _poll(self, block_s: float = 0.0) -> None:
        for i in range(MAX_PER_POLL):
            try:
                msg = self._queue.get(timeout=block_s) if (block_s and i == 0) else self._queue.get_nowait()
            except queue_mod.Empty:
                break
            if msg[0] == "progress":
                self.progress.emit(msg[1])
            else:
                self._end(bool(msg[1]), str(msg[2]))
                return
        if not self._finished and not self._proc.is_alive() and self._queue.empty():
            code = self._proc.exitcode
            self._end(self.cancelled, f"The scan process ended unexpectedly (exit code {code}).")

    def _end(self, cancelled: bool, error: str) -> None:
        if self._finished:
            return
        self._finished = True
        self._timer.stop()
        self._proc.join(5)
        self.finished_scan.emit(cancelled, error)
