"""Indexing ECG files into the study store: `scan(paths, store, ...)`.

Inputs: folders (searched recursively, following symbolic links, each real
folder once: a link loop gives one error row and the scan goes on), DICOMDIR
files (the files they reference) and single files. A folder yields the files
`engine.batch` scores (WFDB headers, DICOM / suffix-less files, ECG XML).

Each file is read with `engine.io.read_ecg` and scored with the batch
pipeline's per-file builder (`engine.batch.load_and_score_loaded`, the code
`cromotex predict` runs), in chunks of `chunk` files on `workers` threads,
while the caller's thread writes each chunk to the store in one short
transaction. Progress is yielded per file; `cancel()` (or an Event) stops the
scan between chunks, keeping what was saved.

Incremental: a file whose path, size and mtime match its row is skipped; when
size or mtime changed, its sha256 decides (same content: only size/mtime are
updated). A file scored by another model bundle than `predictor`'s is scored
again. A WFDB record's size/mtime/hash cover its header and the signal files
the header names.

A bad file never stops the scan: its row carries the error (unreadable,
vanished, changed while being read, symlink loop, not an ECG).
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.batch import FOLDER_SUFFIXES, XML_FOLDER_SUFFIXES, FileResult, InputItem, _is_ecg_xml, \
    load_and_score_loaded
from engine.predict_output import quality_json
from engine.records import EcgRecord
from engine.store.db import Store
from engine.store.fields import acquired_iso, patient_key, to_json
from engine.store.index import upsert_ecg

log = logging.getLogger(__name__)

_HASH_CHUNK = 1 << 20
#: Most bytes of a WFDB header read to find its signal files.
_MAX_HEADER = 1 << 20
#: DICOM Media Storage Directory Storage (a DICOMDIR).
DICOMDIR_UID = "1.2.840.10008.1.3.10"


@dataclass(frozen=True)
class ScanProgress:
    """One file handled (yielded by `scan`), with running totals.

    Attributes:
        path: the file (absolute) or folder the item is about.
        phase: "index" (reading the files' data) or "score" (the AI pass of a two-pass scan:
            `scan(..., predictor, quick_index=True)`; totals restart at 0).
        status: "indexed" (read and saved), "unchanged" (skipped: already indexed), or
            "failed" (saved with its error).
        error: why it failed (None otherwise).
        ecg_id: its row in the store (None when nothing was saved, e.g. a folder error).
        done, indexed, unchanged, failed: totals so far.
    """

    path: str
    status: str
    error: str | None
    ecg_id: int | None
    done: int
    indexed: int
    unchanged: int
    failed: int
    phase: str = "index"


@dataclass(frozen=True)
class ScanSummary:
    """Totals of a finished (or cancelled) scan."""

    done: int
    indexed: int
    unchanged: int
    failed: int
    cancelled: bool
    seconds: float


# ---------------------------------------------------------------- inputs
def _wanted(name: str, path: str) -> bool:
    if name.startswith(".") or name.upper() == "DICOMDIR":
        return False
    suffix = Path(name).suffix.lower()
    if suffix in XML_FOLDER_SUFFIXES:
        return _is_ecg_xml(Path(path))
    return suffix in FOLDER_SUFFIXES


def _walk(folder: str) -> Iterator[tuple[str, str | None]]:
    """(file, None) for the ECG files under `folder`, (path, error) for what cannot be
    searched; symbolic links are followed, each real folder visited once."""
    seen: set[tuple[int, int]] = set()
    stack = [os.path.abspath(folder)]
    while stack:
        d = stack.pop()
        try:
            st = os.stat(d)
        except OSError as exc:
            yield d, f"cannot open the folder {d} ({exc.strerror})"
            continue
        if (st.st_dev, st.st_ino) in seen:
            yield d, (f"{d} is a symbolic link to a folder already searched (a link loop or a "
                      f"second link); skipped")
            continue
        seen.add((st.st_dev, st.st_ino))
        try:
            with os.scandir(d) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as exc:
            yield d, f"cannot list the folder {d} ({exc.strerror}); check its permissions"
            continue
        subdirs = []
        for e in entries:
            if e.name.startswith("."):
                continue
            try:
                if e.is_symlink():
                    os.stat(e.path)  # raises for a loop (ELOOP) or a dangling link
                is_dir = e.is_dir()
            except OSError as exc:
                what = "a symbolic link loop" if exc.errno == 40 else f"a broken link ({exc.strerror})"
                yield e.path, f"{e.path} is {what}; skipped"
                continue
            if is_dir:
                subdirs.append(e.path)
            elif _wanted(e.name, e.path):
                yield e.path, None
        stack.extend(reversed(subdirs))


def _is_dicomdir(path: Path) -> bool:
    if path.name.upper() == "DICOMDIR":
        return True
    try:
        with open(path, "rb") as fh:
            head = fh.read(512)
    except OSError:
        return False
    return head[128:132] == b"DICM" and DICOMDIR_UID.encode() in head


def _dicomdir_files(path: Path) -> Iterator[tuple[str, str | None]]:
    """The files a DICOMDIR references (IMAGE / WAVEFORM / ... records)."""
    import pydicom

    try:
        ds = pydicom.dcmread(path, force=True)
        records = list(ds.DirectoryRecordSequence)
    except Exception as exc:  # pydicom raises many kinds on a damaged file
        yield str(path), f"{path} could not be read as a DICOMDIR ({type(exc).__name__}: {exc})"
        return
    root = path.parent
    for rec in records:
        ref = rec.get("ReferencedFileID")
        if ref is None:
            continue
        parts = [ref] if isinstance(ref, str) else list(ref)
        target = root.joinpath(*parts)
        if not target.exists():  # media written on Windows / in upper case
            alt = root.joinpath(*(p.upper() for p in parts))
            target = alt if alt.exists() else target
        yield str(target), None if target.exists() else f"{target} is listed in {path} but missing"


def iter_scan_inputs(paths: Iterable[str | os.PathLike]) -> Iterator[tuple[str, str | None]]:
    """(absolute path, error or None) for every file the arguments name (folders recursive,
    DICOMDIRs expanded), lazily."""
    for arg in paths:
        p = Path(arg)
        if p.is_dir():
            yield from _walk(str(p))
        elif p.is_file() and _is_dicomdir(p):
            yield from _dicomdir_files(p.absolute())
        elif p.exists():
            yield str(p.absolute()), None
        else:
            yield str(p.absolute()), f"{p} does not exist (moved, deleted or a broken link)"


# ---------------------------------------------------------------- content
def content_files(path: str) -> list[str]:
    """The files whose bytes make the record: the file, and a WFDB header's signal files."""
    files = [path]
    if path.lower().endswith(".hea"):
        folder = os.path.dirname(path)
        try:
            with open(path, "rb") as fh:
                lines = fh.read(_MAX_HEADER).decode("latin-1").splitlines()
        except OSError:
            return files
        body = [ln for ln in lines if ln.strip() and not ln.lstrip().startswith("#")]
        for ln in body[1:]:
            name = ln.split()[0]
            candidate = os.path.join(folder, name)
            if os.sep not in name and "/" not in name and candidate not in files and os.path.isfile(candidate):
                files.append(candidate)
    return files


