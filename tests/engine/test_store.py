"""engine.store: scanning real sample files, the worklist's queries, serial comparison,
incremental re-scans, per-file errors and schema migrations."""

from __future__ import annotations

import os
import sqlite3
import threading
from pathlib import Path

import pytest
from store_helpers import MUSE, sample_folder

from engine.inference import Predictor
from engine.store import (EcgEntry, Store, WorklistFilter, ai_trend, count_worklist, find_ecg,
                          measurement_differences, patient_ecgs, run_scan, scan, worklist)
from engine.store import location
from engine.store.schema import MIGRATIONS, SCHEMA_VERSION, current_version, migrate


@pytest.fixture(scope="module")
def predictor() -> Predictor:
    return Predictor(threads=1)


@pytest.fixture()
def store(tmp_path) -> Store:
    with Store(tmp_path / "db" / "store.sqlite3") as s:
        yield s


@pytest.fixture()
def folder(tmp_path) -> Path:
    return sample_folder(tmp_path)


def by_name(entries: list[EcgEntry]) -> dict[str, EcgEntry]:
    return {Path(e.path).name: e for e in entries}


def test_scan_indexes_every_format_with_ai_and_keeps_failures(store, folder, predictor):
    progress = list(scan([folder], store, predictor=predictor, workers=2, quick_index=False))
    assert [p.done for p in progress] == list(range(1, 10))
    assert progress[-1].indexed == 8 and progress[-1].failed == 1 and progress[-1].unchanged == 0
    rows = by_name(worklist(store))
    assert set(rows) == {"egm_muse-sinus.xml", "musephi_muse_ecg1.xml", "muse_prior.xml",
                         "philips_1-04_ad4d3d80-d165_PageWriterTouch.xml",
                         "hl7_2003-12_ballot_Example_aECG_Mortara.xml", "ecg.dcm", "cxr.dcm",
                         "00001_lr.hea", "s0010_re.hea"}
    cxr = rows["cxr.dcm"]
    assert cxr.error and "not an ECG waveform" in cxr.error and cxr.probabilities is None
    muse = rows["egm_muse-sinus.xml"]
    assert muse.format == "muse-xml" and muse.patient_id == "081486213" and muse.patient_name == "DOE, JOHN"
    assert muse.patient_key == "id:081486213" and muse.acquired == "2023-04-29T22:41:16"
    assert muse.device_measurements["hr_bpm"] == 90
    assert muse.statements[0]["text"] == "Normal Sinus rhythm"
    assert muse.bundle_id == predictor.bundle.bundle_id and muse.unread
    # the stored probabilities are the batch pipeline's (same code as `cromotex predict`)
    from engine.batch import InputItem, load_and_score
    ref = load_and_score(predictor, InputItem(muse.path))
    assert muse.probabilities == {p: v.probability for p, v in ref.predictions.items()}
    assert muse.ai_positive == any(v.positive for v in ref.predictions.values())
    dicom = rows["ecg.dcm"]
    assert dicom.acquired == "2013-01-25T10:59:19" and dicom.sex == "F" and dicom.age == 42
    ptb = rows["s0010_re.hea"]
    assert ptb.format == "wfdb" and ptb.acquired == "1990-10-01T00:00:00" and ptb.patient_key is None
    # a WFDB record's size covers its header and signal files (.dat and .xyz)
    hea = Path(ptb.path)
    assert ptb.size == sum(os.path.getsize(hea.with_suffix(s)) for s in (".hea", ".dat", ".xyz"))


