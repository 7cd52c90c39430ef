"""`cromotex predict` JSON and CSV carry the computed measurements."""

from __future__ import annotations

import csv
import io
import json

import pytest
from bundle_factory import REPO, make_bundle

from engine.cli import main
from engine.io import read_ecg
from engine.measure import GLOBAL_KEYS, measure_ecg

LUDB1 = "tests/data/ecg/wfdb/ludb/1.hea"
LUDB8 = "tests/data/ecg/wfdb/ludb/8.hea"


@pytest.fixture(scope="module")
def bundle_dir(tmp_path_factory):
    return make_bundle(tmp_path_factory.mktemp("b") / "bundle", reference_ecgs=(LUDB1,))


def test_json_and_csv_carry_measurements(bundle_dir, capsys, monkeypatch):
    monkeypatch.chdir(REPO)
    assert main(["predict", LUDB1, LUDB8, "--models", str(bundle_dir), "--no-progress"]) == 0
    objs = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    want = measure_ecg(read_ecg(REPO / LUDB1)).to_dict()
    m = objs[0]["measurements"]
    for k in GLOBAL_KEYS:
        assert m[k] == want[k]
    assert abs(m["pr_ms"] - 142.0) <= 15.0 and m["qtc_formula"] == "fridericia"  # cardiologists: 142
    assert objs[1]["measurements"]["pr_ms"] is None and "P wave" in objs[1]["measurements"]["reasons"]["pr_ms"]
    assert main(["predict", LUDB1, LUDB8, "--models", str(bundle_dir), "--no-progress", "--format", "csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert float(rows[0]["measured_qt_ms"]) == want["qt_ms"]
    assert rows[0]["measured_qtc_formula"] == "fridericia"
    assert rows[1]["measured_pr_ms"] == "" and "pr_ms: " in rows[1]["measured_reasons"]