def fingerprint(files: list[str]) -> tuple[int, int]:
    """(total size, latest mtime_ns) of `files`. Raises OSError."""
    stats = [os.stat(f) for f in files]
    return sum(s.st_size for s in stats), max(s.st_mtime_ns for s in stats)


def content_sha256(files: list[str]) -> str:
    """sha256 of the files' bytes, in order (each prefixed by its size, so the split is fixed).
    Raises OSError."""
    h = hashlib.sha256()
    for f in files:
        with open(f, "rb") as fh:
            h.update(os.fstat(fh.fileno()).st_size.to_bytes(8, "little"))
            for block in iter(lambda: fh.read(_HASH_CHUNK), b""):
                h.update(block)
    return h.hexdigest()


# ---------------------------------------------------------------- rows
def _flags(result: FileResult) -> list[str]:
    flags = []
    q = result.quality
    if q is not None:
        for name in ("flat_leads", "saturated_leads", "noisy_leads", "missing_leads"):
            if getattr(q, name):
                flags.append(f"{name}:{','.join(getattr(q, name))}")
        if q.short_record:
            flags.append("short_record")
    for p, pred in (result.predictions or {}).items():
        if pred.ood:
            flags.append(f"ood:{p}")
    return flags


def row_values(size: int, mtime_ns: int, sha256: str | None, result: FileResult, meta: dict | None,
               fmt: str | None, measurements: Any, bundle_id: str | None) -> dict[str, Any]:
    """The `ecg` columns of one file from the batch pipeline's result and the record's meta."""
    meta = meta or {}
    preds = result.predictions or {}
    flags = _flags(result)
    age = meta.get("age")
    acquired = meta.get("acquired")
    return {
        "size": size, "mtime_ns": mtime_ns, "sha256": sha256, "format": fmt,
        "patient_key": patient_key(meta), "patient_id": _text(meta.get("patient_id")),
        "patient_name": _text(meta.get("patient_name")), "birth_date": _text(meta.get("birth_date")),
        "sex": _text(meta.get("sex")), "age": int(age) if isinstance(age, (int, float)) else None,
        "acquired": acquired_iso(acquired), "acquired_raw": _text(acquired),
        "device": to_json(meta.get("device")),
        "statements": to_json(result.statements if result.statements is not None
                              else _statements(meta.get("statements"))),
        "device_measurements": to_json(result.device_measurements if result.ok
                                       else meta.get("device_measurements")),
        "measurements": to_json(measurements if isinstance(measurements, dict) else result.measurements),
        "quality": to_json(quality_json(result.quality)),
        "probabilities": to_json({p: v.probability for p, v in preds.items()}) if preds else None,
        "thresholds": to_json({p: v.threshold for p, v in preds.items()}) if preds else None,
        "positive": to_json({p: bool(v.positive) for p, v in preds.items()}) if preds else None,
        "ood": to_json({p: {"ood": bool(v.ood), "distance": v.ood_distance, "cutoff": v.ood_cutoff}
                        for p, v in preds.items()}) if preds else None,
        "flags": to_json(flags), "ai_positive": int(any(v.positive for v in preds.values())),
        "flagged": int(bool(flags)), "bundle_id": bundle_id if preds else None, "error": result.error}


