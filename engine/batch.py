"""Batch scoring of many ECG files: input expansion and an overlapped pipeline.

`iter_inputs(args)` turns command-line arguments (files, folders searched
recursively, glob patterns) into a lazy stream of `InputItem`s, so that a run
over 100,000 files never holds the list in memory.

`score_files(predictor, items)` scores files in a small thread pool with a
bounded look-ahead queue (`engine.process_pool.ProcessScorer` runs the same
per-file work, `load_and_score`, in worker processes instead). Results come out in input order, one `FileResult`
per item, as soon as each is done; memory is bounded by `prefetch` files. A
file that cannot be read gives a failed result with the reader's message and
the run goes on. Two modes:

- default (`micro_batch=0`): each worker thread takes a whole file: read,
  preprocess, quality-check and score it (each record's windows in their own
  onnxruntime run, bit-identical to the app). With one intra-op thread per
  session and one worker per core, the cores never wait on each other: on the
  2-core machine this scored 103-107 ECG/s against 83 ECG/s for readers feeding
  a 2-thread inference loop (docs/results/inference.md).
- `micro_batch=N > 0`: reader threads prepare files while the caller's thread
  runs onnxruntime on micro-batches of windows gathered across files.
"""

from __future__ import annotations

import glob
import logging
import os
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from engine.errors import CromotexError, InferenceError
from engine.io import read_ecg
from engine.preprocess import preprocess_ecg
from engine.quality import assess_quality
from engine.records import EcgInput, Prediction, QualityFlags

log = logging.getLogger(__name__)

#: File suffixes picked up when a folder is searched (a WFDB record is named by
#: its header; suffix-less files are often DICOM). Signal companions (.dat,
#: .mat, ...) and other files (.csv, .txt, images) are skipped.
FOLDER_SUFFIXES = frozenset({".hea", ".dcm", ".dicom", ""})
_GLOB_CHARS = set("*?[")


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
    """

    file: str
    ok: bool
    error: str | None = None
    predictions: dict[str, Prediction] | None = None
    preprocessing: dict[str, Any] | None = None
    quality: QualityFlags | None = None


def _walk(folder: Path) -> Iterator[str]:
    """Files under `folder` with a FOLDER_SUFFIXES suffix, sorted per directory, lazily."""
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if not name.startswith(".") and Path(name).suffix.lower() in FOLDER_SUFFIXES:
                yield os.path.join(root, name)


def iter_inputs(args: Iterable[str]) -> Iterator[InputItem]:
    """Expand files, folders (recursive) and glob patterns into input items, lazily.

    A named file is always tried (a bad one gives a failed result). A folder yields
    its ECG files (see FOLDER_SUFFIXES). A pattern is expanded with `glob`
    (`**` recursive); folders it matches are searched. An argument that matches
    nothing yields one item carrying an error.
    """
    for arg in args:
        p = Path(arg)
        if p.is_dir():
            found = False
            for f in _walk(p):
                found = True
                yield InputItem(f)
            if not found:
                yield InputItem(arg, f"no ECG files (*.hea, *.dcm) found in folder {arg}")
        elif p.exists() or not (_GLOB_CHARS & set(arg)):
            yield InputItem(arg)
        else:
            found = False
            for match in glob.iglob(arg, recursive=True):
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

    @property
    def n_windows(self) -> int:
        return 0 if self.ecg_input is None else int(self.ecg_input.windows.shape[0])


def load_file(item: InputItem) -> _Loaded:
    """Read, preprocess and quality-check one file; never raises."""
    if item.error:
        return _Loaded(item, item.error)
    try:
        record = read_ecg(item.path, annotations=False)  # the output has no DICOM statements
        ecg_input = preprocess_ecg(record)
        return _Loaded(item, None, ecg_input, assess_quality(record, ecg_input))
    except CromotexError as exc:
        return _Loaded(item, str(exc))
    except Exception as exc:  # a reader bug must not stop a 100,000-file run
        log.exception("unexpected error on %s", item.path)
        return _Loaded(item, f"unexpected error reading this file ({type(exc).__name__}: {exc})")


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
            out.append(FileResult(g.item.path, False, g.error,
                                  preprocessing=g.ecg_input.report if g.ecg_input else None,
                                  quality=g.quality))
            continue
        stop = start + g.n_windows
        part = {p: s.rows(start, stop) for p, s in scores.items()}
        start = stop
        out.append(FileResult(g.item.path, True, None, predictor.ecg_predictions(part, g.quality),
                              g.ecg_input.report, g.quality))
    return out


def load_and_score(predictor: Any, item: InputItem) -> FileResult:
    """Read, preprocess, quality-check and score one file in the calling thread; never raises
    for a bad file (a failed result instead)."""
    return _score_group(predictor, [load_file(item)])[0]


def score_files(predictor: Any, items: Iterable[InputItem], *, workers: int = 2,
                prefetch: int = 32, micro_batch: int = 0) -> Iterator[FileResult]:
    """Score files in input order, several at a time.

    Args:
        predictor: an `engine.inference.Predictor`. For the default mode, one opened with
            `threads=1, parallel_models=False` is fastest: the parallelism is across files.
        items: input items (e.g. from `iter_inputs`), consumed lazily.
        workers: worker threads: whole files in parallel (default mode) or readers
            feeding the inference loop (`micro_batch` > 0).
        prefetch: most files in flight (bounds memory).
        micro_batch: 0 (default): each record's windows in their own onnxruntime run,
            exactly as `Predictor.predict_ecg` does, so outputs are bit-identical to the
            app's. N > 0: gather windows of several files already read, up to N per run
            (onnxruntime's kernels depend on the batch size, so outputs then differ from
            the app's: ~1e-7 with fp32 models; with int8 models, whose dynamic
            quantisation computes activation scales over the whole run, up to ~4e-4 in
            probability on the shipped bundle).

    Yields:
        One `FileResult` per item, in order.
    """
    it = iter(items)
    pending: deque[Future] = deque()
    task = load_file if micro_batch > 0 else (lambda item: load_and_score(predictor, item))
    with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="cromotex-file") as pool:
        def fill() -> None:
            while len(pending) < max(1, prefetch):
                item = next(it, None)
                if item is None:
                    return
                pending.append(pool.submit(task, item))

        fill()
        while pending:
            first = pending.popleft().result()
            fill()
            if micro_batch <= 0:
                yield first
                continue
            group, n = [first], first.n_windows
            while pending and n < micro_batch and pending[0].done():
                group.append(pending.popleft().result())
                n += group[-1].n_windows
                fill()
            yield from _score_group(predictor, group)
