"""`cromotex predict` with file names of any bytes (issue 15, item 7) and sorted glob
expansion (issue 14): real sample files copied to non-UTF-8 names (Linux bytes paths) are
scored, the JSON and CSV outputs stay valid UTF-8 with the names escaped (JSON `\\udcXX`,
giving back the bytes through os.fsencode; CSV `\\xXX`), and later inputs are still scored."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from bundle_factory import REPO, make_bundle

from engine.batch import iter_inputs
from engine.cli import main
from engine.predict_output import csv_text, dumps

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="bytes file names are a Linux matter")

DICOM_ECG = REPO / "tests/data/ecg/dicom/pydicom_waveform_ecg.dcm"
PTBXL = REPO / "tests/data/ecg/wfdb/ptbxl/00001_lr.hea"
CAFE = b"caf\xe9.dcm"            # Latin-1 e-acute: not UTF-8
WFDB = b"\xff\xfe_lr.hea"        # never valid UTF-8


@pytest.fixture(scope="module")
def bundle_dir(tmp_path_factory) -> Path:
    return make_bundle(tmp_path_factory.mktemp("b") / "bundle")


@pytest.fixture
def folder(tmp_path) -> Path:
    """A DICOM ECG and a WFDB header under non-UTF-8 names, then an ordinary file after them
    (`z_after.dcm`), and a name that does not exist."""
    d = tmp_path / "in"
    d.mkdir()
    base = os.fsencode(d)
    shutil.copyfile(DICOM_ECG, base + b"/" + CAFE)
    shutil.copyfile(PTBXL, base + b"/" + WFDB)
    shutil.copyfile(PTBXL.with_suffix(".dat"), d / "00001_lr.dat")  # the header names this file
    shutil.copyfile(DICOM_ECG, d / "z_after.dcm")
    return d


def _inputs(d: Path) -> list[str]:
    base = os.fsencode(d) + b"/"
    return [os.fsdecode(base + CAFE), os.fsdecode(base + WFDB), os.fsdecode(base + b"gone\xe9.hea"),
            str(d / "z_after.dcm")]


def test_json_output_file_is_valid_utf8_and_gives_back_the_bytes(folder, bundle_dir, tmp_path):
    out = tmp_path / "out.jsonl"
    code = main(["predict", *_inputs(folder), "--models", str(bundle_dir), "-o", str(out),
                 "--no-progress", "--workers", "2"])
    assert code == 1  # the missing file
    lines = [json.loads(line) for line in out.read_bytes().decode("utf-8").splitlines()]
    base = os.fsencode(folder) + b"/"
    assert [os.fsencode(o["file"]) for o in lines] == [base + CAFE, base + WFDB, base + b"gone\xe9.hea",
                                                       base + b"z_after.dcm"]
    assert [o["ok"] for o in lines] == [True, True, False, True]
    assert lines[0]["probabilities"] == lines[3]["probabilities"]  # the same file under two names
    assert "gone\udce9.hea" in lines[2]["error"]
    assert "\\udce9.dcm" in out.read_text(encoding="utf-8")  # the escape, written as such


def test_csv_output_file_is_valid_utf8_with_escaped_names(folder, bundle_dir, tmp_path):
    out = tmp_path / "out.csv"
    assert main(["predict", *_inputs(folder), "--models", str(bundle_dir), "--format", "csv",
                 "-o", str(out), "--no-progress", "--workers", "1"]) == 1
    rows = list(csv.DictReader(out.read_bytes().decode("utf-8").splitlines()))
    assert [r["file"] for r in rows] == [f"{folder}/caf\\xe9.dcm", f"{folder}/\\xff\\xfe_lr.hea",
                                         f"{folder}/gone\\xe9.hea", f"{folder}/z_after.dcm"]
    assert [r["ok"] for r in rows] == ["True", "True", "False", "True"]
    assert "gone\\xe9.hea" in rows[2]["error"]


def test_stdout_is_valid_utf8(folder, bundle_dir):
    """A subprocess, so stdout is a real stream with the interpreter's own error handler."""
    env = {**os.environ, "LC_ALL": "C.UTF-8", "PYTHONIOENCODING": ""}
    proc = subprocess.run([sys.executable, "-m", "engine.cli", "predict", *map(os.fsencode, _inputs(folder)),
                           "--models", str(bundle_dir), "--no-progress", "--workers", "1"],
                          cwd=REPO, env=env, capture_output=True, timeout=300)
    assert proc.returncode == 1, proc.stderr.decode(errors="replace")
    lines = proc.stdout.decode("utf-8").splitlines()  # raises on invalid UTF-8
    assert [json.loads(line)["ok"] for line in lines] == [True, True, False, True]


def test_folder_and_glob_inputs_come_out_sorted(folder, tmp_path):
    for name in ("d.dcm", "b.dcm", "e.dcm", "a.dcm", "c.dcm"):  # created out of order
        shutil.copyfile(DICOM_ECG, tmp_path / name)
    globbed = [Path(i.path).name for i in iter_inputs([str(tmp_path / "*.dcm")])]
    assert globbed == ["a.dcm", "b.dcm", "c.dcm", "d.dcm", "e.dcm"]
    walked = [os.fsencode(i.path) for i in iter_inputs([str(folder)])]
    assert walked == sorted(walked, key=os.fsdecode) and len(walked) == 3


def test_escapes():
    name = os.fsdecode(b"/x/caf\xe9 \xc3\xa9.hea")  # an undecodable byte, then a real e-acute
    assert name == "/x/caf\udce9 \u00e9.hea"
    line = dumps({"file": name})
    assert line == '{"file": "/x/caf\\udce9 \u00e9.hea"}'
    line.encode("utf-8")
    assert os.fsencode(json.loads(line)["file"]) == b"/x/caf\xe9 \xc3\xa9.hea"
    assert csv_text(name) == "/x/caf\\xe9 \u00e9.hea" and csv_text(3) == 3
