"""engine.deid on the real sample files: identifiers gone when the copies are read back with
engine.io and pydicom, dates shifted by one offset per patient, UIDs remapped consistently,
signals untouched, originals never modified."""

from __future__ import annotations

import json
import shutil
from datetime import datetime
from pathlib import Path

import numpy as np
import pydicom
import pytest
from store_helpers import (DATA, DICOM_CXR, DICOM_ECG, HL7, MUSE, MUSE2, PHILIPS, PTB, PTBXL, copy_wfdb,
                           muse_visit)

from engine.cli import main
from engine.deid import REPORT_NAME, deidentify
from engine.deid.keys import DeidKeys
from engine.errors import DeidError
from engine.io import read_ecg
from engine.io.ecg_common import statement_texts
from engine.store import Store, patient_key, verify
from engine.store.audit import iter_entries
from engine.store.scan import content_files, content_sha256

KEY = b"test key for the export"
EDF = DATA / "formats" / "edf" / "DERIVED_from_mortara_eli250_dicom.edf"
#: Identifying strings of the sample files (names, IDs, institutions, staff).
IDENTIFIERS = ("DOE", "JOHN", "081486213", "JAX01234", "TEST 05", "Clark", "SBJ-123", "River City",
               "John Smith", "Masoudi", "642341", "Galliera", "19710123", "03028041970546", "13002689",
               "SURGEON", "W721", "1003872633", "EKG16296", "1976-01-01", "07-08-1979", "Haagse",
               "MCH-0234567", "ECG date", "Storage Card")


def _by_format(report) -> dict[str, list]:
    out: dict[str, list] = {}
    for f in report.files:
        out.setdefault(f.format, []).append(f)
    return out


@pytest.fixture()
def sources(tmp_path) -> Path:
    src = tmp_path / "src"
    (src / "dicom").mkdir(parents=True)
    shutil.copyfile(DICOM_ECG, src / "dicom" / "ecg.dcm")
    ds = pydicom.dcmread(DICOM_ECG)  # a second ECG of the same patient and study, a day later
    ds.SOPInstanceUID = ds.SOPInstanceUID + ".2"
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.AcquisitionDateTime = "20130126105919"
    ds.save_as(src / "dicom" / "ecg2.dcm")
    shutil.copyfile(DICOM_CXR, src / "dicom" / "cxr.dcm")
    for f in (MUSE, MUSE2, PHILIPS, HL7):
        (src / "xml").mkdir(exist_ok=True)
        shutil.copyfile(f, src / "xml" / f.name)
    muse_visit(src / "xml" / "muse_prior.xml", "04-29-2022", 72)
    copy_wfdb(PTB, src / "wfdb")
    hea = copy_wfdb(PTBXL, src / "wfdb")
    text = hea.read_text().splitlines()
    text[0] += " 10:11:12 01/02/2003"  # a base time and date on the record line
    hea.write_text("\n".join(text) + "\n")
    raw = bytearray(EDF.read_bytes())  # the real EDF with identifiers typed into its header
    raw[8:88] = b"MCH-0234567 F 02-MAY-1951 Haagse_Harry".ljust(80)
    raw[88:168] = b"Startdate 02-MAR-2002 PSG-1234/2002 NN Telemetry03".ljust(80)
    raw[168:176] = b"02.03.02"
    (src / "edf").mkdir()
    (src / "edf" / "rec.edf").write_bytes(bytes(raw))
    return src


def _hashes(folder: Path) -> dict[str, str]:
    return {str(p): content_sha256([str(p)]) for p in folder.rglob("*") if p.is_file()}


def test_every_format_deidentified_and_originals_untouched(sources, tmp_path):
    before = _hashes(sources)
    report = deidentify([sources], tmp_path / "out", key=KEY)
    assert _hashes(sources) == before  # originals never modified
    assert report.n_failed == 0 and report.n_ok == 11
    assert all(f.source_unchanged for f in report.files)
    fmt = _by_format(report)
    assert {k: len(v) for k, v in fmt.items()} == {"dicom": 3, "muse-xml": 3, "philips-xml": 1,
                                                   "hl7-aecg": 1, "wfdb": 2, "edf": 1}
    out = Path(report.out_dir)
    for f in out.iterdir():  # no identifier anywhere in the copies or the report
        data = f.read_bytes()
        for ident in IDENTIFIERS:
            assert ident.encode() not in data, (ident, f.name)
            assert ident.encode("utf-16-le") not in data, (ident, f.name)
    names = {p.name for p in out.iterdir()}
    assert not any(n.startswith(("ecg", "cxr", "egm", "musephi", "philips", "hl7", "s0010", "00001"))
                   for n in names)  # original names (which may carry identifiers) are not reused
    saved = json.loads((out / REPORT_NAME).read_text())
    assert len(saved["files"]) == 11 and str(sources) not in (out / REPORT_NAME).read_text()