def _statements(items: Any) -> list[dict[str, Any]] | None:
    from engine.batch import _statements as batch_statements

    return batch_statements(items)


def _text(value: Any) -> str | None:
    return None if value is None or value == "" else str(value)


def _error_values(error: str, size: int | None = None, mtime_ns: int | None = None,
                  sha256: str | None = None) -> dict[str, Any]:
    return {"size": size, "mtime_ns": mtime_ns, "sha256": sha256, "error": error,
            "flags": "[]", "ai_positive": 0, "flagged": 0}


# ---------------------------------------------------------------- scan
@dataclass
class _Todo:
    path: str
    files: list[str]
    size: int
    mtime_ns: int
    sha256: str


def _plan(store: Store, path: str, error: str | None, bundle_id: str | None,
          rescan_failed: bool) -> tuple[str, Any]:
    """What to do with one input: ("unchanged", ecg_id), ("failed", (error, values)) or
    ("read", _Todo). Runs in the caller's thread (reads the store)."""
    if error is not None:
        return "failed", (error, _error_values(error))
    files = content_files(path)
    try:
        size, mtime = fingerprint(files)
    except OSError as exc:
        msg = f"{path} cannot be read ({exc.strerror}); it may have been moved or its permissions changed"
        return "failed", (msg, _error_values(msg))
    row = store.query("SELECT id, size, mtime_ns, sha256, error, bundle_id FROM ecg WHERE path = ?", (path,))
    row = row[0] if row else None
    same_model = row is not None and (bundle_id is None or row["bundle_id"] == bundle_id or row["error"])
    retry = row is not None and row["error"] is not None and rescan_failed
    if row is not None and same_model and not retry and row["size"] == size and row["mtime_ns"] == mtime:
        return "unchanged", row["id"]
    try:
        sha = content_sha256(files)
    except OSError as exc:
        msg = f"{path} cannot be read ({exc.strerror}); check the file's permissions"
        return "failed", (msg, _error_values(msg, size, mtime))
    if row is not None and same_model and not retry and row["sha256"] == sha:
        with store.write("update the study store") as conn:
            conn.execute("UPDATE ecg SET size = ?, mtime_ns = ? WHERE id = ?", (size, mtime, row["id"]))
        return "unchanged", row["id"]
    return "read", _Todo(path, files, size, mtime, sha)


