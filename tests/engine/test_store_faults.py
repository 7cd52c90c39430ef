"""engine.store under faults: read-only locations, damaged and locked databases, a full disk,
a database from a newer program. Each gives a typed error and loses nothing saved before."""

from __future__ import annotations

import os
import shutil
import sqlite3
import time

import pytest
from store_helpers import HL7, MUSE, MUSE2

from engine.errors import (StoreCorruptError, StoreError, StoreFullError, StoreLockedError,
                           StoreReadOnlyError)
from engine.store import Store, log_event, run_scan, verify, worklist
from engine.store.db import store_error
from engine.store.scan import scan


def _filled(tmp_path) -> Store:
    src = tmp_path / "src"
    src.mkdir()
    for f in (MUSE, MUSE2):
        shutil.copyfile(f, src / f.name)
    s = Store(tmp_path / "store.sqlite3")
    run_scan([src], s)
    log_event(s, "ai_result_shown", "Dr A", file_sha256=worklist(s)[0].sha256)
    return s


def test_store_in_a_folder_that_cannot_be_created(tmp_path):
    with pytest.raises(StoreReadOnlyError, match="Choose a writable store location"):
        Store("/sys/cromotex-review-test/store.sqlite3")  # sysfs: nothing can be created there


def test_read_only_store_reads_but_refuses_writes(tmp_path):
    s = _filled(tmp_path)
    n = len(worklist(s))
    s.close()
    with Store(tmp_path / "store.sqlite3", readonly=True) as ro:
        assert len(worklist(ro)) == n == 2
        with pytest.raises(StoreReadOnlyError, match="read-only"):
            log_event(ro, "export", "Dr A")
        with pytest.raises(sqlite3.OperationalError, match="readonly") as info:
            ro.conn.execute("DELETE FROM ecg")  # SQLite itself refuses too (mode=ro) ...
        assert isinstance(store_error(info.value, ro.path, "save"), StoreReadOnlyError)  # ... mapped
    with Store(tmp_path / "store.sqlite3") as rw:
        assert len(worklist(rw)) == 2 and verify(rw).n_entries == 1


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes through file permissions")
def test_store_on_a_read_only_folder(tmp_path):
    s = _filled(tmp_path)
    s.close()
    os.chmod(tmp_path / "store.sqlite3", 0o444)
    os.chmod(tmp_path, 0o555)
    try:
        with pytest.raises(StoreReadOnlyError):
            with Store(tmp_path / "store.sqlite3") as w:
                log_event(w, "export", "Dr A")
    finally:
        os.chmod(tmp_path, 0o755)


def test_a_file_that_is_not_a_database(tmp_path):
    bad = tmp_path / "store.sqlite3"
    bad.write_bytes(b"this is a text file, not SQLite\n" * 200)
    with pytest.raises(StoreCorruptError, match="damaged or is not a CroMoTEX Review store"):
        Store(bad)
    assert bad.read_bytes().startswith(b"this is a text file")  # left as it was, for recovery


def test_a_damaged_database_is_detected_on_open(tmp_path):
    s = _filled(tmp_path)
    s.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    page = s.conn.execute("PRAGMA page_size").fetchone()[0]
    n_pages = s.conn.execute("PRAGMA page_count").fetchone()[0]
    s.close()
    assert n_pages > 4
    with open(tmp_path / "store.sqlite3", "r+b") as fh:  # scribble over pages 2..4 (tables, indexes)
        fh.seek(page)
        fh.write(os.urandom(3 * page))
    with pytest.raises(StoreCorruptError, match="Restore it from a backup"):
        Store(tmp_path / "store.sqlite3")


def test_a_locked_database_gives_a_clear_error_and_works_once_released(tmp_path):
    s = _filled(tmp_path)
    s.close()
    other = sqlite3.connect(tmp_path / "store.sqlite3", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another program holds the write lock
    other.execute("INSERT INTO ecg (path, flags, ai_positive, flagged, indexed_at) "
                  "VALUES ('/other.xml', '[]', 0, 0, 'now')")
    with Store(tmp_path / "store.sqlite3", timeout_s=0.3) as s2:
        assert len(worklist(s2)) == 2  # WAL: reading goes on while the other writes
        t0 = time.perf_counter()
        with pytest.raises(StoreLockedError, match="another CroMoTEX Review window"):
            log_event(s2, "export", "Dr A")
        assert 0.25 < time.perf_counter() - t0 < 5  # waited the busy timeout, did not hang
        other.execute("COMMIT")
        log_event(s2, "export", "Dr A")
        assert len(worklist(s2)) == 3 and verify(s2).n_entries == 2
    other.close()


def test_a_full_disk_keeps_what_was_saved(tmp_path):
    s = _filled(tmp_path)
    pages = s.conn.execute("PRAGMA page_count").fetchone()[0]
    s.conn.execute(f"PRAGMA max_page_count = {pages + 1}")  # the disk fills after one more page
    with pytest.raises(StoreFullError, match="full"):
        for i in range(100):
            log_event(s, "export", "Dr A", details={"blob": "x" * 3000, "i": i})
    saved = verify(s)
    assert saved.ok and saved.n_entries >= 1  # the chain of what was saved is intact
    # a scan on the full store stops with the same error; rows saved before stay
    src = tmp_path / "more"
    src.mkdir()
    for i in range(40):
        shutil.copyfile(HL7, src / f"{i:02d}.xml")
    with pytest.raises(StoreFullError):
        list(scan([src], s, chunk=4))
    names = {os.path.basename(e.path) for e in worklist(s)}
    assert {MUSE.name, MUSE2.name} <= names and len(names) < 42
    assert all(e.format == "hl7-aecg" for e in worklist(s) if e.path.startswith(str(src)))
    s.conn.execute("PRAGMA max_page_count = 1073741823")  # space freed: writes work again
    assert run_scan([src], s).indexed == 42 - len(names)
    s.close()


def test_a_store_from_a_newer_program_is_refused(tmp_path):
    s = _filled(tmp_path)
    with s.write() as c:
        c.execute("INSERT INTO schema_version VALUES (99, 'future')")
    s.close()
    with pytest.raises(StoreError, match="newer version"):
        Store(tmp_path / "store.sqlite3")


def test_two_writers_share_one_audit_chain(tmp_path):
    import threading
    path = tmp_path / "store.sqlite3"
    Store(path).close()
    errors = []

    def writer(name: str) -> None:
        try:
            with Store(path) as s:
                for i in range(25):
                    log_event(s, "ai_result_shown", name, details={"i": i})
        except Exception as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(f"Dr {c}",)) for c in "AB"]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    with Store(path) as s:
        result = verify(s)
        assert result.ok and result.n_entries == 50
