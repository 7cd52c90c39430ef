"""Opening a long ECG record (longer than 300 s, in a windowed format) in the review window.

`open_long(path)` (worker thread) opens the file with `engine.io.open_ecg` and, for a long
record, reads its first page; it returns None for any other file, which the controller
then reads whole as before. The long-record window rule (`engine.preprocess.long_record`:
at most 30 evenly spaced 10 s windows) and the quality checks run with the scoring,
after the first page is drawn. `show_long_record(controller, long)`
(GUI thread) puts a `LongRecordView` (overview strip + paged paper) in place of the paper
view, shows the header of the record, and scores the windows in a worker: the AI panel
shows the record's findings (mean over the scored windows, as for any record) and the
strip one marker per scored window (height = its probability of the first finding).
The paper view comes back when a record of ordinary length is shown.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.records import EcgInput, EcgRecord, QualityFlags

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LongRecord:
    """A long record opened for review: `source` (`EcgSource`) and `first_page` (its
    first 10 s as an `EcgRecord`, with the file's meta)."""

    source: Any
    first_page: EcgRecord


@dataclass(frozen=True)
class ScoredWindows:
    """The long-record rule applied (`engine.preprocess.long_record.preprocess_source`):
    `record` (the scored windows' samples), `ecg_input` (model windows and report),
    `quality` (flags of the scored windows)."""

    record: EcgRecord
    ecg_input: EcgInput
    quality: QualityFlags


def scored_windows(long: LongRecord) -> ScoredWindows:
    """Read and preprocess the scored windows of `long` (worker thread)."""
    from engine.preprocess.long_record import preprocess_source
    from engine.quality import assess_quality

    record, ecg_input = preprocess_source(long.source)
    return ScoredWindows(record, ecg_input, assess_quality(record, ecg_input))


def open_long(path: str) -> LongRecord | None:
    """A `LongRecord` when `path` is longer than MAX_RECORD_SECONDS and windowed, else None
    (also when it cannot be opened so: the whole read then gives the error)."""
    from engine.errors import CromotexError
    from engine.io.windowed import open_ecg
    from engine.preprocess.ecg import MAX_RECORD_SECONDS
    from engine.io.windowed import probe_duration_s

    seconds = probe_duration_s(path)  # header only: an ordinary file is read once, as before
    if seconds is None or seconds <= MAX_RECORD_SECONDS:
        return None
    try:
        source = open_ecg(path, windowed_only=True)
    except CromotexError as exc:
        log.debug("open_ecg(%s): %s", path, exc)
        return None
    if source is None or source.duration_s <= MAX_RECORD_SECONDS:
        return None
    return LongRecord(source, source.record(0, int(round(10 * source.fs))))


def show_long_record(ctrl: Any, long: LongRecord) -> None:
    """Show `long` in the controller's window and score it (see the module doc)."""
    from app.main_window import TITLE
    from app.views.overview_strip import LongRecordView

    w = ctrl.w
    old = getattr(w, "long_view", None)
    if old is not None:
        w.view_stack.removeWidget(old)
        old.deleteLater()
    view = LongRecordView(long.source, px_per_mm=w.ecg_view.px_per_mm)
    w.long_view = view
    w.view_stack.addWidget(view)
    w.view_stack.setCurrentWidget(view)
    ctrl.record = long.first_page
    ctrl._measure_ecg(None)  # not measured (as before); a pending result is dropped
    ctrl.ecg_predictions = {}
    w.header.set_record(long.first_page)
    w.median_view.set_record(None)
    w.ai_panel.set_ecg_predictions({})
    name = Path(long.source.source.path).name if long.source.source else "ECG"
    w.setWindowTitle(f"{name} ({long.source.duration_s / 3600:.1f} h) — {TITLE}")
    ctrl._pairing_changed()
    view.setFocus()

    def back_to_paper(*_: Any) -> None:  # an ordinary record was shown: drop the long view
        if getattr(w, "long_view", None) is view:
            w.view_stack.removeWidget(view)
            view.deleteLater()
            w.long_view = None
            w.view_stack.setCurrentWidget(w.ecg_view)
        ctrl.ecg_shown.disconnect(back_to_paper)

    ctrl.ecg_shown.connect(back_to_paper)
    if ctrl.predictor is None:
        return

    starts: list[float] = []

    def score(lr: LongRecord) -> dict:
        p, sw = ctrl.predictor, scored_windows(lr)
        starts.extend(sw.ecg_input.report["window_starts_s"])
        return p.ecg_predictions(p.predict_ecg_inputs(sw.ecg_input.windows), sw.quality)

    def done(preds: dict) -> None:
        ctrl._ecg_predicted(preds)
        if preds:
            first = next(iter(preds.values()))
            view.set_window_results(starts, list(first.window_probabilities))

    ctrl._predict("ecg", score, long, done)
