"""Overreads: a reader confirms, edits or adds statements, agrees or disagrees with
each AI finding, and signs with their name.

A signed read is never changed: `amend_read` adds a new version linked to the
one it amends (`previous_id`), and the database refuses UPDATE / DELETE on the
table (schema v2). Reads belong to the file's content (`sha256`): a moved or
renamed copy of a read ECG is read too; a changed file is unread. Signing and
amending write their audit entry in the same transaction.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import asdict, dataclass
from typing import Any

from engine.errors import OverreadError, ReadConflictError
from engine.store.audit import append_entry, canonical_json
from engine.store.db import Store
from engine.store.index import get_ecg, now_utc

#: What the reader did with a statement.
STATEMENT_STATUSES: tuple[str, ...] = ("confirmed", "edited", "added", "removed")
#: The reader's view of an AI finding.
AGREEMENT_VALUES: tuple[str, ...] = ("agree", "disagree", "uncertain")
#: A short list of common statements for the overread panel's picker.
COMMON_STATEMENTS: tuple[str, ...] = (
    "Normal sinus rhythm", "Sinus bradycardia", "Sinus tachycardia", "Atrial fibrillation",
    "Atrial flutter", "First degree AV block", "Left bundle branch block",
    "Right bundle branch block", "Left anterior fascicular block", "Left axis deviation",
    "Right axis deviation", "Left ventricular hypertrophy", "Low QRS voltage",
    "Prolonged QT interval", "Nonspecific ST-T wave abnormality", "ST elevation",
    "ST depression", "T wave inversion", "Old infarct", "Premature ventricular complexes",
    "Premature atrial complexes", "Paced rhythm", "Normal ECG", "Abnormal ECG",
    "Borderline ECG", "No significant change from prior ECG")


@dataclass(frozen=True)
class ReadStatement:
    """One statement of a read.

    Attributes:
        text: the statement as signed.
        status: one of STATEMENT_STATUSES ("removed": a device statement the reader struck).
        original: the device's text for "edited" / "removed" / "confirmed" (None for "added").
        code: the device's statement code, if any.
    """

    text: str
    status: str
    original: str | None = None
    code: str | None = None


@dataclass(frozen=True)
class SignedRead:
    """A signed overread (one version).

    Attributes:
        id: row id; ecg_id: the indexed file; sha256: the content read.
        version: 1 for the first read, +1 per amendment; previous_id: the read it amends.
        reader: who signed; signed_at: UTC ISO time.
        statements: the statements as signed.
        agreement: pathology -> one of AGREEMENT_VALUES, for each AI finding of the ECG.
        comment: free text; reason: why it was amended ("" for version 1).
    """

    id: int
    ecg_id: int
    sha256: str
    version: int
    previous_id: int | None
    reader: str
    signed_at: str
    statements: tuple[ReadStatement, ...]
    agreement: dict[str, str]
    comment: str
    reason: str


def _read(row: sqlite3.Row) -> SignedRead:
    d = dict(row)
    d["statements"] = tuple(ReadStatement(**s) for s in json.loads(d["statements"]))
    d["agreement"] = json.loads(d["agreement"])
    return SignedRead(**d)


def _check(reader: str, statements: list[ReadStatement] | tuple[ReadStatement, ...],
           agreement: dict[str, str], findings: dict[str, Any] | None) -> str:
    reader = " ".join(str(reader or "").split())
    if not reader:
        raise OverreadError("Enter the reader's name before signing: a read cannot be signed "
                            "anonymously.")
    for s in statements:
        if s.status not in STATEMENT_STATUSES:
            raise OverreadError(f"Statement {s.text!r} has status {s.status!r}; use one of "
                                f"{', '.join(STATEMENT_STATUSES)}.")
        if not s.text.strip() and s.status != "removed":
            raise OverreadError("A statement is empty; remove it or type its text.")
    for pathology, value in agreement.items():
        if value not in AGREEMENT_VALUES:
            raise OverreadError(f"The agreement with the AI finding {pathology!r} is {value!r}; use "
                                f"one of {', '.join(AGREEMENT_VALUES)}.")
    missing = sorted(set(findings or {}) - set(agreement))
    if missing:
        raise OverreadError(f"Record agreement or disagreement with every AI finding before "
                            f"signing (missing: {', '.join(missing)}).")
    return reader


def _latest(conn: sqlite3.Connection, sha256: str) -> sqlite3.Row | None:
    return conn.execute("SELECT * FROM reads WHERE sha256 = ? ORDER BY version DESC LIMIT 1",
                        (sha256,)).fetchone()


def _insert(store: Store, ecg_id: int, reader: str, statements, agreement: dict[str, str],
            comment: str, reason: str, amends: int | None, bundle_id: str | None,
            bundle_version: str | None) -> SignedRead:
    entry = get_ecg(store, ecg_id)
    if entry.sha256 is None:
        raise OverreadError(f"{entry.path} could not be read ({entry.error}); there is nothing to sign.")
    reader = _check(reader, statements, agreement, entry.probabilities)
    with store.write("save the signed read") as conn:
        latest = _latest(conn, entry.sha256)
        if amends is None and latest is not None:
            raise ReadConflictError(
                f"This ECG was already signed by {latest['reader']} on {latest['signed_at']}; "
                f"amend that read instead of signing a new one.")
        if amends is not None and (latest is None or latest["id"] != amends):
            raise ReadConflictError(
                "This read is not the latest version (someone amended it in the meantime); open the "
                "latest version and amend that.")
        version = 1 if latest is None else latest["version"] + 1
        cur = conn.execute(
            "INSERT INTO reads (ecg_id, sha256, version, previous_id, reader, signed_at, statements, "
            "agreement, comment, reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING *",
            (ecg_id, entry.sha256, version, amends, reader, now_utc(),
             canonical_json([asdict(s) for s in statements]), canonical_json(agreement),
             comment or "", reason or ""))
        read = _read(cur.fetchone())
        append_entry(conn, "read_amended" if amends else "read_signed", reader,
                     file_sha256=entry.sha256, bundle_id=bundle_id or entry.bundle_id,
                     bundle_version=bundle_version,
                     details={"read_id": read.id, "version": version, "previous_id": amends,
                              "path": entry.path, "statements": [asdict(s) for s in statements],
                              "agreement": agreement, "comment": comment or "", "reason": reason or ""})
    return read


def sign_read(store: Store, ecg_id: int, reader: str, statements: list[ReadStatement],
              agreement: dict[str, str], *, comment: str = "", bundle_id: str | None = None,
              bundle_version: str | None = None) -> SignedRead:
    """Sign the first read of an ECG (and log "read_signed").

    Args:
        ecg_id: the `EcgEntry.id` read.
        reader: the configured user's name (mandatory).
        statements: the statements as the reader leaves them.
        agreement: pathology -> "agree" / "disagree" / "uncertain", for every pathology the
            ECG has an AI probability for.

    Raises:
        OverreadError (no name, bad values, a finding without agreement), ReadConflictError
        (already signed: use `amend_read`), StoreError subclasses.
    """
    return _insert(store, ecg_id, reader, statements, agreement, comment, "", None, bundle_id,
                   bundle_version)


def amend_read(store: Store, previous: SignedRead, reader: str, statements: list[ReadStatement],
               agreement: dict[str, str], *, reason: str, comment: str = "",
               bundle_id: str | None = None, bundle_version: str | None = None) -> SignedRead:
    """Sign a new version of a read (the previous one stays, linked); logs "read_amended".

    Raises:
        OverreadError (no name / no reason / bad values), ReadConflictError (`previous` is not
        the latest version), StoreError subclasses.
    """
    if not str(reason or "").strip():
        raise OverreadError("Say why the signed read is amended (the reason is kept with it).")
    return _insert(store, previous.ecg_id, reader, statements, agreement, comment, reason,
                   previous.id, bundle_id, bundle_version)


def read_history(store: Store, sha256: str) -> list[SignedRead]:
    """Every signed version of the reads of a content hash, oldest first."""
    return [_read(r) for r in store.query("SELECT * FROM reads WHERE sha256 = ? ORDER BY version",
                                          (sha256,), "read the signed reads")]


def latest_read(store: Store, ecg_id: int) -> SignedRead | None:
    """The latest signed read of an ECG's content, or None when unread."""
    entry = get_ecg(store, ecg_id)
    if entry.sha256 is None:
        return None
    history = read_history(store, entry.sha256)
    return history[-1] if history else None


def device_statements(entry_statements: list[dict[str, Any]] | None) -> list[ReadStatement]:
    """The device's statements as a starting point ("confirmed"), for the overread panel."""
    return [ReadStatement(str(s.get("text") or s.get("code") or ""), "confirmed",
                          str(s.get("text") or ""), s.get("code"))
            for s in entry_statements or [] if (s.get("text") or s.get("code"))]
