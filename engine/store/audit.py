"""The audit trail: an append-only, hash-chained log in the study store.

Every AI result shown, read, edit, signature and export is one entry: UTC time,
user, action, the file's content sha256, the model bundle id and version, the
program version and a JSON `details` object. Each entry carries the previous
entry's hash (`prev_hash`; GENESIS for the first) and its own `hash`:

    hash = sha256(canonical JSON of {seq, time, user, action, file_sha256, bundle_id,
                                     bundle_version, app_version, details, prev_hash})

where canonical JSON is `json.dumps(sort_keys=True, separators=(",", ":"),
ensure_ascii=False)` in UTF-8. Changing, removing or inserting an entry breaks
the chain from that entry on; `verify()` reports the first broken one. The
database also refuses UPDATE and DELETE on the table (schema v2 triggers), so
the program itself can only append. (A chain verifies from its start: cutting
off the newest entries leaves a valid shorter chain; export the log, or note
the last hash elsewhere, to detect that.)

Entries are appended inside a `BEGIN IMMEDIATE` transaction, so two programs
writing at once still make one chain.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import sqlite3
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import engine
from engine.errors import AuditError, StoreError
from engine.store.db import Store

#: `prev_hash` of the first entry.
GENESIS = "0" * 64
#: Actions the log records.
ACTIONS: tuple[str, ...] = (
    "ai_result_shown",   # an AI result was displayed for a file
    "read_signed",       # a first read was signed
    "read_amended",      # a signed read was amended (a new version)
    "statement_edited",  # a statement was edited in the overread panel (before signing)
    "export",            # a report / result was exported (PDF, JSON, CSV)
    "deid_export",       # a de-identified copy was written
    "audit_export",      # the log itself was exported
)
#: Fields of an entry, in CSV column order.
FIELDS: tuple[str, ...] = ("seq", "time", "user", "action", "file_sha256", "bundle_id",
                           "bundle_version", "app_version", "details", "prev_hash", "hash")


@dataclass(frozen=True)
class AuditEntry:
    """One log entry (see the module docstring). `details` is a JSON-ready dict."""

    seq: int
    time: str
    user: str
    action: str
    file_sha256: str | None
    bundle_id: str | None
    bundle_version: str | None
    app_version: str
    details: dict[str, Any]
    prev_hash: str
    hash: str


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def entry_hash(fields: dict[str, Any]) -> str:
    """The hash of an entry's fields (every FIELDS item but `hash`)."""
    body = {k: fields[k] for k in FIELDS if k != "hash"}
    return hashlib.sha256(canonical_json(body).encode("utf-8")).hexdigest()


