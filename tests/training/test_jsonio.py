"""training.jsonio: the one atomic JSON writer, its NaN policies and exact bytes."""

import json
from pathlib import Path

import numpy as np
import pytest

from training.jsonio import write_json

DATA = {"b": float("nan"), "a": [np.float32(0.5), np.int64(3), float("inf")], "p": Path("x")}


def test_null_policy_is_strict_json_with_newline(tmp_path):
    path = tmp_path / "m.json"
    write_json(path, DATA)
    assert path.read_text() == ('{\n  "b": null,\n  "a": [\n    0.5,\n    3,\n    null\n  ],\n'
                                '  "p": "x"\n}\n')
    json.loads(path.read_text(), parse_constant=pytest.fail)
    assert not (tmp_path / "m.json.tmp").exists()


def test_literal_policy_keeps_nan_sorted_without_newline(tmp_path):
    path = tmp_path / "h.json"
    write_json(path, {"val_auroc": float("nan"), "epoch": 1}, nan="literal", sort_keys=True,
               trailing_newline=False)
    assert path.read_text() == '{\n  "epoch": 1,\n  "val_auroc": NaN\n}'


def test_replaces_an_existing_file(tmp_path):
    path = tmp_path / "x.json"
    path.write_text("old")
    write_json(path, [1])
    assert path.read_text() == "[\n  1\n]\n"


def test_unknown_policy_refused(tmp_path):
    with pytest.raises(ValueError, match="nan must be"):
        write_json(tmp_path / "x.json", [1], nan="none")
    assert not (tmp_path / "x.json").exists()