def _read_only(items: list[InputItem], on_record: Callable[[EcgRecord], Any] | None) -> list[tuple]:
    """What `load_and_score_loaded` gives, for indexing without AI: read only (no
    preprocessing or quality check, which only the models need)."""
    from engine.batch import _Loaded
    from engine.errors import CromotexError
    from engine.io import read_ecg

    out = []
    for item in items:
        g = _Loaded(item)
        try:
            record = read_ecg(item.path, annotations=False)
        except CromotexError as exc:
            g.error = str(exc)
        except Exception as exc:  # a reader bug must not stop the scan
            log.exception("unexpected error on %s", item.path)
            g.error = f"unexpected error reading this file ({type(exc).__name__}: {exc})"
        else:
            g.take_record(record, on_record, log)
        out.append((FileResult(item.path, g.error is None, g.error, device_measurements=g.device_measurements,
                               statements=g.statements), g))
    return out


def _process(predictor: Any, todos: list[_Todo], on_record: Callable[[EcgRecord], Any] | None,
             bundle_id: str | None) -> list[tuple[_Todo, dict[str, Any]]]:
    """Read and score a chunk (worker thread); the row values of each file."""
    items = [InputItem(t.path) for t in todos]
    pairs = load_and_score_loaded(predictor, items, on_record) if predictor is not None \
        else _read_only(items, on_record)
    out = []
    for todo, (result, loaded) in zip(todos, pairs):
        values = row_values(todo.size, todo.mtime_ns, todo.sha256, result, loaded.meta, loaded.format,
                            loaded.extra, bundle_id)
        try:
            changed = fingerprint(todo.files) != (todo.size, todo.mtime_ns)
        except OSError:
            changed = True
        if changed:  # nothing read from a file in flux is kept (it may mix two versions)
            values = (_error_values(
                f"{todo.path} changed (or vanished) while it was being read; scan again when it is "
                f"complete", todo.size, todo.mtime_ns, None))
        out.append((todo, values))
    return out


def _cancelled(cancel: Callable[[], bool] | threading.Event | None) -> bool:
    if cancel is None:
        return False
    return cancel.is_set() if isinstance(cancel, threading.Event) else bool(cancel())


