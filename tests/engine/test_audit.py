"""engine.store.audit: the hash chain, tampering detected at the right entry, exports and the
`cromotex audit` CLI."""

from __future__ import annotations

import csv
import json
import sqlite3

import pytest

from engine.cli import main
from engine.errors import AuditError
from engine.store import Store, log_event, verify
from engine.store.audit import GENESIS, canonical_json, entry_hash, export, iter_entries, require_valid


@pytest.fixture()
def store(tmp_path):
    with Store(tmp_path / "store.sqlite3") as s:
        for i, action in enumerate(["ai_result_shown", "statement_edited", "read_signed", "export",
                                    "ai_result_shown", "read_amended"]):
            log_event(s, action, f"Dr {'AB'[i % 2]}", file_sha256=f"{i:064x}",
                      bundle_id="cromotex-phantom-demo-0.1.0", bundle_version="1",
                      details={"i": i, "text": "Sinus rhythm ü"})
        yield s


def _tamper(path, sql: str, *params) -> None:
    """Change the log behind the program's back, as someone with the sqlite3 shell could."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("DROP TRIGGER IF EXISTS audit_no_update")
    conn.execute("DROP TRIGGER IF EXISTS audit_no_delete")
    conn.execute(sql, params)
    conn.close()


def test_chain_links_every_entry(store):
    entries = list(iter_entries(store))
    assert [e.seq for e in entries] == [1, 2, 3, 4, 5, 6]
    assert entries[0].prev_hash == GENESIS
    for before, after in zip(entries, entries[1:]):
        assert after.prev_hash == before.hash
    e = entries[2]
    body = {"seq": 3, "time": e.time, "user": "Dr A", "action": "read_signed", "file_sha256": f"{2:064x}",
            "bundle_id": "cromotex-phantom-demo-0.1.0", "bundle_version": "1", "app_version": e.app_version,
            "details": {"i": 2, "text": "Sinus rhythm ü"}, "prev_hash": entries[1].hash}
    import hashlib
    assert e.hash == hashlib.sha256(canonical_json(body).encode()).hexdigest() == entry_hash({**body, "hash": ""})
    result = verify(store)
    assert result.ok and result.n_entries == 6 and result.last_hash == entries[-1].hash


def test_the_database_refuses_edits_and_deletes(store):
    with pytest.raises(Exception, match="append-only"):
        with store.write() as c:
            c.execute("UPDATE audit SET user = 'Mallory' WHERE seq = 2")
    with pytest.raises(Exception, match="append-only"):
        with store.write() as c:
            c.execute("DELETE FROM audit WHERE seq = 6")
    assert verify(store).ok


def test_a_changed_entry_is_reported_at_that_entry(store):
    _tamper(store.path, "UPDATE audit SET details = ? WHERE seq = 4", canonical_json({"i": 3, "text": "edited"}))
    result = verify(store)
    assert not result.ok and result.first_bad_seq == 4 and result.n_entries == 3
    assert "changed after it was written" in result.reason
    with pytest.raises(AuditError, match="entry 4"):
        require_valid(store)


def test_a_changed_user_with_a_recomputed_hash_breaks_the_next_link(store):
    e3 = list(iter_entries(store))[2]
    from dataclasses import asdict
    forged = {**asdict(e3), "user": "Mallory"}
    _tamper(store.path, "UPDATE audit SET user = 'Mallory', hash = ? WHERE seq = 3", entry_hash(forged))
    result = verify(store)
    assert not result.ok and result.first_bad_seq == 4 and "does not link" in result.reason


def test_a_removed_entry_is_reported(store):
    _tamper(store.path, "DELETE FROM audit WHERE seq = 2")
    result = verify(store)
    assert not result.ok and result.first_bad_seq == 3 and "were removed" in result.reason


def test_export_json_and_csv(store, tmp_path):
    assert export(store, tmp_path / "log.json", "json") == 6
    data = json.loads((tmp_path / "log.json").read_text(encoding="utf-8"))
    assert [d["seq"] for d in data] == [1, 2, 3, 4, 5, 6]
    assert data[2]["details"] == {"i": 2, "text": "Sinus rhythm ü"} and data[2]["action"] == "read_signed"
    assert export(store, tmp_path / "log.csv", "csv") == 6
    with open(tmp_path / "log.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert rows[5]["hash"] == data[5]["hash"] and json.loads(rows[0]["details"])["i"] == 0
    # the exported entries verify on their own (hash over the same canonical JSON)
    assert all(entry_hash(d) == d["hash"] for d in data)


def test_unknown_action_or_missing_user_is_refused(store):
    with pytest.raises(ValueError, match="unknown audit action"):
        log_event(store, "deleted_everything", "Dr A")
    with pytest.raises(ValueError, match="user"):
        log_event(store, "export", "  ")


def test_cli_verify_and_export(store, tmp_path, capsys):
    path = str(store.path)
    assert main(["audit", "verify", "--store", path]) == 0
    assert "audit log OK: 6 entries" in capsys.readouterr().out
    out = tmp_path / "audit.csv"
    assert main(["audit", "export", "--format", "csv", "-o", str(out), "--store", path, "--user", "Dr C"]) == 0
    assert "wrote 6 audit entries" in capsys.readouterr().out
    assert len(out.read_text().splitlines()) == 7
    assert main(["audit", "verify", "--store", path]) == 0  # the export itself was logged (entry 7)
    assert "7 entries" in capsys.readouterr().out
    _tamper(store.path, "UPDATE audit SET action = 'export' WHERE seq = 5")
    assert main(["audit", "verify", "--store", path]) == 1
    assert "BROKEN at entry 5" in capsys.readouterr().out
    assert main(["audit", "export", "-o", str(tmp_path / "x.json"), "--format", "xml", "--store", path]) == 2


def test_cli_scan_indexes_into_the_store(tmp_path, capsys):
    import shutil
    from store_helpers import DICOM_CXR, MUSE
    src = tmp_path / "src"
    src.mkdir()
    shutil.copyfile(MUSE, src / "a.xml")
    shutil.copyfile(DICOM_CXR, src / "b.dcm")
    db = str(tmp_path / "s.sqlite3")
    assert main(["scan", str(src), "--store", db]) == 1  # the chest X-ray is not an ECG
    out, err = capsys.readouterr()
    assert "2 files in" in out and "1 indexed, 0 unchanged, 1 failed; AI: 1 scored, 0 could not" in out
    assert "not an ECG waveform" in err
    assert main(["scan", str(src), "--store", db, "--no-ai", "--quiet"]) == 0
    assert "0 indexed, 2 unchanged, 0 failed" in capsys.readouterr().out
