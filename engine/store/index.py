"""The index: one row per ECG file, and the worklist's queries.

Everything here returns frozen dataclasses (`EcgEntry`, `TrendPoint`,
`MeasurementDiff`); JSON columns come back as Python dicts / lists. Times are
ISO 8601 text `YYYY-MM-DDTHH:MM:SS` (the file's local time, as written).
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from engine.errors import StoreError
from engine.io.ecg_common import DEVICE_MEASUREMENT_KEYS, DEVICE_MEASUREMENT_LABELS
from engine.store.db import Store

#: Columns written by `upsert_ecg` (besides `path`, the key).
ECG_COLUMNS: tuple[str, ...] = (
    "size", "mtime_ns", "sha256", "format", "patient_key", "patient_id", "patient_name",
    "birth_date", "sex", "age", "acquired", "acquired_raw", "device", "statements",
    "device_measurements", "measurements", "quality", "probabilities", "thresholds", "positive",
    "ood", "flags", "ai_positive", "flagged", "bundle_id", "error")
_JSON_COLUMNS = ("device", "statements", "device_measurements", "measurements", "quality",
                 "probabilities", "thresholds", "positive", "ood", "flags")


@dataclass(frozen=True)
class EcgEntry:
    """One indexed file (a row of the worklist).

    Attributes:
        id: the row id (stable for a path).
        path: absolute path of the file (a WFDB record: its .hea).
        size, mtime_ns: bytes and modification time (ns) when indexed (a WFDB record: the
            header and its signal files together: sum of sizes, latest mtime).
        sha256: hex sha256 of the content (a WFDB record: header and signal files).
        format: `Source.format` ("wfdb", "dicom-ecg", "muse-xml", ...), None when unread.
        patient_key: groups one patient's ECGs (`engine.store.fields.patient_key`), or None.
        patient_id, patient_name, birth_date, sex, age: as the file says.
        acquired: ISO acquisition time, None when the file gives none (or none known);
            acquired_raw: the value as the reader gave it.
        device: the reader's `meta["device"]` dict.
        statements: the device's statements ({text, code, confirmed}).
        device_measurements: {key: value} of `engine.io.ecg_common.DEVICE_MEASUREMENT_KEYS`.
        measurements: computed measurements (whatever the measuring step gave), or None.
        quality: signal-quality flags (`engine.predict_output.quality_json`).
        probabilities, thresholds, positive: pathology -> value of the ECG models.
        ood: pathology -> {"ood", "distance", "cutoff"}.
        flags: why the AI result is "not assessable" (e.g. "ood:cardiomegaly",
            "noisy_leads:V1,V2", "short_record"); empty when none.
        ai_positive: some pathology is positive; flagged: `flags` is not empty.
        bundle_id: the model bundle that scored it (None when not scored).
        error: why the file could not be read or scored (None when fine).
        indexed_at: UTC time of the last indexing.
        read_version: 0 unread; else the version of the latest signed read of this content.
    """

    id: int
    path: str
    size: int | None
    mtime_ns: int | None
    sha256: str | None
    format: str | None
    patient_key: str | None
    patient_id: str | None
    patient_name: str | None
    birth_date: str | None
    sex: str | None
    age: int | None
    acquired: str | None
    acquired_raw: str | None
    device: dict[str, Any] | None
    statements: list[dict[str, Any]] | None
    device_measurements: dict[str, float] | None
    measurements: dict[str, Any] | None
    quality: dict[str, Any] | None
    probabilities: dict[str, float] | None
    thresholds: dict[str, float] | None
    positive: dict[str, bool] | None
    ood: dict[str, Any] | None
    flags: tuple[str, ...]
    ai_positive: bool
    flagged: bool
    bundle_id: str | None
    error: str | None
    indexed_at: str
    read_version: int = 0

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def unread(self) -> bool:
        return self.read_version == 0


@dataclass(frozen=True)
class WorklistFilter:
    """What the worklist shows (all conditions together; defaults show everything).

    Attributes:
        unread: only ECGs without a signed read of their content.
        ai_positive: only ECGs some model calls positive.
        flagged: only ECGs whose AI result is flagged (not assessable).
        failed: True: only files that failed; False: only files read fine; None: both.
        date_from, date_to: ISO dates/times, inclusive (`date_to` "2024-05-01" includes that day).
        patient: case-insensitive substring of the patient ID or name.
        patient_key: exactly this patient.
    """

    unread: bool = False
    ai_positive: bool = False
    flagged: bool = False
    failed: bool | None = None
    date_from: str | None = None
    date_to: str | None = None
    patient: str | None = None
    patient_key: str | None = None


#: `worklist(sort=...)` keys -> SQL expressions.
SORT_KEYS: dict[str, str] = {
    "acquired": "e.acquired", "patient": "e.patient_name", "patient_id": "e.patient_id",
    "path": "e.path", "format": "e.format", "indexed": "e.indexed_at", "id": "e.id",
    "read": "read_version", "flagged": "e.flagged", "ai_positive": "e.ai_positive"}

_READ_VERSION = "(SELECT COALESCE(MAX(r.version), 0) FROM reads r WHERE r.sha256 = e.sha256)"
_SELECT = f"SELECT e.*, {_READ_VERSION} AS read_version FROM ecg e"


def now_utc() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def upsert_ecg(conn: sqlite3.Connection, path: str, values: dict[str, Any]) -> int:
    """Insert or replace the row of `path` (inside the caller's `Store.write()`); columns not
    in `values` become NULL. JSON columns must already be JSON text. Returns the row id
    (kept when the path was already indexed)."""
    cols = ECG_COLUMNS + ("indexed_at",)
    row = [values.get(c) for c in ECG_COLUMNS] + [now_utc()]
    sets = ", ".join(f"{c} = excluded.{c}" for c in cols)
    cur = conn.execute(
        f"INSERT INTO ecg (path, {', '.join(cols)}) VALUES ({', '.join('?' * (len(cols) + 1))}) "
        f"ON CONFLICT(path) DO UPDATE SET {sets} RETURNING id", [path, *row])
    return int(cur.fetchone()[0])


_FIELDS = tuple(EcgEntry.__dataclass_fields__)


def entry_from_row(row: sqlite3.Row) -> EcgEntry:
    d = dict(zip(row.keys(), row))
    for c in _JSON_COLUMNS:
        text = d[c]
        d[c] = None if text is None else json.loads(text)
    d["flags"] = tuple(d["flags"] or ())
    d["ai_positive"] = bool(d["ai_positive"])
    d["flagged"] = bool(d["flagged"])
    d["read_version"] = int(d.get("read_version") or 0)
    return EcgEntry(*[d.get(k) for k in _FIELDS])


def _where(f: WorklistFilter) -> tuple[str, list[Any]]:
    conds: list[str] = []
    params: list[Any] = []
    if f.unread:
        conds.append(f"{_READ_VERSION} = 0")
    if f.ai_positive:
        conds.append("e.ai_positive = 1")
    if f.flagged:
        conds.append("e.flagged = 1")
    if f.failed is True:
        conds.append("e.error IS NOT NULL")
    elif f.failed is False:
        conds.append("e.error IS NULL")
    if f.date_from:
        conds.append("e.acquired >= ?")
        params.append(f.date_from)
    if f.date_to:
        conds.append("e.acquired <= ?")
        params.append(f.date_to + ("T23:59:59" if len(f.date_to) == 10 else ""))
    if f.patient:
        conds.append("(instr(lower(e.patient_id), ?) > 0 OR instr(lower(e.patient_name), ?) > 0)")
        params += [f.patient.lower(), f.patient.lower()]
    if f.patient_key:
        conds.append("e.patient_key = ?")
        params.append(f.patient_key)
    return (" WHERE " + " AND ".join(conds)) if conds else "", params


def worklist(store: Store, filt: WorklistFilter = WorklistFilter(), *, sort: str = "acquired",
             descending: bool = True, limit: int | None = None, offset: int = 0) -> list[EcgEntry]:
    """The ECGs matching `filt`, sorted by `sort` (a SORT_KEYS key; rows without a value
    last), then by id (indexing order) in the same direction. `limit`/`offset` page through a long list.

    Raises:
        StoreError (ValueError for an unknown sort key).
    """
    if sort not in SORT_KEYS:
        raise ValueError(f"unknown sort key {sort!r}; one of {', '.join(SORT_KEYS)}")
    where, params = _where(filt)
    expr = SORT_KEYS[sort]
    if sort == "read":
        expr = _READ_VERSION
    direction = "DESC" if descending else "ASC"
    # NULLS LAST and the rowid tie-break let SQLite walk an index (acquired, patient_name)
    # instead of sorting every row
    order = f" ORDER BY {expr} {direction} NULLS LAST, e.id {direction}"
    page = ""
    if limit is not None:
        page = " LIMIT ? OFFSET ?"
        params += [int(limit), int(offset)]
    # sort the ids only (small rows), then fetch the page's full rows
    ids = [r[0] for r in store.query(f"SELECT e.id FROM ecg e{where}{order}{page}", params,
                                     "read the worklist")]
    if not ids:
        return []
    rows = store.query(f"{_SELECT} WHERE e.id IN ({', '.join('?' * len(ids))})", ids, "read the worklist")
    by_id = {r["id"]: r for r in rows}
    return [entry_from_row(by_id[i]) for i in ids if i in by_id]


def count_worklist(store: Store, filt: WorklistFilter = WorklistFilter()) -> int:
    """How many ECGs match `filt`."""
    where, params = _where(filt)
    return int(store.query(f"SELECT COUNT(*) FROM ecg e{where}", params, "count the worklist")[0][0])


def get_ecg(store: Store, ecg_id: int) -> EcgEntry:
    """The entry with id `ecg_id`. Raises StoreError when there is none."""
    rows = store.query(_SELECT + " WHERE e.id = ?", (ecg_id,))
    if not rows:
        raise StoreError(f"There is no ECG number {ecg_id} in the study store {store.path}.")
    return entry_from_row(rows[0])


def find_ecg(store: Store, path: str) -> EcgEntry | None:
    """The entry of the file `path` (absolute, as indexed), or None."""
    rows = store.query(_SELECT + " WHERE e.path = ?", (path,))
    return entry_from_row(rows[0]) if rows else None


def patient_ecgs(store: Store, patient_key: str) -> list[EcgEntry]:
    """The patient's ECGs in the store, oldest first (those without a time last)."""
    rows = store.query(_SELECT + " WHERE e.patient_key = ? ORDER BY e.acquired IS NULL, e.acquired, e.path",
                       (patient_key,), "read the patient's ECGs")
    return [entry_from_row(r) for r in rows]


@dataclass(frozen=True)
class TrendPoint:
    """One ECG's AI output for the trend plot (one point per pathology).

    Attributes:
        ecg_id, acquired (ISO, None when unknown), sha256.
        probabilities / thresholds / positive: pathology -> value (None when not scored).
        ood: pathology -> bool (out of the training distribution: draw differently).
        flagged: the result is not assessable; flags: why.
        error: why the ECG was not scored (None when it was).
    """

    ecg_id: int
    acquired: str | None
    sha256: str | None
    probabilities: dict[str, float] | None
    thresholds: dict[str, float] | None
    positive: dict[str, bool] | None
    ood: dict[str, bool] | None
    flagged: bool
    flags: tuple[str, ...]
    error: str | None


def ai_trend(store: Store, patient_key: str) -> list[TrendPoint]:
    """The AI probabilities of every ECG of the patient, oldest first."""
    return [TrendPoint(e.id, e.acquired, e.sha256, e.probabilities, e.thresholds, e.positive,
                       {p: bool(v.get("ood")) for p, v in e.ood.items()} if e.ood else None,
                       e.flagged, e.flags, e.error)
            for e in patient_ecgs(store, patient_key)]


@dataclass(frozen=True)
class MeasurementDiff:
    """One measurement of two ECGs: `b - a` (`delta` None when either is missing).

    Attributes:
        key: e.g. "qtc_ms"; label, unit: e.g. "QTc", "ms".
        a, b: the values (float or None); delta: b - a.
        source_a, source_b: "computed" or "device" (where each value came from).
    """

    key: str
    label: str
    unit: str
    a: float | None
    b: float | None
    delta: float | None
    source_a: str | None
    source_b: str | None


def _value(e: EcgEntry, key: str) -> tuple[float | None, str | None]:
    for source, values in (("computed", e.measurements), ("device", e.device_measurements)):
        v = values.get(key) if isinstance(values, dict) else None
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            return float(v), source
    return None, None


def measurement_differences(a: EcgEntry, b: EcgEntry,
                            keys: tuple[str, ...] = DEVICE_MEASUREMENT_KEYS) -> list[MeasurementDiff]:
    """Measurement differences between two ECGs (`b - a`, usually b the newer): each key's
    computed value when the store has one, else the device's."""
    out = []
    for key in keys:
        (va, sa), (vb, sb) = _value(a, key), _value(b, key)
        label, unit = DEVICE_MEASUREMENT_LABELS.get(key, (key, ""))
        delta = vb - va if va is not None and vb is not None else None
        out.append(MeasurementDiff(key, label, unit, va, vb, delta, sa, sb))
    return out


def forget_missing(store: Store, under: str | None = None) -> list[str]:
    """Remove the index rows of files that no longer exist (moved or deleted), optionally only
    those whose path starts with `under`; returns their paths. Rows a signed read points at
    are kept (the read and its audit entries must keep their ECG); the audit log is untouched."""
    import os

    keep_read = "NOT EXISTS (SELECT 1 FROM reads r WHERE r.ecg_id = ecg.id)"
    rows = store.query(f"SELECT id, path FROM ecg WHERE {keep_read}"
                       + (" AND substr(path, 1, ?) = ?" if under else ""),
                       (len(under), under) if under else (), "read the worklist")
    gone = [(r["id"], r["path"]) for r in rows if not os.path.exists(r["path"])]
    if gone:
        with store.write("update the worklist") as conn:
            conn.executemany("DELETE FROM ecg WHERE id = ?", [(i,) for i, _ in gone])
    return [p for _, p in gone]
