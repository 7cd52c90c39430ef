"""`cromotex predict --cxr` with a chest X-ray that declares more pixels than the readers
accept (issue 15): the ECG's line is still written, with the chest X-ray's typed error.
On a tiny real-ONNX bundle (tests/engine/bundle_factory.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from bundle_factory import REPO, make_bundle

from engine.cli import main

ECG = "tests/data/ecg/wfdb/ptbxl/00001_lr.hea"


@pytest.fixture(scope="module")
def bundle_dir(tmp_path_factory) -> Path:
    return make_bundle(tmp_path_factory.mktemp("b") / "bundle", reference_ecgs=(ECG,))


def run(argv, capsys) -> tuple[int, list[dict], str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, [json.loads(line) for line in out.splitlines()], err


def test_cxr_size_bomb_gives_its_line_with_the_error(bundle_dir, capsys, monkeypatch):
    """`predict --cxr` on a 164 KB PNG declaring 13000 x 13000 pixels (before: decoded to
    4 GB and scored; with less memory a MemoryError stopped the run with no line) writes the
    ECG's line with the chest X-ray's typed error naming the limit (issue 15)."""
    monkeypatch.chdir(REPO)
    bomb = str(REPO / "tests/data/fuzz_regressions/png_13000x13000_bomb.png")
    code, lines, err = run(["predict", str(REPO / ECG), "--models", str(bundle_dir),
                            "--cxr", bomb], capsys)
    assert code == 1 and len(lines) == 1 and lines[0]["ok"]
    assert lines[0]["cxr"]["ok"] is False and "at most 100 megapixels" in lines[0]["cxr"]["error"]
    assert "100 megapixels" in err