def append_entry(conn: sqlite3.Connection, action: str, user: str, *, file_sha256: str | None = None,
                 bundle_id: str | None = None, bundle_version: str | None = None,
                 details: dict[str, Any] | None = None) -> AuditEntry:
    """Append one entry inside the caller's write transaction (`Store.write()`), so that the
    entry and the change it records are saved together or not at all.

    Raises:
        ValueError: unknown action or empty user (a programming error).
    """
    if action not in ACTIONS:
        raise ValueError(f"unknown audit action {action!r}")
    user = " ".join(str(user or "").split())
    if not user:
        raise ValueError("an audit entry needs a user name")
    last = conn.execute("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
    fields: dict[str, Any] = {
        "seq": (last[0] + 1) if last else 1,
        "time": datetime.now(timezone.utc).isoformat(timespec="microseconds"),
        "user": user, "action": action, "file_sha256": file_sha256, "bundle_id": bundle_id,
        "bundle_version": bundle_version, "app_version": engine.__version__,
        "details": json.loads(canonical_json(details or {})), "prev_hash": last[1] if last else GENESIS}
    fields["hash"] = entry_hash(fields)
    conn.execute(f"INSERT INTO audit ({', '.join(FIELDS)}) VALUES ({', '.join('?' * len(FIELDS))})",
                 [canonical_json(fields[k]) if k == "details" else fields[k] for k in FIELDS])
    return AuditEntry(**fields)


def log_event(store: Store, action: str, user: str, *, file_sha256: str | None = None,
              bundle_id: str | None = None, bundle_version: str | None = None,
              details: dict[str, Any] | None = None) -> AuditEntry:
    """Append one entry in its own transaction (e.g. "ai_result_shown" when the app shows a
    result, "export" after writing a PDF).

    Raises:
        StoreLockedError, StoreFullError, StoreReadOnlyError, StoreError; ValueError for an
        unknown action or an empty user.
    """
    with store.write(f"write the audit log ({action})") as conn:
        return append_entry(conn, action, user, file_sha256=file_sha256, bundle_id=bundle_id,
                            bundle_version=bundle_version, details=details)


def _entry(row: sqlite3.Row) -> AuditEntry:
    d = dict(row)
    d["details"] = json.loads(d["details"])
    return AuditEntry(**d)


def iter_entries(store: Store, *, batch: int = 1000) -> Iterator[AuditEntry]:
    """Every entry in `seq` order, read `batch` at a time (bounded memory)."""
    after = 0
    while True:
        rows = store.query(f"SELECT {', '.join(FIELDS)} FROM audit WHERE seq > ? ORDER BY seq LIMIT ?",
                           (after, batch), "read the audit log")
        if not rows:
            return
        for row in rows:
            yield _entry(row)
        after = rows[-1]["seq"]


def entries_for(store: Store, file_sha256: str) -> list[AuditEntry]:
    """The entries about one file's content, oldest first."""
    rows = store.query(f"SELECT {', '.join(FIELDS)} FROM audit WHERE file_sha256 = ? ORDER BY seq",
                       (file_sha256,), "read the audit log")
    return [_entry(r) for r in rows]


@dataclass(frozen=True)
class VerifyResult:
    """The outcome of `verify`: `ok`, entries checked, and the first broken entry's `seq`
    with the `reason` (None when ok)."""

    ok: bool
    n_entries: int
    first_bad_seq: int | None = None
    reason: str | None = None
    last_hash: str = GENESIS


def verify(store: Store) -> VerifyResult:
    """Check the whole chain: each entry's hash, its link to the previous entry, and that no
    sequence number is missing. Stops at the first broken entry."""
    prev, expected_seq, n = GENESIS, 1, 0
    for e in iter_entries(store):
        if e.seq != expected_seq:
            return VerifyResult(False, n, e.seq, f"entry {e.seq} follows entry {expected_seq - 1}: "
                                                 f"entries {expected_seq}..{e.seq - 1} were removed", prev)
        if e.prev_hash != prev:
            return VerifyResult(False, n, e.seq, f"entry {e.seq} does not link to the entry before it "
                                                 f"(an entry was removed, inserted or changed)", prev)
        if entry_hash(asdict(e)) != e.hash:
            return VerifyResult(False, n, e.seq, f"entry {e.seq} was changed after it was written "
                                                 f"(its content does not match its hash)", prev)
        prev, expected_seq, n = e.hash, e.seq + 1, n + 1
    return VerifyResult(True, n, None, None, prev)


def require_valid(store: Store) -> VerifyResult:
    """`verify`, raising AuditError with the first broken entry when the chain is broken."""
    result = verify(store)
    if not result.ok:
        raise AuditError(f"The audit log of {store.path} has been tampered with: {result.reason}.")
    return result


def export(store: Store, out: str | os.PathLike, fmt: str = "json") -> int:
    """Write the whole log to `out` as "json" (an array of entries) or "csv" (FIELDS columns,
    details as canonical JSON). Returns the number of entries written. The file is written
    next to `out` and renamed at the end (never half a log).

    Raises:
        ValueError for an unknown format; StoreError when `out` cannot be written.
    """
    if fmt not in ("json", "csv"):
        raise ValueError(f"unknown format {fmt!r}: json or csv")
    out = Path(out)
    tmp = out.with_name(out.name + ".part")
    n = 0
    try:
        with open(tmp, "w", encoding="utf-8", newline="") as fh:
            if fmt == "csv":
                writer = csv.DictWriter(fh, fieldnames=FIELDS)
                writer.writeheader()
                for e in iter_entries(store):
                    writer.writerow({**asdict(e), "details": canonical_json(e.details)})
                    n += 1
            else:
                fh.write("[")
                for e in iter_entries(store):
                    fh.write(("," if n else "") + "\n" + canonical_json(asdict(e)))
                    n += 1
                fh.write("\n]\n")
        os.replace(tmp, out)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise StoreError(f"Cannot write the audit export {out} ({exc.strerror}); choose another "
                         f"file.") from exc
    return n
