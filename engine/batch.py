"""Batch scoring of many ECG files: input expansion and an overlapped pipeline.

`iter_inputs(args)` turns command-line arguments (files, folders searched
recursively, glob patterns) into a lazy stream of `InputItem`s, so that a run
over 100,000 files never holds the list in memory.

`score_files(predictor, items)` scores files in a small thread pool with a
bounded look-ahead queue (`engine.process_pool.ProcessScorer` runs the same
work, `load_and_score_many`, in worker processes instead). Results come out in
input order, one `FileResult` per item, as soon as each is done; memory is
bounded by `prefetch` files. A file that cannot be read gives a failed result
with the reader's message and the run goes on. Two modes:

- default (`micro_batch=0`): each worker thread takes a task of up to
  FILES_PER_TASK whole files: reads, preprocesses and quality-checks them, then
  scores them model by model (each record's windows in their own onnxruntime
  run, bit-identical to the app). With one intra-op thread per session and one
  worker per core, the cores never wait on each other (docs/results/inference.md).
- `micro_batch=N > 0`: reader threads prepare files while the caller's thread
  runs onnxruntime on micro-batches of windows gathered across files.
"""

from __future__ import annotations

import glob
import itertools
import logging
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from engine.errors import CromotexError, InferenceError
from engine.pairing import identity
from engine.measure import measure_ecg
from engine.preprocess.long_record import read_for_scoring
from engine.quality import assess_quality
from engine.records import EcgInput, EcgRecord, Prediction, QualityFlags

log = logging.getLogger(__name__)

#: File suffixes picked up when a folder is searched (a WFDB record is named by
#: its header; suffix-less files are often DICOM). Signal companions (.dat,
#: .mat, ...) and other files (.csv, .txt, images) are skipped.
FOLDER_SUFFIXES = frozenset({".hea", ".dcm", ".dicom", "", ".scp", ".edf", ".bdf"})
#: XML suffixes picked up in a folder when the file is a GE MUSE, Philips or HL7 aECG ECG
#: (by its root element: other XML files in the folder are left alone).
XML_FOLDER_SUFFIXES = frozenset({".xml"})
_GLOB_CHARS = set("*?[")
#: Files one worker task reads, preprocesses and scores together (`load_and_score_many`):
#: on the 2-core machine 8 files per task took 0.4 ms less file work per file and, model by
#: model, 0.6 ms less inference than one file per task; worker processes scored 0.875, 0.90,
#: 0.93 and 0.93 of pure inference with 4, 8, 16 and 32 (docs/results/inference.md).
FILES_PER_TASK = 16


