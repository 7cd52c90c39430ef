"""The study store's schema and its migrations.

`schema_version` holds one row per applied migration (version, UTC time). Each
migration is a function of a connection inside the caller's transaction,
listed in order in MIGRATIONS; `migrate(conn)` applies those above the
database's version. A database newer than this program refuses to open (its
columns may mean things this version does not know).

Version 1: `ecg` (the index: one row per file path), `reads` (signed overreads)
and `audit` (the hash-chained log).
Version 2: computed measurements and signal quality on `ecg`; the worklist's
indexes; triggers that refuse UPDATE and DELETE on `reads` and `audit` (append-only
at the database level too, on top of the audit log's hash chain).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import datetime, timezone


def _script(conn: sqlite3.Connection, script: str) -> None:
    """Run the statements of `script` one by one (`executescript` would commit the caller's
    transaction first)."""
    statement = ""
    for line in script.splitlines(keepends=True):
        statement += line
        if sqlite3.complete_statement(statement):
            conn.execute(statement)
            statement = ""
    if statement.strip():
        raise ValueError(f"incomplete SQL statement: {statement!r}")


def _v1(conn: sqlite3.Connection) -> None:
    _script(conn, """
        CREATE TABLE ecg (
            id INTEGER PRIMARY KEY,
            path TEXT NOT NULL UNIQUE,
            size INTEGER,
            mtime_ns INTEGER,
            sha256 TEXT,
            format TEXT,
            patient_key TEXT,
            patient_id TEXT,
            patient_name TEXT,
            birth_date TEXT,
            sex TEXT,
            age INTEGER,
            acquired TEXT,
            acquired_raw TEXT,
            device TEXT,
            statements TEXT,
            device_measurements TEXT,
            probabilities TEXT,
            thresholds TEXT,
            positive TEXT,
            ood TEXT,
            flags TEXT,
            ai_positive INTEGER,
            flagged INTEGER,
            bundle_id TEXT,
            error TEXT,
            indexed_at TEXT NOT NULL
        );
        CREATE INDEX ecg_sha256 ON ecg(sha256);
        CREATE TABLE reads (
            id INTEGER PRIMARY KEY,
            ecg_id INTEGER NOT NULL REFERENCES ecg(id),
            sha256 TEXT NOT NULL,
            version INTEGER NOT NULL,
            previous_id INTEGER REFERENCES reads(id),
            reader TEXT NOT NULL CHECK (length(trim(reader)) > 0),
            signed_at TEXT NOT NULL,
            statements TEXT NOT NULL,
            agreement TEXT NOT NULL,
            comment TEXT NOT NULL DEFAULT '',
            reason TEXT NOT NULL DEFAULT '',
            UNIQUE (sha256, version)
        );
        CREATE INDEX reads_sha256 ON reads(sha256);
        CREATE TABLE audit (
            seq INTEGER PRIMARY KEY,
            time TEXT NOT NULL,
            user TEXT NOT NULL,
            action TEXT NOT NULL,
            file_sha256 TEXT,
            bundle_id TEXT,
            bundle_version TEXT,
            app_version TEXT NOT NULL,
            details TEXT NOT NULL,
            prev_hash TEXT NOT NULL,
            hash TEXT NOT NULL
        );
    """)


def _v2(conn: sqlite3.Connection) -> None:
    _script(conn, """
        ALTER TABLE ecg ADD COLUMN measurements TEXT;
        ALTER TABLE ecg ADD COLUMN quality TEXT;
        CREATE INDEX ecg_patient_time ON ecg(patient_key, acquired);
        CREATE INDEX ecg_acquired ON ecg(acquired);
        CREATE INDEX ecg_patient_name ON ecg(patient_name);
        CREATE TRIGGER reads_no_update BEFORE UPDATE ON reads
            BEGIN SELECT RAISE(ABORT, 'signed reads are never changed: amend instead'); END;
        CREATE TRIGGER reads_no_delete BEFORE DELETE ON reads
            BEGIN SELECT RAISE(ABORT, 'signed reads are never deleted'); END;
        CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
            BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
        CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
            BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
    """)


#: Migrations in order: MIGRATIONS[i] brings a database from version i to i + 1.
MIGRATIONS: tuple[Callable[[sqlite3.Connection], None], ...] = (_v1, _v2)
#: The schema version this program writes.
SCHEMA_VERSION = len(MIGRATIONS)


def current_version(conn: sqlite3.Connection) -> int:
    """The database's schema version (0: an empty database)."""
    has = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'").fetchone()
    if not has:
        return 0
    row = conn.execute("SELECT MAX(version) FROM schema_version").fetchone()
    return int(row[0] or 0)


def migrate(conn: sqlite3.Connection, target: int = SCHEMA_VERSION) -> int:
    """Apply the migrations from the database's version up to `target` (the caller holds a
    write transaction). Returns the version before.

    Raises:
        ValueError: the database is newer than `target` (opened by an older program).
    """
    before = current_version(conn)
    if before > target:
        raise ValueError(f"schema version {before} is newer than this program's {target}")
    if before == 0:
        conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL, applied_at TEXT NOT NULL)")
    for version in range(before + 1, target + 1):
        MIGRATIONS[version - 1](conn)
        conn.execute("INSERT INTO schema_version VALUES (?, ?)",
                     (version, datetime.now(timezone.utc).isoformat(timespec="seconds")))
    return before
