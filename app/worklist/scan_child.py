"""The worklist's scan, run in a child process (no Qt here: the child imports only the
engine). A scan in a thread of the app would hold Python's GIL for most of its time and
freeze the window for up to seconds at a time (bench/worklist.py measured it); in a child
process the window stays responsive and SQLite's WAL lets the app read the rows as they
are written.

Messages put on `queue`: ("progress", ScanProgress) per file, then one
("done", cancelled: bool, error: str).
"""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger(__name__)


def run(paths: list[str], store_file: str, models_dir: str | None, use_models: bool,
        queue: Any, cancel: Any, workers: int = 1) -> None:
    """Index `paths` into `store_file`: first without AI (rows appear at reading speed),
    then, when `use_models`, score them with the bundle in `models_dir` (None: the shipped
    or configured one). `cancel`: a multiprocessing Event."""
    error = ""
    try:
        from engine.errors import CromotexError
        from engine.store import Store, scan
        try:
            with Store(store_file) as store:
                # without models the only pass measures too (with models the AI pass does)
                on_record = None if use_models else _measure
                for item in scan(paths, store, predictor=None, workers=workers, cancel=cancel.is_set,
                                 on_record=on_record):
                    queue.put(("progress", item))
                if use_models and not cancel.is_set():
                    from engine.inference import Predictor
                    predictor = Predictor(models_dir, threads=1)
                    for item in scan(paths, store, predictor=predictor, workers=workers, cancel=cancel.is_set,
                                     quick_index=False):
                        queue.put(("progress", _phase(item, "score")))
        except CromotexError as exc:
            error = str(exc)
    except Exception as exc:  # the child reports, never dies silently
        log.exception("scan failed")
        error = f"The scan stopped on an unexpected error ({type(exc).__name__}: {exc})."
    queue.put(("done", bool(cancel.is_set()), error))


def _measure(record: Any) -> dict[str, Any] | None:
    """engine.measure's values of `record` (stored as the computed measurements)."""
    from engine.measure import measure_ecg
    return measure_ecg(record).to_dict()


def _phase(item: Any, phase: str) -> Any:
    from dataclasses import replace
    return replace(item, phase=phase) if hasattr(item, "phase") else item