def files_per_task(n_inputs: int | None, workers: int) -> int:
    """Files per worker task: FILES_PER_TASK, or fewer when the run is known to hold only
    `n_inputs` files, so that every worker gets some (None: unknown, a large run)."""
    if n_inputs is None:
        return FILES_PER_TASK
    return max(1, min(FILES_PER_TASK, -(-n_inputs // max(1, workers))))


@dataclass(frozen=True)
class InputItem:
    """One input: a path to score, or an argument that matched nothing (`error`)."""

    path: str
    error: str | None = None


@dataclass(frozen=True)
class FileResult:
    """The outcome for one input file.

    Attributes:
        file: the path as given / found.
        ok: True when the file was scored.
        error: the reason it was not (reader / preprocessing / inference message).
        predictions: pathology -> Prediction when ok.
        preprocessing: `EcgInput.report` when preprocessing succeeded.
        quality: signal-quality flags when preprocessing succeeded.
        device_measurements: the file's `meta["device_measurements"]` when it was read.
        statements: the file's `meta["statements"]` when it was read.
        identity: the record's patient identity fields (`engine.pairing.identity`) when it
            was read, for the pairing with a chest X-ray.
        measurements: `engine.measure` result (`EcgMeasurements.to_dict()`) when
            the record was read; None otherwise.
    """

    file: str
    ok: bool
    error: str | None = None
    predictions: dict[str, Prediction] | None = None
    preprocessing: dict[str, Any] | None = None
    quality: QualityFlags | None = None
    device_measurements: dict[str, float] | None = None
    statements: list[dict[str, Any]] | None = None
    identity: dict[str, Any] | None = None
    measurements: dict[str, Any] | None = None


def _walk(folder: Path) -> Iterator[str]:
    """Files under `folder` with a FOLDER_SUFFIXES suffix, sorted per directory, lazily."""
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            suffix = Path(name).suffix.lower()
            if suffix in XML_FOLDER_SUFFIXES and not name.startswith("."):
                if _is_ecg_xml(Path(root) / name):
                    yield str(Path(root) / name)
                continue
            if not name.startswith(".") and suffix in FOLDER_SUFFIXES:
                yield os.path.join(root, name)


def _is_ecg_xml(path: Path) -> bool:
    """Whether `path` is an XML ECG (GE MUSE, Philips, HL7 aECG) by its first bytes."""
    from engine.io.xml_common import xml_flavour

    try:
        with open(path, "rb") as fh:
            return xml_flavour(fh.read(8192)) in ("muse-xml", "philips-xml", "hl7-aecg")
    except OSError:
        return True  # let the reader give its message for an unreadable file
def _missing_folder(arg: str) -> str | None:
    """The message for an argument naming a folder that does not exist, else None: a path
    ending in a separator, or a suffix-less path that is neither a file, a folder nor a WFDB
    record name (no `<arg>.hea`): the reader would call it a missing "ECG file"."""
    p = Path(arg)
    if os.path.lexists(arg):
        return None
    if arg.endswith(("/", os.sep)):
        return f"The folder {arg} does not exist. Check the path."
    if not p.suffix and not Path(arg + ".hea").exists():
        return f"No folder or file named {arg} exists. Check the path."
    return None


def iter_inputs(args: Iterable[str]) -> Iterator[InputItem]:
    """Expand files, folders (recursive) and glob patterns into input items, lazily.

    A named file is always tried (a bad one gives a failed result). A folder yields
    its ECG files (see FOLDER_SUFFIXES), sorted per directory. A pattern is expanded
    with `glob` (`**` recursive) and its matches sorted (the one list held in memory,
    a path per match); folders it matches are searched. An argument that matches
    nothing, or names a folder that does not exist, yields one item carrying an error.
    """
    for arg in args:
        p = Path(arg)
        if p.is_dir():
            found = False
            for f in _walk(p):
                found = True
                yield InputItem(f)
            if not found:
                yield InputItem(arg, f"no ECG files (*.hea, *.dcm, *.scp, *.edf, *.bdf, ECG *.xml) found in "
                                     f"folder {arg}")
        elif not (_GLOB_CHARS & set(arg)) and (missing := _missing_folder(arg)):
            yield InputItem(arg, missing)
        elif p.exists() or not (_GLOB_CHARS & set(arg)):
            yield InputItem(arg)
        else:
            found = False
            for match in sorted(glob.iglob(arg, recursive=True)):  # sorted: a stable order
                found = True
                if os.path.isdir(match):
                    yield from (InputItem(f) for f in _walk(Path(match)))
                else:
                    yield InputItem(match)
            if not found:
                yield InputItem(arg, f"no file matches {arg!r}")


@dataclass
class _Loaded:
    item: InputItem
    error: str | None = None
    ecg_input: EcgInput | None = None
    quality: QualityFlags | None = None
    device_measurements: dict[str, float] | None = None
    statements: list[dict[str, Any]] | None = None
    identity: dict[str, Any] | None = None
    measurements: dict[str, Any] | None = None
    meta: dict[str, Any] | None = None      # the record's meta, when it was read
    format: str | None = None               # the record's `Source.format`, when it was read
    extra: Any = None                       # what `load_file(on_record=...)` returned

    @property
    def n_windows(self) -> int:
        return 0 if self.ecg_input is None else int(self.ecg_input.windows.shape[0])

    def take_record(self, record: EcgRecord, on_record: Callable[[EcgRecord], Any] | None,
                    logger: logging.Logger) -> None:
        """Keep `record`'s meta, format, device measurements and statements; `extra` is
        `on_record(record)` when given (stays None, logged on `logger`, when it raises)."""
        self.meta, self.format = record.meta, record.source.format if record.source else None
        self.device_measurements = record.meta.get("device_measurements")
        self.statements = _statements(record.meta.get("statements"))
        if on_record is not None:
            try:
                self.extra = on_record(record)
            except Exception:  # an optional extra must not fail the file
                logger.exception("on_record failed on %s", self.item.path)


def load_file(item: InputItem, on_record: Callable[[EcgRecord], Any] | None = None) -> _Loaded:
    """Read, preprocess and quality-check one file; never raises. `on_record(record)`, when
    given, runs on the record read (e.g. measurements for the study store); its result is
    `extra` (None, logged, when it raises)."""
    if item.error:
        return _Loaded(item, item.error)
    loaded = _Loaded(item)
    try:
        # XML readers keep measurements and statements; a long record is read window by window
        record, loaded.ecg_input = read_for_scoring(item.path, annotations=False)
        loaded.take_record(record, on_record, log)
        loaded.quality = assess_quality(record, loaded.ecg_input)
        loaded.identity, loaded.measurements = identity(record.meta), _measure(record)
        return loaded
    except CromotexError as exc:
        return _failed(loaded, str(exc))
    except Exception as exc:  # a reader bug must not stop a 100,000-file run
        log.exception("unexpected error on %s", item.path)
        return _failed(loaded, f"unexpected error reading this file ({type(exc).__name__}: {exc})")


def _failed(loaded: _Loaded, error: str) -> _Loaded:
    """`loaded` as a failed file: no input, quality, measurements, statements or identity (its
    `meta` and `format` stay, for the study store)."""
    loaded.error = error
    loaded.ecg_input = loaded.quality = loaded.device_measurements = loaded.statements = None
    loaded.identity = loaded.measurements = None
    return loaded


def _statements(items: Any) -> list[dict[str, Any]] | None:
    """`meta["statements"]` as a JSON list of {text, code, confirmed} (plain strings of older
    readers become {"text": s, "code": None, "confirmed": None}); None when there are none."""
    if not items:
        return None
    return [dict(item) if isinstance(item, dict) else {"text": str(item), "code": None, "confirmed": None}
            for item in items]


def _measure(record: Any) -> dict[str, Any] | None:
    """`engine.measure` of `record` as a dict; None (logged) if measuring fails,
    which never fails the file."""
    try:
        return measure_ecg(record).to_dict()
    except Exception:  # measurement is an add-on: it must not stop scoring
        log.exception("measurement failed")
        return None


def _score_group(predictor: Any, group: list[_Loaded]) -> list[FileResult]:
    good = [g for g in group if g.error is None]
    scores = None
    if good:
        windows = np.concatenate([g.ecg_input.windows for g in good]) if len(good) > 1 \
            else good[0].ecg_input.windows
        try:
            scores = predictor.predict_ecg_inputs(windows)
        except InferenceError as exc:
            if len(good) == 1:
                for g in good:
                    g.error = str(exc)
            else:  # find the culprit: score one by one
                return [r for g in group for r in _score_group(predictor, [g])]
    out, start = [], 0
    for g in group:
        if g.error is not None:
            out.append(_file_result(predictor, g, None))
            continue
        stop = start + g.n_windows
        out.append(_file_result(predictor, g, {p: s.rows(start, stop) for p, s in scores.items()}))
        start = stop
    return out


def _file_result(predictor: Any, g: _Loaded, scores: dict | None) -> FileResult:
    """The result of a loaded file: failed when it has an error, else its predictions from
    `scores` (pathology -> `WindowScores` of its windows)."""
    if g.error is not None:
        return FileResult(g.item.path, False, g.error,
                          preprocessing=g.ecg_input.report if g.ecg_input else None, quality=g.quality,
                          device_measurements=g.device_measurements, statements=g.statements,
                          identity=g.identity, measurements=g.measurements)
    return FileResult(g.item.path, True, None, predictor.ecg_predictions(scores, g.quality),
                      g.ecg_input.report, g.quality, g.device_measurements, g.statements,
                      g.identity, g.measurements)


def _scores_each(predictor: Any, good: list[_Loaded]) -> list[dict | None]:
    """Window scores of each loaded record (each in its own run), None where inference
    failed (its `error` is then set)."""
    try:
        return predictor.predict_ecg_inputs_each([g.ecg_input.windows for g in good])
    except InferenceError as exc:
        if len(good) == 1:
            good[0].error = str(exc)
            return [None]
        return [s for g in good for s in _scores_each(predictor, [g])]  # find the culprit


def load_and_score_many(predictor: Any, items: list[InputItem]) -> list[FileResult]:
    """Read, preprocess, quality-check and score several files in the calling thread, in
    stages: every file is loaded first, then each model runs over all the records (each
    record in its own onnxruntime run: the same bits as one file at a time). The per-file
    code and each model's weights then stay in the CPU caches instead of evicting each
    other (FILES_PER_TASK). Never raises for a bad file (a failed result instead).

    Returns:
        One `FileResult` per item, in order.
    """
    loaded = [load_file(item) for item in items]
    good = [g for g in loaded if g.error is None]
    scores = dict(zip(map(id, good), _scores_each(predictor, good))) if good else {}
    return [_file_result(predictor, g, scores.get(id(g))) for g in loaded]


def load_and_score_loaded(predictor: Any | None, items: list[InputItem],
                          on_record: Callable[[EcgRecord], Any] | None = None
                          ) -> list[tuple[FileResult, _Loaded]]:
    """`load_and_score_many`, also giving each file's loaded state (its `meta`, `format` and
    `on_record` result) for the study store's scan. `predictor` None: read, preprocess and
    quality-check only (the results then have no predictions)."""
    loaded = [load_file(item, on_record) for item in items]
    if predictor is None:
        return [(FileResult(g.item.path, g.error is None, g.error,
                            preprocessing=g.ecg_input.report if g.ecg_input else None, quality=g.quality,
                            device_measurements=g.device_measurements, statements=g.statements,
                            identity=g.identity, measurements=g.measurements), g)
                for g in loaded]
    good = [g for g in loaded if g.error is None]
    scores = dict(zip(map(id, good), _scores_each(predictor, good))) if good else {}
    return [(_file_result(predictor, g, scores.get(id(g))), g) for g in loaded]


def load_and_score(predictor: Any, item: InputItem) -> FileResult:
    """`load_and_score_many` of one file."""
    return load_and_score_many(predictor, [item])[0]


def chunks(items: Iterable[InputItem], size: int) -> Iterator[list[InputItem]]:
    """Consecutive lists of `size` items (the last may be shorter), lazily."""
    it = iter(items)
    while chunk := list(itertools.islice(it, max(1, size))):
        yield chunk


def score_files(predictor: Any, items: Iterable[InputItem], *, workers: int = 2,
                prefetch: int = 32, micro_batch: int = 0,
                task_size: int = FILES_PER_TASK) -> Iterator[FileResult]:
    """Score files in input order, several at a time.

    Args:
        predictor: an `engine.inference.Predictor`. For the default mode, one opened with
            `threads=1, parallel_models=False` is fastest: the parallelism is across files.
        items: input items (e.g. from `iter_inputs`), consumed lazily.
        workers: worker threads: whole files in parallel (default mode) or readers
            feeding the inference loop (`micro_batch` > 0).
        prefetch: most files in flight (bounds memory; in the default mode at least two
            tasks of `task_size` files per worker).
        micro_batch: 0 (default): each record's windows in their own onnxruntime run,
            exactly as `Predictor.predict_ecg` does, so outputs are bit-identical to the
            app's. N > 0: gather windows of several files already read, up to N per run
            (onnxruntime's kernels depend on the batch size, so outputs then differ from
            the app's: ~1e-7 with fp32 models; with int8 models, whose dynamic
            quantisation computes activation scales over the whole run, up to ~4e-4 in
            probability on the shipped bundle).
        task_size: files a worker handles together in the default mode
            (`load_and_score_many`; same outputs whatever the value).

    Yields:
        One `FileResult` per item, in order.
    """
    if micro_batch <= 0:
        yield from _score_chunks(predictor, items, workers, prefetch, task_size)
        return
    it = iter(items)
    pending: deque[Future] = deque()
    with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="cromotex-file") as pool:
        def fill() -> None:
            while len(pending) < max(1, prefetch):
                item = next(it, None)
                if item is None:
                    return
                pending.append(pool.submit(load_file, item))

        fill()
        while pending:
            first = pending.popleft().result()
            fill()
            group, n = [first], first.n_windows
            while pending and n < micro_batch and pending[0].done():
                group.append(pending.popleft().result())
                n += group[-1].n_windows
                fill()
            yield from _score_group(predictor, group)


def _score_chunks(predictor: Any, items: Iterable[InputItem], workers: int, prefetch: int,
                  task_size: int) -> Iterator[FileResult]:
    """The default mode of `score_files`: `load_and_score_many` on chunks of files in threads."""
    it = chunks(items, task_size)
    pending: deque[Future] = deque()
    limit = max(prefetch, 2 * workers * task_size)  # every worker busy, one task queued
    with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="cromotex-file") as pool:
        def fill() -> None:
            while len(pending) * task_size < limit:
                chunk = next(it, None)
                if chunk is None:
                    return
                pending.append(pool.submit(load_and_score_many, predictor, chunk))

        fill()
        while pending:
            done = pending.popleft().result()
            fill()
            yield from done
