"""`cromotex predict`: real sample files through the CLI on a tiny real-ONNX bundle."""

from __future__ import annotations

import csv
import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from bundle_factory import REPO, make_bundle

from engine.batch import iter_inputs
from engine.cli import build_predict_parser, main
from engine.constants import DEMO_DISCLAIMER, PATHOLOGIES
from engine.predict_output import CSV_COLUMNS, FIELDS

ECG_FILES = ("tests/data/ecg/wfdb/ptb_diagnostic/s0010_re.hea", "tests/data/ecg/wfdb/ptbxl/00001_lr.hea",
             "tests/data/ecg/wfdb/ludb/1.hea", "tests/data/ecg/wfdb_mat/cinc2021/HR06000.hea",
             "tests/data/ecg/dicom/pydicom_waveform_ecg.dcm")
CXR = "tests/data/cxr/png/nih/00000001_000.png"


@pytest.fixture(scope="module")
def bundle_dir(tmp_path_factory) -> Path:
    return make_bundle(tmp_path_factory.mktemp("b") / "bundle", reference_ecgs=ECG_FILES,
                       reference_cxrs=(CXR,))


def run(argv, capsys) -> tuple[int, list[dict], str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, [json.loads(line) for line in out.splitlines()], err


def test_sample_files_through_the_cli_match_reference_outputs(bundle_dir, capsys, monkeypatch):
    monkeypatch.chdir(REPO)
    ref = json.loads((bundle_dir / "reference_outputs.json").read_text())["cases"]
    code, lines, err = run(["predict", *ECG_FILES, "--models", str(bundle_dir), "--cxr", CXR,
                            "--no-progress"], capsys)
    assert code == 0, err
    assert DEMO_DISCLAIMER in err
    assert [o["file"] for o in lines] == list(ECG_FILES)
    cxr_ref = next(c for c in ref if "cxr" in c)["cxr_probabilities"]
    for obj, case in zip(lines, [c for c in ref if "ecg" in c]):
        assert obj["ok"] is True and obj["error"] is None
        assert list(obj) == [name for name, _ in FIELDS]
        for p in PATHOLOGIES:
            assert obj["probabilities"][p] == pytest.approx(case["probabilities"][p], abs=1e-5)
            assert obj["positive"][p] == (obj["probabilities"][p] >= obj["thresholds"][p])
            assert obj["ood"][p]["ood"] is False and obj["ood"][p]["distance"] > 0
            assert obj["cxr"]["probabilities"][p] == pytest.approx(cxr_ref[p], abs=1e-5)
        assert obj["model"]["bundle_id"] == "test-tiny-0" and obj["model"]["demo"] is True
        assert obj["model"]["data"] == "phantom" and obj["model"]["disclaimer"] == DEMO_DISCLAIMER
        assert obj["quality"]["ok"] in (True, False) and "flat_leads" in obj["quality"]
    ptb = lines[0]
    assert ptb["preprocessing"]["original_fs"] == 1000
    assert ptb["preprocessing"]["window_starts_s"] == [0.0, 10.0, 20.0]
    for p in PATHOLOGIES:
        w = ptb["window_probabilities"][p]
        assert len(w) == 3 and ptb["probabilities"][p] == pytest.approx(sum(w) / 3, abs=1e-15)


def test_cli_output_is_bit_identical_across_runs_and_to_the_library(bundle_dir, capsys, tmp_path):
    from engine.inference import Predictor
    from engine.io import read_ecg

    files = [str(REPO / f) for f in ECG_FILES]
    outs = []
    for run_no in range(2):
        code = main(["predict", *files, "--models", str(bundle_dir), "--no-progress",
                     "-o", str(tmp_path / f"out{run_no}.jsonl")])
        assert code == 0
        outs.append((tmp_path / f"out{run_no}.jsonl").read_bytes())
    assert outs[0] == outs[1]
    # the default scores files in parallel on 1-thread sessions; 2 threads, one file at a time: same bytes
    assert main(["predict", *files, "--models", str(bundle_dir), "--no-progress", "--threads", "2",
                 "--workers", "1", "-o", str(tmp_path / "serial.jsonl")]) == 0
    assert (tmp_path / "serial.jsonl").read_bytes() == outs[0]
    lib = Predictor(bundle_dir)  # DEFAULT_THREADS intra-op threads, models concurrent: same bits
    for line, f in zip(outs[0].splitlines(), files):
        obj, preds = json.loads(line), lib.predict_ecg(read_ecg(f))
        assert obj["probabilities"] == {p: v.probability for p, v in preds.items()}
        assert obj["window_probabilities"] == {p: list(v.window_probabilities)
                                               for p, v in preds.items()}
    # cross-file micro-batching (opt-in) scores the same files, to within float rounding
    assert main(["predict", *files, "--models", str(bundle_dir), "--no-progress", "--batch", "16",
                 "-o", str(tmp_path / "batched.jsonl")]) == 0
    for a, b in zip(outs[0].splitlines(), (tmp_path / "batched.jsonl").read_bytes().splitlines()):
        pa, pb = json.loads(a)["probabilities"], json.loads(b)["probabilities"]
        assert pa == pytest.approx(pb, abs=1e-6)


def test_folder_mixing_good_and_bad_files(bundle_dir, tmp_path, capsys):
    folder = tmp_path / "mixed"
    (folder / "sub").mkdir(parents=True)
    for f in ("ludb/1.hea", "ludb/1.dat", "ptbxl/00001_lr.hea", "ptbxl/00001_lr.dat"):
        shutil.copy(REPO / "tests/data/ecg/wfdb" / f, folder / "sub" / Path(f).name)
    shutil.copy(REPO / "tests/data/ecg/dicom/pydicom_waveform_ecg.dcm", folder / "good.dcm")
    (folder / "empty.hea").write_bytes(b"")
    (folder / "text.dcm").write_text("this is not DICOM\n")
    shutil.copy(REPO / "tests/data/ecg/wfdb/ludb/2.hea", folder / "no_signal.hea")  # .dat missing
    shutil.copy(next((REPO / "tests/data/cxr/dicom").glob("*.dcm")), folder / "chest.dcm")
    (folder / "notes.txt").write_text("ignored: not an ECG suffix")
    code, lines, err = run(["predict", str(folder), "--models", str(bundle_dir), "--no-progress"],
                           capsys)
    assert code == 1
    by_name = {Path(o["file"]).name: o for o in lines}
    assert sorted(by_name) == sorted(["1.hea", "00001_lr.hea", "good.dcm", "empty.hea",
                                      "text.dcm", "no_signal.hea", "chest.dcm"])
    assert len(lines) == 7
    for good in ("1.hea", "00001_lr.hea", "good.dcm"):
        assert by_name[good]["ok"] is True and set(by_name[good]["probabilities"]) == set(PATHOLOGIES)
    for bad in ("empty.hea", "text.dcm", "no_signal.hea", "chest.dcm"):
        o = by_name[bad]
        assert o["ok"] is False and isinstance(o["error"], str) and o["error"]
        assert o["probabilities"] is None and o["model"]["bundle_id"] == "test-tiny-0"
    assert "4 of 7 inputs could not be scored" in err


def test_exit_status_zero_only_when_everything_scored(bundle_dir, capsys):
    good = str(REPO / ECG_FILES[1])
    code, lines, _ = run(["predict", good, "--models", str(bundle_dir)], capsys)
    assert code == 0 and lines[0]["ok"]
    code, lines, _ = run(["predict", good, str(REPO / "no/such/file.hea"), "--models",
                          str(bundle_dir)], capsys)
    assert code == 1 and [o["ok"] for o in lines] == [True, False]
    code, lines, _ = run(["predict", str(REPO / "tests/data/nothing_*.hea"), "--models",
                          str(bundle_dir)], capsys)
    assert code == 1 and lines[0]["error"].startswith("no file matches")
    code, lines, _ = run(["predict", good, "--models", str(bundle_dir), "--cxr",
                          str(REPO / ECG_FILES[1])], capsys)
    assert code == 1 and lines[0]["ok"] and lines[0]["cxr"]["ok"] is False


def test_unusable_bundle_exits_2_with_the_reason(bundle_dir, tmp_path, capsys):
    broken = Path(shutil.copytree(bundle_dir, tmp_path / "broken"))
    data = bytearray((broken / "cxr_teacher.onnx").read_bytes())
    data[100] ^= 0xFF
    (broken / "cxr_teacher.onnx").write_bytes(bytes(data))
    code, lines, err = run(["predict", str(REPO / ECG_FILES[1]), "--models", str(broken)], capsys)
    assert code == 2 and lines == []
    assert "cxr_teacher.onnx: sha256 does not match" in err


def test_glob_and_csv_output_with_progress_bar(bundle_dir, tmp_path, capsys):
    out = tmp_path / "out.csv"
    code = main(["predict", str(REPO / "tests/data/ecg/wfdb/ludb/*.hea"), "--models",
                 str(bundle_dir), "--format", "csv", "-o", str(out)])
    err = capsys.readouterr().err
    names = sorted(p.name for p in (REPO / "tests/data/ecg/wfdb/ludb").glob("*.hea"))
    assert code == 0 and len(names) >= 4
    assert "scoring" in err and f"{len(names)}file" in err.replace(" ", "")  # tqdm bar on stderr
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert sorted(Path(r["file"]).name for r in rows) == names
    for r in rows:
        assert r["ok"] == "True" and r["n_windows"] == "1" and r["demo"] == "True"
        assert 0 < float(r["probability_edema"]) < 1 and r["bundle_id"] == "test-tiny-0"


def test_inputs_are_expanded_lazily_and_recursively(tmp_path):
    (tmp_path / "a" / "b").mkdir(parents=True)
    for name in ("a/x.hea", "a/x.dat", "a/b/y.dcm", "a/b/z", "a/b/.hidden.hea", "a/readme.txt"):
        (tmp_path / name).write_text("")
    items = iter_inputs([str(tmp_path / "a")])
    assert iter(items) is items  # a generator, not a list
    assert [Path(i.path).relative_to(tmp_path).as_posix() for i in items] == \
        ["a/x.hea", "a/b/y.dcm", "a/b/z"]
    (tmp_path / "empty").mkdir()
    [item] = list(iter_inputs([str(tmp_path / "empty")]))
    assert "no ECG files" in item.error


def test_help_documents_every_output_field():
    proc = subprocess.run([sys.executable, "-m", "engine.cli", "predict", "--help"],
                          capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 0
    for name, _ in FIELDS:
        assert f"  {name}: " in proc.stdout
    for option in ("--cxr", "--models", "--format", "-o", "--device", "exit status"):
        assert option in proc.stdout


def test_help_lists_every_csv_column():
    text = build_predict_parser().format_help()
    lines = text.splitlines()
    listing = lines[next(i for i, line in enumerate(lines) if line.startswith("CSV (--format csv)")) + 1]
    shown = [name.strip() for name in listing.split(",")]
    for column in CSV_COLUMNS:
        generic = next((column[:-len(p)] + "<pathology>" for p in PATHOLOGIES
                        if column.endswith("_" + p)), column)
        assert generic in shown, f"CSV column {column} is not in `cromotex predict --help`"
    assert all(p in text for p in PATHOLOGIES)


def test_vendor_xml_files_score_with_device_measurements_and_statements(bundle_dir, tmp_path, capsys):
    folder = tmp_path / "xml"
    folder.mkdir()
    for f in ("muse_xml/musephi_muse_ecg1.xml", "philips_xml/philips_1-04_ad4d3d80-d165_PageWriterTouch.xml",
              "hl7_aecg/hl7_2003-12_ballot_Example_aECG_Mortara.xml"):
        shutil.copy(REPO / "tests/data/formats" / f, folder / Path(f).name)
    (folder / "settings.xml").write_text('<?xml version="1.0"?><config/>')  # not an ECG: not picked up
    code, lines, _ = run(["predict", str(folder), "--models", str(bundle_dir), "--no-progress"], capsys)
    assert code == 0 and len(lines) == 3
    by_name = {Path(o["file"]).name: o for o in lines}
    muse = by_name["musephi_muse_ecg1.xml"]
    assert muse["ok"] and set(muse["probabilities"]) == set(PATHOLOGIES)
    assert muse["device_measurements"] == {"hr_bpm": 60.0, "pr_ms": 158.0, "p_ms": 78.0, "qrs_ms": 78.0,
                                           "qt_ms": 364.0, "qtc_ms": 364.0, "p_axis_deg": 49.0,
                                           "qrs_axis_deg": 54.0, "t_axis_deg": 46.0}
    assert muse["statements"][0] == {"text": "Ventricular-paced rhythm", "code": None, "confirmed": True}
    assert muse["quality"]["derived_leads"] == ["III", "aVR", "aVL", "aVF"]  # derived by the reader
    assert muse["preprocessing"]["leads_found"] == ["I", "II", "V1", "V2", "V3", "V4", "V5", "V6"]
    philips = by_name["philips_1-04_ad4d3d80-d165_PageWriterTouch.xml"]
    assert philips["statements"][0]["code"] == "SB" and philips["device_measurements"]["rr_ms"] == 1463.0
    assert by_name["hl7_2003-12_ballot_Example_aECG_Mortara.xml"]["statements"][0]["text"] == "Sinus Rhythm"
    out = tmp_path / "out.csv"
    code, _, _ = run(["predict", str(folder / "musephi_muse_ecg1.xml"), "--models", str(bundle_dir),
                      "--no-progress", "--format", "csv", "-o", str(out)], capsys)
    [row] = list(csv.DictReader(out.open()))
    assert row["device_hr_bpm"] == "60.0" and row["device_qrs_axis_deg"] == "54.0"
    assert row["statements"].startswith("Ventricular-paced rhythm; When compared with ECG of")