def test_dicom_profile_dates_and_uids(sources, tmp_path):
    report = deidentify([sources / "dicom"], tmp_path / "out", key=KEY)
    keys = DeidKeys(KEY)
    out = {f.source_sha256: Path(report.out_dir) / f.outputs[0] for f in report.files}
    src = {content_sha256([str(p)]): p for p in (sources / "dicom").iterdir()}
    pairs = {src[sha].name: (pydicom.dcmread(src[sha]), pydicom.dcmread(path)) for sha, path in out.items()}
    o, d = pairs["ecg.dcm"]
    pkey = "id:642341"
    assert d.PatientID == d.PatientName == keys.pseudonym(pkey)
    assert d.PatientBirthDate == "" and d.PatientSex == "" and "PatientAge" not in d
    for gone in ("InstitutionName", "AdmissionID", "CurrentPatientLocation", "DeviceSerialNumber",
                 "StationName", "StudyDescription", "OtherPatientIDs", "AcquisitionContextSequence",
                 "NameOfPhysiciansReadingStudy", "OperatorsName", "RequestingPhysician"):
        assert gone not in d, gone
    assert d.AccessionNumber == "" and d.StudyID == "" and d.ReferringPhysicianName == ""
    assert d.PatientIdentityRemoved == "YES" and d.LongitudinalTemporalInformationModified == "MODIFIED"
    assert [c.CodeValue for c in d.DeidentificationMethodCodeSequence] == ["113100", "113107"]
    assert not any(e.tag.is_private for e in d.iterall())
    days = keys.offset_days(pkey)
    shift = lambda a, b, fmt="%Y%m%d": (datetime.strptime(b[:8], fmt) - datetime.strptime(a[:8], fmt)).days
    assert shift(o.StudyDate, d.StudyDate) == shift(o.ContentDate, d.ContentDate) == days
    assert shift(o.AcquisitionDateTime, d.AcquisitionDateTime) == days
    assert d.AcquisitionDateTime[8:] == o.AcquisitionDateTime[8:]  # time of day kept
    assert d.StudyTime == o.StudyTime
    # UIDs: replaced, the same study keeps one new UID, the file meta follows the SOP instance
    o2, d2 = pairs["ecg2.dcm"]
    assert d.StudyInstanceUID == d2.StudyInstanceUID == keys.uid(o.StudyInstanceUID) != o.StudyInstanceUID
    assert d.SOPInstanceUID != d2.SOPInstanceUID and d.SOPInstanceUID.startswith("2.25.")
    assert d.file_meta.MediaStorageSOPInstanceUID == d.SOPInstanceUID
    assert d.SOPClassUID == o.SOPClassUID  # registry UIDs kept
    assert shift(o2.AcquisitionDateTime, d2.AcquisitionDateTime) == days  # same patient, same offset
    # the waveform and its statements are kept: engine.io reads the same signal
    ro, rd = read_ecg(sources / "dicom" / "ecg.dcm"), read_ecg(out[content_sha256([str(sources / 'dicom' / 'ecg.dcm')])])
    assert np.array_equal(ro.signal, rd.signal) and ro.leads == rd.leads
    assert rd.meta["patient_id"] == keys.pseudonym(pkey) and "institution" not in rd.meta
    assert statement_texts(rd.meta["statements"]) == statement_texts(ro.meta["statements"]) == \
        ["RITMO SINUSALE", "ECG NORMALE"]
    # the chest X-ray: another patient, its own offset and pseudonym; pixels unchanged
    oc, dc = pairs["cxr.dcm"]
    ckey = patient_key({"patient_id": str(oc.PatientID)})
    assert dc.PatientID == keys.pseudonym(ckey) != d.PatientID
    assert shift(oc.StudyDate, dc.StudyDate) == keys.offset_days(ckey)
    assert dc.PixelData == oc.PixelData and dc.StudyInstanceUID == keys.uid(oc.StudyInstanceUID)


