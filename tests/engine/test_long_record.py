"""The long-record window rule (engine.preprocess.long_record) and `cromotex predict` on
records longer than 300 s, including a 24-hour one the full read refuses."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from bundle_factory import make_bundle
from test_windowed_read import DATA, holter

from engine.cli import main
from engine.constants import PATHOLOGIES
from engine.inference import Predictor
from engine.io import read_ecg
from engine.io.windowed import open_ecg
from engine.preprocess import preprocess_ecg
from engine.preprocess.long_record import (LONG_MAX_WINDOWS, LONG_RULE, long_window_starts,
                                           preprocess_source, read_for_scoring)

LEADS = ["I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6"]


def tiled(folder: Path, seconds: int, name: str = "tiled") -> Path:
    """A real 10 s 500 Hz ECG (LUDB 1) repeated to `seconds`, with a ramp added so that
    every 10 s block differs; format 16, 1 uV units."""
    seed = np.round(read_ecg(DATA / "ecg/wfdb/ludb/1.hea").signal * 1000).astype(np.int64)
    blocks = [seed + 7 * k for k in range(seconds // 10)]
    d = np.concatenate(blocks, axis=1).astype("<i2")
    (folder / f"{name}.dat").write_bytes(d.T.tobytes())
    sums = d.astype(np.int64).sum(axis=1) % 65536
    sums = np.where(sums >= 32768, sums - 65536, sums)
    (folder / f"{name}.hea").write_text(f"{name} 12 500 {d.shape[1]}\n" + "".join(
        f"{name}.dat 16 1000/mV 16 0 {d[i, 0]} {sums[i]} 0 {lead}\n" for i, lead in enumerate(LEADS)))
    return folder / f"{name}.hea"


def test_window_starts_rule():
    assert LONG_MAX_WINDOWS == 30
    day = long_window_starts(43_200_000, 500.0)
    assert len(day) == 30 and day[0] == 0 and day[-1] == (8640 - 1) * 5000  # first and last whole window
    steps = np.diff(day) / 5000
    assert steps.min() >= 297 and steps.max() <= 298  # evenly spaced: 8639 / 29 = 297.9 windows
    assert long_window_starts(305 * 500, 500.0) == [k * 5000 for k in range(30)]  # T = 30: all
    assert long_window_starts(3000 * 1000, 1000.0)[:3] == [0, 10 * 10_000, 21 * 10_000]  # round(k 299/29)
    assert long_window_starts(9 * 500, 500.0) == []


def test_records_up_to_300_s_are_preprocessed_as_before():
    for path in (DATA / "ecg/wfdb/ptb_diagnostic/s0010_re.hea", DATA / "ecg/wfdb/ptbxl/00001_lr.hea",
                 DATA / "ecg/dicom/pydicom_waveform_ecg.dcm"):
        record, x = read_for_scoring(path)
        ref = preprocess_ecg(read_ecg(path, annotations=False))
        assert x.windows.tobytes() == ref.windows.tobytes() and x.report == ref.report
        assert "long_record" not in x.report


def test_long_record_windows_are_10_s_records(tmp_path):
    path = tiled(tmp_path, 600)  # 10 min: T = 60 windows, 30 scored, every second one (rounded)
    record, x = read_for_scoring(path)
    starts = long_window_starts(300_000, 500.0)
    assert x.windows.shape == (30, 12, 1000) and len(starts) == 30
    assert x.report["window_starts_s"] == [s / 500 for s in starts]
    assert x.report["window_starts_s"][-1] == 590.0 and x.report["long_record"] is True
    assert x.report["original_seconds"] == 600.0 and x.report["seconds_used"] == 300.0
    assert x.report["dropped_seconds"] == 300.0 and LONG_RULE in x.report["rule"]
    full = read_ecg(path)  # 600 s is within the full-read limits: the oracle
    for k, s in enumerate(starts):
        excerpt = type(full)(signal=full.signal[:, s:s + 5000], fs=full.fs, leads=full.leads)
        assert x.windows[k].tobytes() == preprocess_ecg(excerpt).windows[0].tobytes()
    assert record.signal.shape == (12, 30 * 5000)
    assert record.signal[:, 5000:10000].tobytes() == full.signal[:, starts[1]:starts[1] + 5000].tobytes()


@pytest.fixture(scope="module")
def bundle_dir(tmp_path_factory) -> Path:
    return make_bundle(tmp_path_factory.mktemp("b") / "bundle")


def test_predict_scores_a_24_hour_record_window_by_window(bundle_dir, tmp_path, capsys):
    path = holter(tmp_path)  # 43.2 M samples per lead: refused by read_ecg
    assert main(["predict", str(path), "--models", str(bundle_dir), "--no-progress"]) == 0
    obj = json.loads(capsys.readouterr().out.splitlines()[0])
    assert obj["ok"] is True, obj["error"]
    pre = obj["preprocessing"]
    assert pre["long_record"] is True and pre["original_seconds"] == 86_400.0
    assert len(pre["window_starts_s"]) == 30 and pre["window_starts_s"][0] == 0.0
    assert pre["window_starts_s"][-1] == 86_390.0
    _, x = preprocess_source(open_ecg(path))
    scores = Predictor(bundle_dir).predict_ecg_inputs(x.windows)
    for p in PATHOLOGIES:
        w = obj["window_probabilities"][p]
        assert len(w) == 30 and w == pytest.approx(list(scores[p].probabilities), abs=1e-6)
        assert obj["probabilities"][p] == pytest.approx(float(np.mean(w)), abs=1e-6)
    # 29 of the 30 scored windows are the sparse file's zeros: every lead is flagged flat
    assert obj["quality"]["flat_leads"] == LEADS and obj["quality"]["ok"] is False
