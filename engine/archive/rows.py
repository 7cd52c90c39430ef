"""The Parquet row of one archived file, and the file facts it carries.

A row is built from `cromotex predict`'s JSON object of the file
(`engine.predict_output.result_json`, kept whole in the `result_json` column as
the exact line `cromotex predict` writes) plus facts about the file itself:
size, modification time and a content sha256. The flat columns (probability,
threshold, call and out-of-distribution flag per pathology, quality) are copied
from that object, never computed again, so a row always says what
`cromotex predict` says for the same file and bundle.

Paths: the `path` column is the path as found (absolute: `cromotex archive`
resolves its roots first), with bytes that are not valid UTF-8 written as the
4 characters `\\xXY` (as `cromotex predict --format csv` does; Parquet strings
must be UTF-8); `result_json` keeps the `\\udcXX` escapes of the JSON line.

Content hash (`content_sha256`): sha256 of the file's bytes; for a WFDB header
(`.hea`), of the header and then, in header order, of each signal file it names
that exists beside it (name, then bytes), so that a changed `.dat` is a changed
record.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from engine.constants import PATHOLOGIES
from engine.predict_output import csv_text, dumps

#: Bytes read at a time when hashing.
HASH_BLOCK = 1 << 20
#: Per-pathology column stems, as f"{stem}_{pathology}" (float64, float64, bool, str, str, bool,
#: float64): the predict object's probabilities, thresholds, positive, call, call_reason, ood.
PATHOLOGY_STEMS = ("probability", "threshold", "positive", "call", "call_reason", "ood", "ood_distance")
#: Columns holding JSON text (null when the predict object's field is null or absent).
JSON_COLUMNS = ("window_probabilities", "quality", "preprocessing", "measurements",
                "device_measurements", "statements")


@dataclass(frozen=True)
class FileFacts:
    """What the archive records about a file besides its scores.

    Attributes:
        size: bytes of the named file (the header for WFDB); -1 when it cannot be read.
        mtime: modification time, seconds since the epoch (float); NaN when unknown.
        sha256: hex content hash (`content_sha256`); None when the file cannot be read.
    """

    size: int
    mtime: float
    sha256: str | None


def _hash_file(h: Any, path: Path) -> None:
    with open(path, "rb") as fh:
        while block := fh.read(HASH_BLOCK):
            h.update(block)


def _wfdb_companions(header: Path) -> list[Path]:
    """Signal files named by a WFDB header that exist beside it, in header order, each once
    (none when the header cannot be parsed: the reader then gives its own message)."""
    from engine.errors import CromotexError
    from engine.io.wfdb_header import parse_header

    try:
        parsed = parse_header(header.read_text(encoding="latin-1"), str(header))
    except (CromotexError, OSError, ValueError):
        return []
    names = dict.fromkeys(s.file_name for s in parsed.signals if s.file_name and s.file_name != "~")
    out = []
    for name in names:
        p = header.parent / name
        if os.path.basename(name) == name and p.is_file():
            out.append(p)
    return out


def content_sha256(path: str | os.PathLike) -> str:
    """Hex sha256 of a file's content (a WFDB header with its signal files, see module doc).

    Raises:
        OSError: the file cannot be read.
    """
    p = Path(path)
    h = hashlib.sha256()
    _hash_file(h, p)
    if p.suffix.lower() == ".hea":
        for companion in _wfdb_companions(p):
            h.update(b"\0" + os.fsencode(companion.name) + b"\0")
            _hash_file(h, companion)
    return h.hexdigest()


def file_facts(path: str | os.PathLike) -> FileFacts:
    """Size, mtime and content hash of `path`; (-1, NaN, None) when it cannot be read (the
    reader then gives the file's error message)."""
    try:
        st = os.stat(path)
        return FileFacts(int(st.st_size), float(st.st_mtime), content_sha256(path))
    except OSError:
        return FileFacts(-1, float("nan"), None)


def path_key(path: str) -> str:
    """The `path` column's text for a path (undecodable bytes as `\\xXY`)."""
    return csv_text(path)


def _json(value: Any) -> str | None:
    return None if value is None else dumps(value)


def archive_row(obj: dict[str, Any], facts: FileFacts, scored_at: datetime) -> dict[str, Any]:
    """The Parquet row of one file.

    Args:
        obj: the file's `cromotex predict` JSON object (`result_json`), with `model`.
        facts: the file's size, mtime and content hash.
        scored_at: when it was scored (timezone-aware, UTC).

    Returns:
        column -> value, for every column of `schema()`.
    """
    ok = bool(obj["ok"])
    model = obj["model"]
    row: dict[str, Any] = {
        "path": path_key(obj["file"]), "size": facts.size, "mtime": facts.mtime,
        "sha256": facts.sha256, "ok": ok, "error": obj["error"],
        "bundle_id": model["bundle_id"], "data": model["data"], "demo": bool(model["demo"]),
        "precision": model["precision"],
    }
    for p in PATHOLOGIES:
        scored = ok and p in (obj["probabilities"] or {})
        row[f"probability_{p}"] = obj["probabilities"][p] if scored else None
        row[f"threshold_{p}"] = obj["thresholds"][p] if scored else None
        row[f"positive_{p}"] = obj["positive"][p] if scored else None
        row[f"call_{p}"] = (obj.get("call") or {}).get(p) if scored else None
        row[f"call_reason_{p}"] = (obj.get("call_reason") or {}).get(p) if scored else None
        row[f"ood_{p}"] = obj["ood"][p]["ood"] if scored else None
        row[f"ood_distance_{p}"] = obj["ood"][p]["distance"] if scored else None
    wp = obj.get("window_probabilities")
    row["n_windows"] = len(next(iter(wp.values()))) if wp else None
    q = obj.get("quality")
    row["quality_ok"] = q["ok"] if q else None
    row["short_record"] = q["short_record"] if q else None
    for column in JSON_COLUMNS:
        row[column] = _json(obj.get(column))
    row["model"] = _json(model)
    row["result_json"] = dumps(obj)
    row["scored_at"] = scored_at
    return row


def schema():
    """The Arrow schema of the archive (pyarrow imported here: the `.[cluster]` extra)."""
    import pyarrow as pa

    fields = [("path", pa.string()), ("size", pa.int64()), ("mtime", pa.float64()),
              ("sha256", pa.string()), ("ok", pa.bool_()), ("error", pa.string()),
              ("bundle_id", pa.string()), ("data", pa.string()), ("demo", pa.bool_()),
              ("precision", pa.string())]
    types = {"probability": pa.float64(), "threshold": pa.float64(), "positive": pa.bool_(),
             "call": pa.string(), "call_reason": pa.string(), "ood": pa.bool_(),
             "ood_distance": pa.float64()}
    for p in PATHOLOGIES:
        fields += [(f"{stem}_{p}", types[stem]) for stem in PATHOLOGY_STEMS]
    fields += [("n_windows", pa.int32()), ("quality_ok", pa.bool_()), ("short_record", pa.bool_())]
    fields += [(c, pa.string()) for c in JSON_COLUMNS]
    fields += [("model", pa.string()), ("result_json", pa.string()),
               ("scored_at", pa.timestamp("us", tz="UTC"))]
    return pa.schema(fields)
