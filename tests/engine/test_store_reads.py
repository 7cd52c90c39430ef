"""engine.store.reads: signing, amending (never overwriting) and what the worklist shows."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from store_helpers import MUSE

from engine.errors import OverreadError, ReadConflictError
from engine.inference import Predictor
from engine.store import (COMMON_STATEMENTS, ReadStatement, Store, WorklistFilter, amend_read,
                          device_statements, find_ecg, latest_read, read_history, run_scan, sign_read,
                          verify, worklist)
from engine.store.audit import entries_for


@pytest.fixture(scope="module")
def predictor():
    return Predictor(threads=1)


@pytest.fixture()
def scanned(tmp_path, predictor):
    src = tmp_path / "src"
    src.mkdir()
    shutil.copyfile(MUSE, src / "a.xml")
    s = Store(tmp_path / "store.sqlite3")
    run_scan([src], s, predictor=predictor)
    yield s, find_ecg(s, str(src / "a.xml"))
    s.close()


AGREE = {"cardiomegaly": "agree", "edema": "disagree", "pleural_effusion": "uncertain"}


def test_sign_then_amend_keeps_every_version(scanned):
    s, e = scanned
    statements = device_statements(e.statements)
    assert statements[0] == ReadStatement("Normal Sinus rhythm", "confirmed", "Normal Sinus rhythm", None)
    edited = [ReadStatement("Sinus rhythm", "edited", statements[0].original)] + statements[1:] + \
        [ReadStatement(COMMON_STATEMENTS[0], "added")]
    r1 = sign_read(s, e.id, "  Dr  Ada Lovelace ", edited, AGREE, comment="first read",
                   bundle_version="0.1.0")
    assert (r1.version, r1.previous_id, r1.reader) == (1, None, "Dr Ada Lovelace")
    assert worklist(s, WorklistFilter(unread=True)) == [] and find_ecg(s, e.path).read_version == 1
    with pytest.raises(ReadConflictError, match="already signed by Dr Ada Lovelace"):
        sign_read(s, e.id, "Dr B", edited, AGREE)
    r2 = amend_read(s, r1, "Dr B", edited[:1], {**AGREE, "edema": "agree"}, reason="edema reassessed")
    assert (r2.version, r2.previous_id, r2.reason) == (2, r1.id, "edema reassessed")
    with pytest.raises(ReadConflictError, match="not the latest version"):
        amend_read(s, r1, "Dr C", edited, AGREE, reason="stale")
    history = read_history(s, e.sha256)
    assert [h.version for h in history] == [1, 2] and history[0] == r1  # version 1 unchanged
    assert latest_read(s, e.id) == r2 and find_ecg(s, e.path).read_version == 2
    log = entries_for(s, e.sha256)
    assert [x.action for x in log] == ["read_signed", "read_amended"]
    assert log[0].user == "Dr Ada Lovelace" and log[0].bundle_id == e.bundle_id
    assert log[1].details["agreement"]["edema"] == "agree" and log[1].details["previous_id"] == r1.id
    assert verify(s).ok


def test_a_signed_read_cannot_be_changed_in_the_database(scanned):
    s, e = scanned
    sign_read(s, e.id, "Dr A", [], AGREE)
    for sql in ("UPDATE reads SET reader = 'Dr X'", "DELETE FROM reads"):
        with pytest.raises(Exception, match="never"):
            with s.write() as c:
                c.execute(sql)
    assert latest_read(s, e.id).reader == "Dr A"


def test_name_agreement_and_reason_are_mandatory(scanned):
    s, e = scanned
    with pytest.raises(OverreadError, match="reader's name"):
        sign_read(s, e.id, "   ", [], AGREE)
    with pytest.raises(OverreadError, match="missing: pleural_effusion"):
        sign_read(s, e.id, "Dr A", [], {"cardiomegaly": "agree", "edema": "agree"})
    with pytest.raises(OverreadError, match="use one of agree"):
        sign_read(s, e.id, "Dr A", [], {**AGREE, "edema": "maybe"})
    with pytest.raises(OverreadError, match="status"):
        sign_read(s, e.id, "Dr A", [ReadStatement("x", "deleted")], AGREE)
    assert latest_read(s, e.id) is None and verify(s).n_entries == 0  # nothing half-saved
    r = sign_read(s, e.id, "Dr A", [], AGREE)
    with pytest.raises(OverreadError, match="why"):
        amend_read(s, r, "Dr A", [], AGREE, reason=" ")


def test_a_read_follows_the_content_not_the_path(scanned, tmp_path, predictor):
    s, e = scanned
    sign_read(s, e.id, "Dr A", [], AGREE)
    moved = tmp_path / "elsewhere"
    moved.mkdir()
    shutil.copyfile(e.path, moved / "renamed.xml")
    run_scan([moved], s, predictor=predictor)
    assert find_ecg(s, str(moved / "renamed.xml")).read_version == 1  # same ECG: read
    (moved / "renamed.xml").write_bytes((moved / "renamed.xml").read_bytes().replace(
        b"<VentricularRate>90<", b"<VentricularRate>95<"))
    run_scan([moved], s, predictor=predictor)
    assert find_ecg(s, str(moved / "renamed.xml")).read_version == 0  # changed content: unread


def test_forget_missing_drops_deleted_files_but_not_read_ones(scanned, tmp_path, predictor):
    from engine.store import forget_missing
    s, e = scanned
    other = tmp_path / "src" / "b.xml"
    shutil.copyfile(MUSE, other)
    other.write_bytes(other.read_bytes().replace(b"<VentricularRate>90<", b"<VentricularRate>80<"))
    run_scan([other], s)
    sign_read(s, e.id, "Dr A", [], AGREE)
    Path(e.path).unlink()
    other.unlink()
    assert forget_missing(s, under=str(tmp_path / "elsewhere")) == []
    assert forget_missing(s) == [str(other)]  # the signed ECG's row stays with its read
    assert find_ecg(s, str(other)) is None and find_ecg(s, e.path).read_version == 1