def test_same_key_same_outputs_other_key_other_pseudonyms(sources, tmp_path):
    a = deidentify([sources / "dicom" / "ecg.dcm"], tmp_path / "a", key=KEY)
    b = deidentify([sources / "dicom" / "ecg.dcm"], tmp_path / "b", key=KEY)
    c = deidentify([sources / "dicom" / "ecg.dcm"], tmp_path / "c", key=b"another key")
    read = lambda r: pydicom.dcmread(Path(r.out_dir) / r.files[0].outputs[0])
    assert read(a).StudyInstanceUID == read(b).StudyInstanceUID != read(c).StudyInstanceUID
    assert read(a).PatientID == read(b).PatientID != read(c).PatientID


def test_xml_files_read_back_without_identifiers(sources, tmp_path):
    report = deidentify([sources / "xml"], tmp_path / "out", key=KEY)
    keys = DeidKeys(KEY)
    src = {content_sha256([str(p)]): p for p in (sources / "xml").iterdir()}
    shifts = {}
    for f in report.files:
        o = read_ecg(src[f.source_sha256])
        d = read_ecg(Path(report.out_dir) / f.outputs[0])
        assert np.array_equal(o.signal, d.signal) and o.leads == d.leads and o.fs == d.fs
        for k in ("patient_name", "birth_date", "age", "sex", "institution"):
            assert d.meta.get(k) is None, (src[f.source_sha256].name, k, d.meta.get(k))
        assert d.meta["patient_id"] == f.patient_pseudonym == keys.pseudonym(f"id:{o.meta['patient_id'].upper()}")
        assert d.meta["device_measurements"] == o.meta["device_measurements"]
        assert [s["text"] for s in d.meta["statements"]] == [s["text"] for s in o.meta["statements"]]
        fmt = "%Y-%m-%d %H:%M:%S"
        delta = datetime.strptime(d.meta["acquired"], fmt) - datetime.strptime(o.meta["acquired"], fmt)
        assert delta.seconds == 0 and delta.days == keys.offset_days(f"id:{o.meta['patient_id'].upper()}")
        shifts[src[f.source_sha256].name] = delta.days
    # the two ECGs of the MUSE patient moved by the same number of days
    assert shifts["egm_muse-sinus.xml"] == shifts["muse_prior.xml"] < 0


def test_wfdb_comments_stripped_record_renamed(sources, tmp_path):
    report = deidentify([sources / "wfdb"], tmp_path / "out", key=KEY, keep_characteristics=True)
    out = Path(report.out_dir)
    by_outputs = {f.outputs[0]: f for f in report.files}
    for name, f in by_outputs.items():
        hea = (out / name).read_text()
        d = read_ecg(out / name)
        assert d.meta["record_name"] == name[:-4]
        assert len(hea.splitlines()[0].split()) == 4  # no base time / date
        comments = [ln for ln in hea.splitlines() if ln.startswith("#")]
        assert all(ln.split(":")[0].strip("# <>").lower() in ("age", "sex", "dx", "diagnoses") for ln in comments)
        if d.n_samples == 38400:  # PTB: 48 comment lines before, only age and sex kept
            o = read_ecg(sources / "wfdb" / "s0010_re.hea")
            assert np.array_equal(o.signal, d.signal) and d.meta["age"] == 81 and d.meta.get("acquired") is None
            assert len(f.outputs) == 3 and {Path(x).suffix for x in f.outputs} == {".hea", ".dat", ".xyz"}
            assert "ecg date" in f.changes["comments_removed"]
        else:
            assert f.changes["base_time_date_removed"] is True


