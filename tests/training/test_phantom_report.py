"""phantom-report: ECG features measured on engine-preprocessed synthetic ECGs
with known rate, rhythm, QRS width and polarity; the report end to end on a
generated phantom cohort."""

from __future__ import annotations

import json

import numpy as np
import pytest

from engine.constants import LEADS, PATHOLOGIES
from engine.errors import PreprocessError
from engine.preprocess import preprocess_ecg
from engine.records import EcgRecord
from training.phantom.raw_ecg import raw_window
from training.phantom import report as report_mod
from training.phantom.report import ECG_FEATURES, ECG_MV_FEATURES, ecg_features, ecg_mv_features

FS = 500


def _record(beat_times: np.ndarray, qrs_sigma_s: float = 0.012, flip: tuple[str, ...] = ()
            ) -> EcgRecord:
    """12-lead 500 Hz, 10 s record in mV: QRS (Gaussian of `qrs_sigma_s`) + T wave
    at each beat time; leads in `flip` have inverted polarity."""
    t = np.arange(10 * FS) / FS
    sig = np.zeros_like(t)
    for b in beat_times:
        sig += np.exp(-0.5 * ((t - b) / qrs_sigma_s) ** 2)
        sig += 0.3 * np.exp(-0.5 * ((t - b - 0.28) / 0.04) ** 2)
    rows = [(-sig if name in flip else sig) * (0.5 + 0.1 * k) for k, name in enumerate(LEADS)]
    noise = 0.005 * np.random.default_rng(0).standard_normal((12, t.size))
    return EcgRecord(signal=(np.stack(rows) + noise).astype(np.float32), fs=FS, leads=LEADS)


def _features(rec: EcgRecord) -> dict[str, float]:
    return dict(zip(ECG_FEATURES, ecg_features(preprocess_ecg(rec).windows[0])))


@pytest.mark.parametrize("bpm", [50, 75, 120])
def test_heart_rate_of_a_regular_rhythm(bpm):
    f = _features(_record(np.arange(0.3, 10, 60.0 / bpm)))
    assert f["heart_rate_bpm"] == pytest.approx(bpm, rel=0.04)
    assert f["rr_cv"] < 0.03


def test_irregular_rhythm_wide_qrs_and_polarity():
    regular = _features(_record(np.arange(0.3, 10, 0.8)))
    rr = np.random.default_rng(1).uniform(0.45, 1.1, 20)
    irregular = _features(_record(0.3 + np.cumsum(rr)[np.cumsum(rr) < 9.5]))
    assert irregular["rr_cv"] > 0.15 > regular["rr_cv"]
    wide = _features(_record(np.arange(0.3, 10, 0.8), qrs_sigma_s=0.03))
    assert wide["qrs_width_ms"] > 1.5 * regular["qrs_width_ms"]
    flipped = _features(_record(np.arange(0.3, 10, 0.8), flip=("aVR", "V1")))
    assert flipped["qrs_polarity_aVR"] < -0.5 and flipped["qrs_polarity_V1"] < -0.5
    assert flipped["qrs_polarity_II"] > 0.5
    assert regular["qrs_t_log_ratio_II"] > np.log(2)  # QRS ~3x the T wave


def test_millivolt_features_of_a_known_record():
    """Lead k has a QRS of (0.5 + 0.1 k) mV: the raw window keeps it, in mV."""
    f = dict(zip(ECG_MV_FEATURES, ecg_mv_features(raw_window(_record(np.arange(0.3, 10, 0.8))))))
    for k, name in enumerate(LEADS):
        assert f[f"qrs_p2p_mv_{name}"] == pytest.approx(0.5 + 0.1 * k, abs=0.03)
    assert f["sokolow_lyon_mv"] == pytest.approx(1.6, abs=0.03)   # S(V1) ~0 + R(V6)
    assert f["cornell_mv"] == pytest.approx(0.9, abs=0.03)        # R(aVL) + S(V3) ~0
    assert f["limb_qrs_p2p_mean_mv"] == pytest.approx(0.75, abs=0.03)
    assert 0.1 < f["rms_mv"] < 0.4
    flipped = dict(zip(ECG_MV_FEATURES, ecg_mv_features(
        raw_window(_record(np.arange(0.3, 10, 0.8), flip=("V1",))))))
    assert flipped["sokolow_lyon_mv"] == pytest.approx(1.1 + 1.6, abs=0.05)