def test_worklist_filters_and_sorting(store, folder, predictor):
    run_scan([folder], store, predictor=predictor)
    everything = worklist(store)
    assert count_worklist(store) == len(everything) == 9
    times = [e.acquired for e in everything if e.acquired]
    assert times == sorted(times, reverse=True)
    assert [e.acquired for e in everything][-len([e for e in everything if not e.acquired]):] == \
        [None] * len([e for e in everything if not e.acquired])  # rows without a time last
    ascending = worklist(store, sort="acquired", descending=False)
    assert [e.acquired for e in ascending if e.acquired] == sorted(times)
    positive = worklist(store, WorklistFilter(ai_positive=True))
    assert positive and all(e.ai_positive for e in positive)
    assert {e.id for e in positive} == {e.id for e in everything if e.positive and any(e.positive.values())}
    flagged = worklist(store, WorklistFilter(flagged=True))
    assert {e.id for e in flagged} == {e.id for e in everything if e.flags}
    failed = worklist(store, WorklistFilter(failed=True))
    assert [Path(e.path).name for e in failed] == ["cxr.dcm"]
    doe = worklist(store, WorklistFilter(patient="doe"))
    assert {Path(e.path).name for e in doe} == {"egm_muse-sinus.xml", "muse_prior.xml"}
    assert {e.patient_id for e in worklist(store, WorklistFilter(patient="081486"))} == {"081486213"}
    in_2023 = worklist(store, WorklistFilter(date_from="2023-01-01", date_to="2023-04-29"))
    assert [Path(e.path).name for e in in_2023] == ["egm_muse-sinus.xml"]  # date_to includes the day
    assert worklist(store, WorklistFilter(date_from="2023-04-30")) == []
    page = worklist(store, sort="path", descending=False, limit=3, offset=2)
    assert [e.path for e in page] == sorted(e.path for e in everything)[2:5]
    assert len(worklist(store, WorklistFilter(unread=True))) == 9
    with pytest.raises(ValueError):
        worklist(store, sort="nonsense")


def test_serial_comparison_and_ai_trend(store, folder, predictor):
    run_scan([folder], store, predictor=predictor)
    series = patient_ecgs(store, "id:081486213")
    assert [Path(e.path).name for e in series] == ["muse_prior.xml", "egm_muse-sinus.xml"]
    assert [e.acquired for e in series] == ["2022-04-29T22:41:16", "2023-04-29T22:41:16"]
    trend = ai_trend(store, "id:081486213")
    assert [t.ecg_id for t in trend] == [e.id for e in series]
    assert trend[1].probabilities == series[1].probabilities
    assert set(trend[0].ood) == set(series[0].probabilities)
    # engine.measure's values (stored from the batch pipeline) win over the device's: the two
    # files share one signal, so the computed rate is the same; only the device's 72 differs
    diffs = {d.key: d for d in measurement_differences(series[0], series[1])}
    assert diffs["hr_bpm"].source_a == diffs["hr_bpm"].source_b == "computed"
    assert diffs["hr_bpm"].a == series[0].measurements["hr_bpm"] and diffs["hr_bpm"].delta == 0
    assert diffs["hr_bpm"].label == "HR" and diffs["hr_bpm"].unit == "bpm"
    from dataclasses import replace
    device_only = [replace(e, measurements=None) for e in series]
    d = {x.key: x for x in measurement_differences(*device_only)}
    assert (d["hr_bpm"].a, d["hr_bpm"].b, d["hr_bpm"].delta, d["hr_bpm"].source_a) == (72, 90, 18, "device")
    assert d["qtc_ms"].delta == 0


def test_rescan_is_incremental_by_size_mtime_then_hash(store, folder, predictor):
    first = run_scan([folder], store, predictor=predictor, quick_index=False)
    assert (first.indexed, first.failed) == (8, 1)
    again = run_scan([folder], store, predictor=predictor, quick_index=False)
    assert (again.indexed, again.unchanged, again.failed) == (0, 9, 0)
    muse = folder / "xml" / MUSE.name
    before = find_ecg(store, str(muse))
    os.utime(muse, ns=(1_000_000_000, 1_000_000_000))   # touched, same bytes: the hash decides
    third = run_scan([folder], store, predictor=predictor, quick_index=False)
    assert (third.indexed, third.unchanged) == (0, 9)
    touched = find_ecg(store, str(muse))
    assert touched.mtime_ns == 1_000_000_000 and touched.id == before.id and touched.sha256 == before.sha256
    muse.write_bytes(muse.read_bytes().replace(b"<VentricularRate>90<", b"<VentricularRate>91<"))
    fourth = run_scan([folder], store, predictor=predictor, quick_index=False)
    assert (fourth.indexed, fourth.unchanged) == (1, 8)
    changed = find_ecg(store, str(muse))
    assert changed.id == before.id and changed.sha256 != before.sha256
    assert changed.device_measurements["hr_bpm"] == 91


