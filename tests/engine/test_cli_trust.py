"""`cromotex predict --cxr` with the shipped bundle (real onnxruntime sessions): pairing, the
gate and calls in the JSON; nothing from the teacher beside another patient's ECG or on an
image the gate refused; a missing folder reported as a folder."""

from __future__ import annotations

import json
from pathlib import Path

import pydicom
import pytest

from engine.calls import CALLS
from engine.cli import main
from engine.constants import PATHOLOGIES

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "resources/demo"
CASE3_ECG = DEMO / "case3_dicom_cardiomegaly_pleural_effusion_ecg.dcm"
CASE3_CXR = DEMO / "case3_dicom_cardiomegaly_pleural_effusion_cxr.dcm"
OTHER_ECG = REPO / "tests/data/ecg/dicom/pydicom_waveform_ecg.dcm"
WFDB_ECG = REPO / "tests/data/ecg/wfdb/ptbxl/00001_lr.hea"
NIH = REPO / "tests/data/cxr/png/nih/00000001_000.png"


def run(argv, capsys) -> tuple[int, list[dict], str]:
    code = main(["predict", "--workers", "1", *map(str, argv)])
    out, err = capsys.readouterr()
    return code, [json.loads(line) for line in out.splitlines()], err


def test_two_patients_ecgs_beside_one_film_withhold_the_other_patients_teacher_output(capsys):
    code, (same, other, unknown), err = run([CASE3_ECG, OTHER_ECG, WFDB_ECG, "--cxr", CASE3_CXR], capsys)
    assert code == 0
    assert same["pairing"]["status"] == "same_patient"
    assert same["pairing"]["reason"] == "same patient: patient ID, name, sex agree."
    assert same["cxr"]["withheld"] is None and same["cxr"]["gate"]["accepted"]
    assert set(same["cxr"]["probabilities"]) == set(PATHOLOGIES)
    assert all(c in CALLS for c in same["cxr"]["call"].values())

    assert other["pairing"]["status"] == "different_patient"
    assert other["pairing"]["mismatched"] == ["patient_id"]
    c = other["cxr"]
    assert c["probabilities"] is None and c["positive"] is None and c["thresholds"] is None
    assert c["ood"] is None
    assert c["withheld"].startswith("the chest X-ray is withheld: different patients: the patient ID")
    assert c["call"] == {p: "not_assessable" for p in PATHOLOGIES}
    assert other["probabilities"] is not None  # the ECG's own results stay

    assert unknown["pairing"]["status"] == "unknown"
    assert "the ECG file carries no patient identifiers" in unknown["pairing"]["reason"]
    assert unknown["cxr"]["probabilities"] == same["cxr"]["probabilities"]
    for obj in (same, other, unknown):
        assert set(obj["call"]) == set(PATHOLOGIES) and set(obj["call_reason"]) == set(PATHOLOGIES)
        for p in PATHOLOGIES:
            assert obj["call"][p] in CALLS and obj["call_reason"][p]


def test_a_refused_image_gives_the_reason_and_no_teacher_numbers(tmp_path, capsys):
    ds = pydicom.dcmread(CASE3_CXR)
    ds.BodyPartExamined = "EXTREMITY"
    leg = tmp_path / "leg.dcm"
    ds.save_as(leg)
    code, (obj,), err = run([CASE3_ECG, "--cxr", leg], capsys)
    c = obj["cxr"]
    assert c["ok"] and c["gate"]["accepted"] is False
    assert c["gate"]["reason"] == ("not a frontal chest radiograph: the body part examined is "
                                   "EXTREMITY, not the chest")
    assert c["probabilities"] is None and c["positive"] is None
    assert c["withheld"] == "the teacher's output is withheld: " + c["gate"]["reason"]
    assert c["call"] == {p: "not_assessable" for p in PATHOLOGIES}
    assert obj["pairing"]["status"] == "same_patient"
    assert "withheld" in err


def test_a_missing_folder_is_reported_as_a_folder(tmp_path, capsys):
    code, (a, b), _ = run([f"{tmp_path}/no_such_folder/", tmp_path / "neither"], capsys)
    assert code == 1
    assert a["error"] == f"The folder {tmp_path}/no_such_folder/ does not exist. Check the path."
    assert b["error"] == f"No folder or file named {tmp_path / 'neither'} exists. Check the path."


def test_help_documents_pairing_gate_and_calls(capsys):
    assert main(["predict", "--help"]) == 0
    out = capsys.readouterr().out
    for word in ("pairing:", "different_patient", "gate:", "withheld", "call:", "borderline",
                 "not_assessable", "call_reason:"):
        assert word in out


def test_a_real_nih_film_is_refused_as_out_of_distribution(capsys):
    code, (obj,), err = run([WFDB_ECG, "--cxr", NIH], capsys)
    c = obj["cxr"]
    assert code == 0 and c["ok"] and c["gate"]["accepted"] is False
    assert c["gate"]["reason"].startswith("out of distribution: the image is unlike the teacher's")
    assert c["gate"]["checks"]["embedding_ood"]["value"]["distance"] == pytest.approx(94.89, abs=0.05)
    assert c["gate"]["checks"]["view"]["ok"] is None  # a PNG: view not verifiable
    assert c["probabilities"] is None and c["ood"] is None
    assert c["call"] == {p: "not_assessable" for p in PATHOLOGIES}
    assert obj["pairing"]["status"] == "unknown"
    assert "neither file carries patient identifiers" in obj["pairing"]["reason"]


def test_csv_carries_pairing_gate_and_calls(capsys):
    import csv
    import io
    code = main(["predict", "--workers", "1", "--format", "csv", str(CASE3_ECG), str(OTHER_ECG),
                 "--cxr", str(CASE3_CXR)])
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert code == 0 and [r["pairing"] for r in rows] == ["same_patient", "different_patient"]
    assert [r["cxr_gate_accepted"] for r in rows] == ["True", "True"]
    assert rows[0]["cxr_withheld"] == "" and rows[0]["cxr_probability_edema"] != ""
    assert rows[1]["cxr_withheld"].startswith("the chest X-ray is withheld: different patients")
    assert rows[1]["cxr_probability_edema"] == "" and rows[1]["cxr_call_edema"] == "not_assessable"
    for r in rows:
        for p in PATHOLOGIES:
            assert r[f"call_{p}"] in CALLS