def scan(paths: Iterable[str | os.PathLike], store: Store, *, predictor: Any | None = None,
         workers: int = 1, chunk: int = 16, cancel: Callable[[], bool] | threading.Event | None = None,
         on_record: Callable[[EcgRecord], Any] | None = None, rescan_failed: bool = False,
         quick_index: bool = True) -> Iterator[ScanProgress]:
    """Index files into `store`, yielding one ScanProgress per file (see the module docstring).

    Args:
        paths: folders, DICOMDIR files and files.
        store: the open store (used from this thread only).
        predictor: an `engine.inference.Predictor` to score the ECGs with; None indexes
            without AI (probabilities stay empty).
        workers: threads reading and scoring files.
        chunk: files per worker task and per store transaction.
        cancel: stops the scan between chunks when it returns True / is set.
        on_record: called on each record read (in a worker thread); a dict it returns is
            stored as the computed `measurements` (e.g. engine.measure's results).
        rescan_failed: read files that failed before even when unchanged.
        quick_index: with a predictor, first index every file without AI (rows appear at
            the reading speed, ~10x the scoring speed), then score them in a second pass
            (`phase` "score"); each file is then read twice. False: one pass.

    Raises:
        StoreError subclasses when the store cannot be written (what was saved stays).
    """
    if predictor is not None and quick_index:
        paths = list(paths)
        yield from _scan_pass(paths, store, None, workers, chunk, cancel, on_record, rescan_failed, "index")
        if not _cancelled(cancel):
            yield from _scan_pass(paths, store, predictor, workers, chunk, cancel, on_record, False, "score")
        return
    yield from _scan_pass(paths, store, predictor, workers, chunk, cancel, on_record, rescan_failed, "index")


def _scan_pass(paths: Iterable[str | os.PathLike], store: Store, predictor: Any | None, workers: int,
               chunk: int, cancel: Callable[[], bool] | threading.Event | None,
               on_record: Callable[[EcgRecord], Any] | None, rescan_failed: bool,
               phase: str) -> Iterator[ScanProgress]:
    """One pass of `scan`."""
    bundle_id = predictor.bundle.bundle_id if predictor is not None else None
    counts = {"done": 0, "indexed": 0, "unchanged": 0, "failed": 0}

    def progress(path: str, status: str, error: str | None, ecg_id: int | None) -> ScanProgress:
        counts["done"] += 1
        counts[status] += 1
        return ScanProgress(path, status, error, ecg_id, **counts, phase=phase)

    inputs = iter_scan_inputs(paths)
    pending: deque[Future] = deque()
    buffer: list[_Todo] = []
    exhausted = False
    with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="cromotex-scan") as pool:
        try:
            while True:
                # plan files until a chunk is ready (or inputs end), yielding skips and errors
                while not exhausted and len(buffer) < chunk and len(pending) <= max(1, workers):
                    if _cancelled(cancel):
                        return
                    nxt = next(inputs, None)
                    if nxt is None:
                        exhausted = True
                        break
                    path, error = nxt
                    action, payload = _plan(store, path, error, bundle_id, rescan_failed)
                    if action == "unchanged":
                        yield progress(path, "unchanged", None, payload)
                    elif action == "failed":
                        msg, values = payload
                        ecg_id = None
                        if os.path.isfile(path) or not os.path.isdir(path):
                            with store.write("save a failed file to the study store") as conn:
                                ecg_id = upsert_ecg(conn, path, values)
                        yield progress(path, "failed", msg, ecg_id)
                    else:
                        buffer.append(payload)
                if buffer and (len(buffer) >= chunk or exhausted):
                    pending.append(pool.submit(_process, predictor, buffer, on_record, bundle_id))
                    buffer = []
                    if len(pending) <= max(1, workers) and not exhausted:
                        continue
                if not pending:
                    if exhausted:
                        return
                    continue
                done = pending.popleft().result()
                with store.write("save scanned files to the study store") as conn:
                    ids = [upsert_ecg(conn, todo.path, values) for todo, values in done]
                for (todo, values), ecg_id in zip(done, ids):
                    failed = values.get("error") is not None
                    yield progress(todo.path, "failed" if failed else "indexed", values.get("error"), ecg_id)
                if _cancelled(cancel):
                    return
        finally:
            for f in pending:
                f.cancel()


def run_scan(paths: Iterable[str | os.PathLike], store: Store, **kwargs: Any) -> ScanSummary:
    """`scan` to the end; the totals."""
    t0 = time.perf_counter()
    last = None
    for last in scan(paths, store, **kwargs):
        pass
    cancel = kwargs.get("cancel")
    counts = (last.done, last.indexed, last.unchanged, last.failed) if last else (0, 0, 0, 0)
    return ScanSummary(*counts, _cancelled(cancel), time.perf_counter() - t0)