def test_scan_without_ai_then_with_ai_rescores(store, folder, predictor):
    plain = run_scan([folder], store)
    assert plain.indexed == 8
    assert all(e.probabilities is None and e.bundle_id is None for e in worklist(store))
    scored = run_scan([folder], store, predictor=predictor)
    assert scored.indexed == 8 and scored.unchanged == 1  # the failed CXR is not retried
    assert all(e.probabilities for e in worklist(store, WorklistFilter(failed=False)))


def test_bad_files_symlink_loops_and_vanished_files_get_clear_errors(store, tmp_path, predictor):
    folder = tmp_path / "messy"
    folder.mkdir()
    (folder / "empty.dcm").write_bytes(b"")
    (folder / "notes.hea").write_text("this is not a header\n")
    (folder / "sub").mkdir()
    os.symlink(folder, folder / "sub" / "loop")          # a folder link back to its parent
    os.symlink(folder / "selfloop.dcm", folder / "selfloop.dcm")  # a link to itself
    os.symlink(folder / "gone.dcm", folder / "dangling.dcm")
    import shutil
    shutil.copyfile(MUSE, folder / "good.xml")
    progress = list(scan([folder, tmp_path / "missing.xml"], store, predictor=predictor, quick_index=False))
    errors = {Path(p.path).name: p.error for p in progress if p.status == "failed"}
    assert "0 bytes" in errors["empty.dcm"]
    assert "not an ECG format" in errors["notes.hea"] or "header" in errors["notes.hea"]
    assert "symbolic link loop" in errors["selfloop.dcm"]
    assert "broken link" in errors["dangling.dcm"]
    assert "already searched" in errors["loop"]
    assert "does not exist" in errors["missing.xml"]
    assert [p.status for p in progress if Path(p.path).name == "good.xml"] == ["indexed"]
    assert find_ecg(store, str(folder / "good.xml")).probabilities
    assert "symbolic link loop" in find_ecg(store, str(folder / "selfloop.dcm")).error


def test_file_changing_during_the_scan_is_an_error_not_a_result(store, tmp_path, predictor):
    import shutil
    f = tmp_path / "in" / "live.xml"
    f.parent.mkdir()
    shutil.copyfile(MUSE, f)

    def grow(record):  # runs after the file was read: the writer is still appending
        with open(f, "ab") as fh:
            fh.write(b"\n<!-- more -->")

    (p,) = list(scan([f.parent], store, predictor=predictor, on_record=grow, quick_index=False))
    assert p.status == "failed" and "changed (or vanished) while it was being read" in p.error
    assert find_ecg(store, str(f)).probabilities is None
    (p2,) = list(scan([f.parent], store, predictor=predictor, quick_index=False))  # complete now: indexed next time
    assert p2.status == "indexed"


def test_on_record_results_are_stored_as_measurements(store, tmp_path):
    import shutil
    shutil.copyfile(MUSE, tmp_path / "a.xml")
    run_scan([tmp_path / "a.xml"], store, on_record=lambda rec: {"n_samples": rec.n_samples, "fs": rec.fs})
    e = find_ecg(store, str(tmp_path / "a.xml"))
    assert e.measurements == {"n_samples": 5000, "fs": 500.0}


def test_cancel_stops_between_chunks_and_keeps_what_was_saved(store, folder, predictor):
    stop = threading.Event()
    seen = []
    for p in scan([folder], store, predictor=predictor, chunk=2, cancel=stop, quick_index=False):
        seen.append(p)
        if len(seen) == 3:
            stop.set()
    assert 3 <= len(seen) < 9
    assert count_worklist(store) == len(seen)
    rest = run_scan([folder], store, predictor=predictor, quick_index=False)
    assert rest.unchanged == len(seen) and rest.done == 9


