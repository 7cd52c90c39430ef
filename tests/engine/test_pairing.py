"""engine.pairing on the identity fields the real readers put in meta (real ECG and CXR files;
tags changed only on copies)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pydicom

from engine.io import read_cxr, read_ecg
from engine.pairing import Pairing, compare_patients, identity, normalise_name

REPO = Path(__file__).resolve().parents[2]
DICOM_ECG = REPO / "tests/data/ecg/dicom/pydicom_waveform_ecg.dcm"
WFDB_ECG = REPO / "tests/data/ecg/wfdb/ptbxl/00001_lr.hea"
LUDB_ECG = REPO / "tests/data/ecg/wfdb/ludb/1.hea"
CXR_DICOM = next((REPO / "tests/data/cxr/dicom").glob("siim_*.dcm"))
CXR_PNG = REPO / "tests/data/cxr/png/nih/00000001_000.png"
DEMO = REPO / "resources/demo"


def cxr_copy(tmp_path: Path, **tags) -> Path:
    """A copy of the real SIIM chest DICOM with `tags` (DICOM keywords) set; pixels untouched."""
    ds = pydicom.dcmread(CXR_DICOM)
    for k, v in tags.items():
        setattr(ds, k, v)
    out = tmp_path / "cxr_copy.dcm"
    ds.save_as(out)
    return out


def test_dicom_ecg_and_another_patients_chest_film_are_different_patients():
    ecg, cxr = read_ecg(DICOM_ECG).meta, read_cxr(CXR_DICOM).meta
    assert ecg["patient_id"] == "642341" and cxr["patient_id"].startswith("16d7f894")
    p = compare_patients(ecg, cxr)
    assert p.status == "different_patient"
    assert p.mismatched == ("patient_id", "sex")
    assert "patient ID, sex" in p.reason and p.withhold_teacher
    gap = (date(2013, 1, 25) - date(1901, 1, 1)).days  # noted, not a mismatch
    assert p.acquired_gap_days == gap and f"acquired {gap} days apart" in p.reason


def test_the_ecgs_identifiers_set_on_a_copy_of_the_chest_film_make_the_same_patient(tmp_path):
    ecg = read_ecg(DICOM_ECG)
    ds = pydicom.dcmread(DICOM_ECG, stop_before_pixels=True)
    copy = cxr_copy(tmp_path, PatientID=ds.PatientID, PatientName="anonymous",
                    PatientBirthDate=ds.PatientBirthDate, PatientSex=ds.PatientSex)
    p = compare_patients(ecg.meta, read_cxr(copy).meta)
    assert p.status == "same_patient", p.reason
    assert p.matched == ("patient_id", "birth_date", "sex") and p.mismatched == ()
    assert p.reason.startswith("same patient: patient ID, birth date, sex agree.")
    assert "days apart" in p.reason  # a 1901 film beside a 2013 ECG is noted
    assert p.to_dict()["status"] == "same_patient" and not p.withhold_teacher


def test_name_in_another_spelling_agrees_and_another_name_disagrees(tmp_path):
    ecg = {**read_ecg(DICOM_ECG).meta, "patient_name": "DOE^JOHN"}
    same = read_cxr(cxr_copy(tmp_path, PatientID="642341", PatientName="Doe ^ John^^",
                             PatientSex="F")).meta
    assert compare_patients(ecg, same).status == "same_patient"
    other = read_cxr(cxr_copy(tmp_path, PatientID="642341", PatientName="DOE^JANE",
                              PatientSex="F")).meta
    p = compare_patients(ecg, other)
    assert p.status == "different_patient" and p.mismatched == ("patient_name",)
    assert "name" in p.reason and "(patient ID, sex agree)" in p.reason
    assert normalise_name("Doe^John^Paul") >= normalise_name("DOE^JOHN")  # middle name: still agrees
    assert normalise_name("ANONYMOUS") is None and normalise_name("") is None


def test_wfdb_ecg_without_identifiers_is_unknown():
    ecg = read_ecg(WFDB_ECG).meta
    p = compare_patients(ecg, read_cxr(CXR_DICOM).meta)
    assert p.status == "unknown" and p.matched == () and p.mismatched == ()
    assert "the ECG file carries no patient identifiers" in p.reason


def test_png_chest_film_without_identifiers_is_unknown():
    p = compare_patients(read_ecg(DICOM_ECG).meta, read_cxr(CXR_PNG).meta)
    assert p.status == "unknown"
    assert "the chest X-ray file carries no patient identifiers" in p.reason


def test_sex_alone_can_refuse_but_never_match(tmp_path):
    ludb = read_ecg(LUDB_ECG).meta
    assert ludb["sex"] == "F" and "patient_id" not in ludb
    male = read_cxr(CXR_DICOM).meta
    assert compare_patients(ludb, male).status == "different_patient"
    female = read_cxr(cxr_copy(tmp_path, PatientSex="F")).meta
    p = compare_patients(ludb, female)
    assert p.status == "unknown" and p.matched == ("sex",)
    assert "only the sex agrees" in p.reason


def test_shipped_demo_case_ecg_and_film_are_the_same_patient():
    ecg = read_ecg(DEMO / "case3_dicom_cardiomegaly_pleural_effusion_ecg.dcm").meta
    cxr = read_cxr(DEMO / "case3_dicom_cardiomegaly_pleural_effusion_cxr.dcm").meta
    p = compare_patients(ecg, cxr)
    assert p.status == "same_patient" and "patient_id" in p.matched
    assert p.acquired_gap_days == 0 and "apart" not in p.reason


def test_identity_keeps_only_small_identity_fields():
    meta = read_ecg(DICOM_ECG).meta
    ident = identity(meta)
    assert set(ident) == {"patient_id", "patient_name", "birth_date", "sex", "acquired"}
    assert compare_patients(ident, read_cxr(CXR_DICOM).meta) == compare_patients(meta, read_cxr(CXR_DICOM).meta)
    assert isinstance(compare_patients({}, {}), Pairing)
    assert "neither file" in compare_patients({}, {}).reason
