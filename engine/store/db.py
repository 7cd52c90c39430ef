"""The store's connection: opening, transactions and SQLite errors as typed errors.

One `Store` is one SQLite connection; use one per thread (the app's scan worker
opens its own). Several programs may open the same file: the database is in WAL
mode (readers never wait for the writer), every write is one short
`BEGIN IMMEDIATE` transaction, and a writer waits up to `timeout_s` for another
one to finish before `StoreLockedError`. A failed write is rolled back whole, so
what was saved before stays saved.
"""

from __future__ import annotations

import logging
import os
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from engine.errors import (StoreCorruptError, StoreError, StoreFullError, StoreLockedError,
                           StoreReadOnlyError)
from engine.store.location import store_path
from engine.store.schema import SCHEMA_VERSION, current_version, migrate

log = logging.getLogger(__name__)

#: Seconds a write waits for another program's write to finish (SQLite busy timeout).
DEFAULT_TIMEOUT_S = 10.0


def store_error(exc: sqlite3.Error, path: Path | str, doing: str) -> StoreError:
    """The typed error, with an actionable message, for an SQLite error while `doing`."""
    text = str(exc).lower()
    where = f"the study store {path}"
    if "locked" in text or "busy" in text:
        return StoreLockedError(
            f"Could not {doing}: {where} is busy (another CroMoTEX Review window or program is "
            f"writing to it). Nothing was lost; try again in a moment.")
    if "readonly" in text or "read-only" in text or "unable to open" in text:
        return StoreReadOnlyError(
            f"Could not {doing}: {where} cannot be written (read-only disk or folder, or no "
            f"permission). Choose a writable store location in the settings.")
    if "full" in text:
        return StoreFullError(
            f"Could not {doing}: the disk holding {where} is full (or the store reached its size "
            f"limit). The last change was not saved; everything saved before is intact. Free "
            f"some space and try again.")
    if "not a database" in text or "malformed" in text or "corrupt" in text:
        return StoreCorruptError(
            f"Could not {doing}: {where} is damaged or is not a CroMoTEX Review store ({exc}). "
            f"Restore it from a backup, or move it away and let the program create a new one.")
    return StoreError(f"Could not {doing}: {where} gave an error ({exc}).")


class Store:
    """An open study store (SQLite), created and migrated on first open.

    Args:
        path: the database file (default: `engine.store.location.store_path()`).
        timeout_s: seconds a write waits for another writer (then StoreLockedError).
        readonly: open for reading only (a store on a read-only share); writes then raise
            StoreReadOnlyError.
        check: run SQLite's `quick_check` on open (detects a damaged file early).

    Raises:
        StoreReadOnlyError, StoreCorruptError, StoreLockedError, StoreError.
    """

    def __init__(self, path: str | os.PathLike | None = None, *, timeout_s: float = DEFAULT_TIMEOUT_S,
                 readonly: bool = False, check: bool = True) -> None:
        self.path = Path(path) if path is not None else store_path()
        self.readonly = readonly
        self.timeout_s = timeout_s
        if not readonly:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreReadOnlyError(
                    f"Cannot create the folder of the study store {self.path} ({exc.strerror}). "
                    f"Choose a writable store location in the settings.") from exc
        elif not self.path.is_file():
            raise StoreError(f"There is no study store at {self.path}.")
        try:
            if readonly:
                uri = self.path.resolve().as_uri() + "?mode=ro"
                self.conn = sqlite3.connect(uri, uri=True, timeout=timeout_s, isolation_level=None)
            else:
                self.conn = sqlite3.connect(self.path, timeout=timeout_s, isolation_level=None)
        except sqlite3.Error as exc:
            raise store_error(exc, self.path, "open the study store") from exc
        self.conn.row_factory = sqlite3.Row
        try:
            self._setup(check)
        except sqlite3.Error as exc:
            self.conn.close()
            raise store_error(exc, self.path, "open the study store") from exc
        except ValueError as exc:
            self.conn.close()
            raise StoreError(f"The study store {self.path} was written by a newer version of "
                             f"CroMoTEX Review ({exc}); update this program.") from exc

    def _setup(self, check: bool) -> None:
        self.conn.execute(f"PRAGMA busy_timeout = {int(self.timeout_s * 1000)}")
        self.conn.execute("PRAGMA foreign_keys = ON")
        if check:
            row = self.conn.execute("PRAGMA quick_check").fetchone()
            if row is None or row[0] != "ok":
                raise sqlite3.DatabaseError(f"database disk image is malformed ({row[0] if row else '?'})")
        if self.readonly:
            version = current_version(self.conn)
            if version > SCHEMA_VERSION:
                raise ValueError(f"schema {version}")
            if version < SCHEMA_VERSION:
                raise sqlite3.OperationalError(
                    f"readonly: schema {version} needs an upgrade to {SCHEMA_VERSION}, which needs write access")
            return
        if self.conn.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
            self.conn.execute("PRAGMA journal_mode = WAL")
        self.conn.execute("PRAGMA synchronous = NORMAL")  # safe in WAL mode (no corruption on power loss)
        if current_version(self.conn) < SCHEMA_VERSION:
            with self.write("upgrade the study store"):
                before = migrate(self.conn)
            log.info("study store %s upgraded from schema %d to %d", self.path, before, SCHEMA_VERSION)
        elif current_version(self.conn) > SCHEMA_VERSION:
            raise ValueError(f"schema {current_version(self.conn)}")

    @property
    def schema_version(self) -> int:
        return current_version(self.conn)

    @contextmanager
    def write(self, doing: str = "save to the study store") -> Iterator[sqlite3.Connection]:
        """A short write transaction (`BEGIN IMMEDIATE` ... `COMMIT`, rolled back on any error).

        Raises:
            StoreLockedError, StoreFullError, StoreReadOnlyError, StoreCorruptError, StoreError.
        """
        if self.readonly:
            raise StoreReadOnlyError(f"Could not {doing}: the study store {self.path} was opened "
                                     f"read-only.")
        try:
            self.conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise store_error(exc, self.path, doing) from exc
        try:
            yield self.conn
            self.conn.execute("COMMIT")
        except BaseException as exc:
            try:
                self.conn.execute("ROLLBACK")
            except sqlite3.Error:
                pass  # SQLite already rolled back (e.g. SQLITE_FULL)
            if isinstance(exc, sqlite3.Error):
                raise store_error(exc, self.path, doing) from exc
            raise

    def query(self, sql: str, params: Sequence[Any] | dict[str, Any] = (),
              doing: str = "read the study store") -> list[sqlite3.Row]:
        """Rows of a read-only statement."""
        try:
            return self.conn.execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise store_error(exc, self.path, doing) from exc

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_store(path: str | os.PathLike | None = None, **kwargs: Any) -> Store:
    """`Store(path, **kwargs)`: the configured store when `path` is None."""
    return Store(path, **kwargs)