def test_dicomdir_lists_the_files_to_scan(store, tmp_path, predictor):
    import pydicom
    from pydicom.fileset import FileSet
    from store_helpers import DICOM_ECG
    fs = FileSet()
    ds = pydicom.dcmread(DICOM_ECG)
    ds.SeriesNumber = 1  # the sample leaves it empty; a DICOMDIR's SERIES record needs it
    fs.add(ds)
    media = tmp_path / "media"
    fs.write(media)
    dicomdir = media / "DICOMDIR"
    (p,) = list(scan([dicomdir], store, predictor=predictor, quick_index=False))
    assert p.status == "indexed" and Path(p.path).parent != media
    assert find_ecg(store, p.path).patient_id == "642341"


def test_store_path_setting_env_and_default(tmp_path, monkeypatch):
    monkeypatch.delenv(location.STORE_ENV, raising=False)
    monkeypatch.setenv(location.CONFIG_ENV, str(tmp_path / "cfg"))
    assert location.store_path() == location.default_store_path()
    (tmp_path / "cfg").mkdir()
    (tmp_path / "cfg" / "settings.json").write_text('{"store_path": "%s"}' % (tmp_path / "shared"))
    (tmp_path / "shared").mkdir()
    assert location.store_path() == tmp_path / "shared" / "store.sqlite3"  # a folder setting
    monkeypatch.setenv(location.STORE_ENV, str(tmp_path / "env.sqlite3"))
    assert location.store_path() == tmp_path / "env.sqlite3"
    with Store() as s:
        assert s.path == tmp_path / "env.sqlite3" and s.schema_version == SCHEMA_VERSION
    # the app's Settings keeps the key when it saves
    from app.settings import Settings
    monkeypatch.delenv(location.STORE_ENV)
    s = Settings.load(tmp_path / "cfg")
    assert s.store_path == str(tmp_path / "shared")
    s.save(tmp_path / "cfg")
    assert location.configured_store_path() == str(tmp_path / "shared")


def test_upgrade_from_schema_v1_keeps_the_rows(tmp_path):
    path = tmp_path / "old.sqlite3"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("BEGIN")
    migrate(conn, target=1)
    conn.execute("INSERT INTO ecg (path, sha256, patient_key, acquired, flags, ai_positive, flagged, "
                 "indexed_at) VALUES ('/x.xml', 'abc', 'id:1', '2020-01-01T00:00:00', '[]', 1, 0, 'now')")
    conn.execute("COMMIT")
    assert current_version(conn) == 1
    conn.close()
    with Store(path) as s:
        assert s.schema_version == SCHEMA_VERSION == len(MIGRATIONS) == 2
        (e,) = worklist(s)
        assert (e.path, e.sha256, e.ai_positive, e.measurements) == ("/x.xml", "abc", True, None)
        versions = [r[0] for r in s.query("SELECT version FROM schema_version ORDER BY version")]
        assert versions == [1, 2]
        with pytest.raises(Exception, match="never"):  # v2's triggers are in place
            with s.write() as c:
                c.execute("INSERT INTO reads (ecg_id, sha256, version, reader, signed_at, statements, "
                          "agreement) VALUES (?, 'abc', 1, 'Dr A', 'now', '[]', '{}')", (e.id,))
                c.execute("DELETE FROM reads")


def test_quick_index_shows_rows_before_the_ai_pass(store, folder, predictor):
    phases = []
    for p in scan([folder], store, predictor=predictor):
        if not phases or phases[-1][0] != p.phase:
            if p.phase == "score":  # every file is listed (without AI) before any is scored
                rows = worklist(store)
                assert len(rows) == 9 and all(e.probabilities is None for e in rows)
                assert by_name(rows)["egm_muse-sinus.xml"].patient_id == "081486213"
            phases.append((p.phase, []))
        phases[-1][1].append(p)
    assert [ph for ph, _ in phases] == ["index", "score"]
    index, score = phases[0][1], phases[1][1]
    assert (index[-1].indexed, index[-1].failed) == (8, 1)
    assert (score[-1].indexed, score[-1].unchanged) == (8, 1)  # the CXR's error stays
    assert all(e.probabilities and e.quality for e in worklist(store, WorklistFilter(failed=False)))