def test_raw_features_share_one_qrs_detection(monkeypatch):
    """`raw_ecg_features` detects QRS once and equals the two feature functions run apart."""
    x = raw_window(_record(np.arange(0.3, 10, 0.8)))
    apart = np.concatenate([ecg_features(x), ecg_mv_features(x)])
    calls = []
    detect = report_mod.qrs_peaks
    monkeypatch.setattr(report_mod, "qrs_peaks", lambda *a: calls.append(1) or detect(*a))
    together = report_mod.raw_ecg_features(x)
    assert len(calls) == 1
    np.testing.assert_array_equal(together, apart)


@pytest.mark.parametrize("signal, fs, match", [
    (np.zeros((12, 5000), np.float32), 0.0, "sampling rate"),
    (np.zeros((11, 5000), np.float32), 500, "lead names"),
    (np.zeros((12, 500), np.float32), 500, "1.00 s long"),
])
def test_raw_window_refuses_a_bad_record(signal, fs, match):
    """The raw reader applies the same record check as preprocessing: typed error."""
    with pytest.raises(PreprocessError, match=match):
        raw_window(EcgRecord(signal=signal, fs=fs, leads=LEADS))


def test_report_on_a_phantom_cohort(tmp_path, capsys):
    from training.phantom import cli as phantom_cli
    from training.cohort import build
    from training.phantom import report

    root, cohort = tmp_path / "phantom", tmp_path / "cohort"
    assert phantom_cli.main(["--subjects", "40", "--seed", "1", "--out", str(root)]) == 0
    assert build.main(["--mimic-root", str(root), "--out", str(cohort), "--quiet"]) == 0
    capsys.readouterr()
    assert report.main([str(cohort), "--out", str(tmp_path / "rep")]) == 0
    printed = capsys.readouterr().out
    result = json.loads((tmp_path / "rep" / "report.json").read_text())
    pairs = json.loads((cohort / "cohort.json").read_text())["splits"]
    for split in ("train", "val", "test"):
        assert result["pairs"][split] == pairs[split]["pairs"]
        for name in PATHOLOGIES:
            n = pairs[split]["pairs"]
            if n:
                assert result["prevalence"][split][name] == pytest.approx(
                    pairs[split]["positives"][name] / n)
    for modality in ("ecg", "ecg_raw", "ecg_raw_mv_only", "cxr"):
        for name in PATHOLOGIES:
            v = result["auroc"][modality][name]
            assert np.isnan(v) or 0.0 <= v <= 1.0
    assert any(not np.isnan(v) for v in result["auroc"]["ecg_raw"].values())
    raw = result["raw_ecg"]
    assert raw["unavailable"] is None and raw["failed"] == 0
    assert raw["read"] == sum(pairs[s]["pairs"] for s in ("train", "val", "test"))
    med = raw["mv_feature_medians"]
    assert set(med) == set(ECG_MV_FEATURES)
    assert 0.2 < med["qrs_p2p_mv_II"] < 5.0
    assert 0.5 < med["sokolow_lyon_mv"] < 6.0
    assert 0.02 < med["rms_mv"] < 1.0
    assert "AUROC ECG raw" in printed and "AUROC ECG prep" in printed
    assert "cardiomegaly" in printed and "source records read" in printed

    # Source gone (here: pointed elsewhere): the raw part is skipped and said, not fatal.
    assert report.main([str(cohort), "--out", str(tmp_path / "rep2"),
                        "--ecg-root", str(tmp_path / "gone")]) == 0
    printed = capsys.readouterr().out
    skipped = json.loads((tmp_path / "rep2" / "report.json").read_text())
    assert "is not available" in skipped["raw_ecg"]["unavailable"]
    assert all(np.isnan(v) for v in skipped["auroc"]["ecg_raw"].values())
    np.testing.assert_array_equal([skipped["auroc"]["ecg"][n] for n in PATHOLOGIES],
                                  [result["auroc"]["ecg"][n] for n in PATHOLOGIES])
    assert "ECG raw: skipped" in printed
    from PIL import Image
    for f in ("cxr_contact_sheet.png", *(f"ecg_{n}.png" for n in PATHOLOGIES)):
        with Image.open(tmp_path / "rep" / f) as im:
            assert im.size[0] > 500 and im.size[1] > 500