def test_edf_header_fields_replaced_and_start_date_shifted(sources, tmp_path):
    report = deidentify([sources / "edf"], tmp_path / "out", key=KEY)
    (f,) = report.files
    src = (sources / "edf" / "rec.edf").read_bytes()
    out = (Path(report.out_dir) / f.outputs[0]).read_bytes()
    assert out[8:88].decode().strip() == "X X X X"
    days = DeidKeys(KEY).offset_days("edf:MCH-0234567")
    start = datetime.strptime(out[168:176].decode(), "%d.%m.%y")
    assert (start - datetime(2002, 3, 2)).days == days
    assert out[88:168].decode().split() == ["Startdate", start.strftime("%d-%b-%Y").upper(), "X", "X",
                                            "Telemetry03"]
    assert out[176:] == src[176:]  # the rest of the header and every data record unchanged
    pyedflib = pytest.importorskip("pyedflib")  # the copy is still a valid EDF+ file (an oracle)
    with pyedflib.EdfReader(str(Path(report.out_dir) / f.outputs[0])) as r:
        assert r.signals_in_file == 12 and r.getPatientName() == "X"


def test_scp_ecg_patient_section_cleared_crcs_valid(tmp_path):
    folder = DATA / "formats" / "scp_ecg"
    report = deidentify([folder], tmp_path / "out", key=KEY)
    assert report.n_ok == 2 and {f.format for f in report.files} == {"scp-ecg"}
    keys = DeidKeys(KEY)
    src = {content_sha256([str(p)]): p for p in folder.iterdir()}
    for f in report.files:
        o = read_ecg(src[f.source_sha256])
        d = read_ecg(Path(report.out_dir) / f.outputs[0])  # the reader checks every CRC
        assert np.array_equal(o.signal, d.signal) and o.leads == d.leads
        pkey = patient_key(o.meta)
        assert d.meta["patient_id"] == keys.pseudonym(pkey)[: len(d.meta["patient_id"])]
        assert d.meta["patient_id"].startswith("ANON-")
        for k in ("patient_name", "birth_date", "age", "sex", "institution", "confirming_physician"):
            assert d.meta.get(k) is None, (k, d.meta.get(k))
        if "acquired" in o.meta:
            fmt = "%Y-%m-%d %H:%M:%S"
            delta = datetime.strptime(d.meta["acquired"], fmt) - datetime.strptime(o.meta["acquired"], fmt)
            assert delta.days == keys.offset_days(pkey) and delta.seconds == 0
        data = (Path(report.out_dir) / f.outputs[0]).read_bytes()
        for ident in ("Clark", "SBJ-123", "REMOVED", "ANON000002"):
            assert ident.encode() not in data


def test_unsupported_and_refused_outputs(sources, tmp_path):
    scp = tmp_path / "in" / "ecg.scp"
    scp.parent.mkdir()
    scp.write_bytes(bytes(200))
    (tmp_path / "in" / "notes.txt").write_text("not an ECG")
    r = deidentify([scp, tmp_path / "in" / "notes.txt", sources / "dicom" / "ecg.dcm"], tmp_path / "out", key=KEY)
    assert [f.ok for f in r.files] == [False, False, True]
    assert "patient data section" in r.files[0].error and "not exported" in r.files[0].error
    assert "not a format the de-identified export handles" in r.files[1].error
    with pytest.raises(DeidError, match="inside the source folder"):
        deidentify([sources], sources / "xml" / "deid")
    with pytest.raises(DeidError, match="already holds files"):
        deidentify([sources / "dicom"], tmp_path / "out")
    assert not (sources / "xml" / "deid").exists()


def test_cli_and_audit_trail(sources, tmp_path, capsys):
    store_path = tmp_path / "store.sqlite3"
    key_file = tmp_path / "key.bin"
    key_file.write_bytes(KEY)
    code = main(["deid", str(sources / "xml"), "--out", str(tmp_path / "o"), "--key-file", str(key_file),
                 "--store", str(store_path), "--user", "Dr A"])
    assert code == 0 and "5 files de-identified, 0 not exported" in capsys.readouterr().out
    with Store(store_path) as s:
        entries = list(iter_entries(s))
        assert [e.action for e in entries] == ["deid_export"] * 5 and entries[0].user == "Dr A"
        assert {e.file_sha256 for e in entries} == {content_sha256(content_files(str(p)))
                                                   for p in (sources / "xml").iterdir()}
        assert verify(s).ok
    assert main(["deid", str(sources), "--out", str(sources / "x")]) == 2
    assert "inside the source folder" in capsys.readouterr().err
