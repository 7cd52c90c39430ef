"""`ScanThread`: runs `engine.store.scan` off the GUI thread with its own store
connection (SQLite: one connection per thread), reporting each file and the end
through queued Qt signals. Cancel with `cancel()`: the scan stops between chunks,
and what it saved stays saved."""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

from app.qt import QtCore, Signal
from engine.errors import CromotexError
from engine.store import Store, scan

log = logging.getLogger(__name__)


class ScanThread(QtCore.QThread):
    """Index `paths` into the store at `store_path`.

    Signals:
        progress(ScanProgress): one file handled (indexed, unchanged or failed).
        finished_scan(bool, str): (cancelled, error message or "") when the scan ends.
    """

    progress = Signal(object)
    finished_scan = Signal(bool, str)

    def __init__(self, paths: list[str], store_path: Path, predictor: Any | None = None,
                 workers: int = 1, parent: QtCore.QObject | None = None) -> None:
        super().__init__(parent)
        self.paths = [str(p) for p in paths]
        self.store_path = Path(store_path)
        self.predictor = predictor
        self.workers = workers
        self._cancel = threading.Event()

    def cancel(self) -> None:
        self._cancel.set()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def run(self) -> None:  # the scan thread
        error = ""
        store = None
        try:
            store = Store(self.store_path)
            for item in scan(self.paths, store, predictor=self.predictor, workers=self.workers,
                             cancel=self._cancel):
                self.progress.emit(item)
        except CromotexError as exc:
            error = str(exc)
        except Exception as exc:  # never let the scan take the app down
            log.exception("scan failed")
            error = f"The scan stopped on an unexpected error ({type(exc).__name__}: {exc})."
        finally:
            if store is not None:
                store.close()
        self.finished_scan.emit(self._cancel.is_set(), error)
