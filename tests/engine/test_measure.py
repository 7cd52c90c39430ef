"""engine.measure on real annotated LUDB records (cardiologists' reference),
fail-closed cases, QTc formulas and the axis of a synthetic dipole."""

from __future__ import annotations

import importlib.util
import json
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from engine.constants import LEADS
from engine.io import read_ecg
from engine.measure import GLOBAL_KEYS, measure_ecg, qtc_all
from engine.records import EcgRecord

ROOT = Path(__file__).resolve().parents[2]
LUDB = ROOT / "tests" / "data" / "ecg" / "wfdb" / "ludb"
DICOM = ROOT / "tests" / "data" / "ecg" / "dicom" / "pydicom_waveform_ecg.dcm"
#: Sinus records with annotations in tests/data (8 is AF + pacing, tested apart).
SINUS = (1, 2, 3, 9, 11, 13, 15, 17, 20)


def _bench():
    spec = importlib.util.spec_from_file_location("measure_accuracy", ROOT / "bench" / "measure_accuracy.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def pairs():
    ref = _bench().reference
    return {i: (ref(LUDB / str(i)), measure_ecg(read_ecg(LUDB / f"{i}.hea"))) for i in SINUS}


@pytest.mark.parametrize("rec", SINUS)
def test_ludb_record_against_cardiologists(pairs, rec):
    """Per record: HR within 1 bpm; PR within 15 ms; QRS -45..+15 ms (ours ends
    the QRS earlier than LUDB's annotators, see docs/results/measurements.md);
    QT within 60 ms (tangent T end earlier than the visual end)."""
    ref, m = pairs[rec]
    assert abs(m.values["hr_bpm"] - ref["hr_bpm"]) <= 1.0
    assert abs(m.values["pr_ms"] - ref["pr_ms"]) <= 15.0
    assert -45.0 <= m.values["qrs_ms"] - ref["qrs_ms"] <= 15.0
    assert abs(m.values["qt_ms"] - ref["qt_ms"]) <= 60.0
    assert m.values["qtc_ms"] == m.qtc_all["fridericia"]
    assert m.n_dominant >= 7 and not m.reasons


def test_ludb_mean_differences(pairs):
    """Over the 9 records: mean differences as the committed benchmark reports."""
    d = {k: np.mean([pairs[i][1].values[k] - pairs[i][0][k] for i in SINUS]) for k in ("pr_ms", "qrs_ms", "qt_ms")}
    assert abs(d["pr_ms"]) <= 10.0
    assert -30.0 <= d["qrs_ms"] <= 0.0
    assert abs(d["qt_ms"]) <= 30.0


def test_fiducials_and_median_beats(pairs):
    m = pairs[1][1]
    f = m.fiducials_ms
    assert f["p_on"] < f["p_off"] < f["qrs_on"] < 0 < f["qrs_off"] < f["t_off"]
    assert m.median_beats.shape[0] == 12 and m.median_beats.dtype == np.float32
    assert m.median_t0_ms < f["p_on"]
    assert m.median_t0_ms + 1000.0 * m.median_beats.shape[1] / m.median_fs > f["t_off"]
    assert f["qrs_off"] - f["qrs_on"] == m.values["qrs_ms"]
    d = json.loads(json.dumps(m.to_dict(include_median_beats=True)))
    assert set(GLOBAL_KEYS) <= set(d) and len(d["median_beats"]["mv"]) == 12
    assert set(d["amplitudes"]["V5"]) >= {"p_mv", "q_mv", "r_mv", "s_mv", "r_prime_mv", "st_j_mv", "st_j60_mv", "t_mv"}


def test_af_paced_record_fails_closed():
    """LUDB 8: atrial fibrillation with ventricular pacing: no P wave, paced."""
    m = measure_ecg(read_ecg(LUDB / "8.hea"))
    assert m.values["pr_ms"] is None and m.values["p_ms"] is None and m.values["p_axis_deg"] is None
    assert "P wave" in m.reasons["pr_ms"]
    assert "paced" in m.flags
    assert m.values["qrs_ms"] is None and "paced" in m.reasons["qrs_ms"]
    assert abs(m.values["hr_bpm"] - 72.0) <= 1.0


def test_flat_record():
    rec = read_ecg(LUDB / "1.hea")
    m = measure_ecg(replace(rec, signal=np.zeros_like(rec.signal)))
    assert all(m.values[k] is None for k in GLOBAL_KEYS)
    assert "flat" in m.reasons["hr_bpm"]


def test_too_short_record():
    rec = read_ecg(LUDB / "1.hea")
    m = measure_ecg(replace(rec, signal=rec.signal[:, :1000]))
    assert all(m.values[k] is None for k in GLOBAL_KEYS)
    assert m.reasons["qt_ms"].startswith("too short")


def test_very_noisy_record():
    rec = read_ecg(LUDB / "2.hea")
    rng = np.random.default_rng(0)
    noisy = rec.signal + rng.normal(0.0, 1.0, rec.signal.shape).astype(np.float32)
    m = measure_ecg(replace(rec, signal=noisy))
    assert m.values["pr_ms"] is None and m.values["qt_ms"] is None
    assert any(w in m.reasons["pr_ms"] for w in ("noise", "nois", "beats"))


def test_qtc_formulas_by_hand():
    q = qtc_all(400.0, 800.0)
    assert q["bazett"] == pytest.approx(400.0 / math.sqrt(0.8), abs=0.05)  # 447.2
    assert q["fridericia"] == pytest.approx(400.0 / 0.8 ** (1 / 3), abs=0.05)  # 430.9
    assert q["framingham"] == pytest.approx(430.8, abs=0.05)
    assert q["hodges"] == pytest.approx(426.25, abs=0.06)
    with pytest.raises(ValueError):
        qtc_all(0.0, 800.0)


def _dipole_record(angle_deg: float) -> EcgRecord:
    """10 s, 500 Hz, 60 bpm: P, QRS and T of one frontal dipole at `angle_deg`
    projected on the limb leads (lead angles of the hexaxial system)."""
    fs, n = 500.0, 5000
    t = np.arange(n) / fs
    w = np.zeros(n)
    for beat in np.arange(0.5, 10.0, 1.0):
        w += 0.15 * np.exp(-0.5 * ((t - beat + 0.16) / 0.02) ** 2)
        w += 1.5 * np.exp(-0.5 * ((t - beat) / 0.012) ** 2)
        w += 0.3 * np.exp(-0.5 * ((t - beat - 0.3) / 0.05) ** 2)
    lead_deg = {"I": 0, "II": 60, "III": 120, "aVR": -150, "aVL": -30, "aVF": 90}
    rows = [math.cos(math.radians(angle_deg - lead_deg[name])) * w for name in LEADS[:6]]
    rows += [k * w for k in (-0.6, -0.3, 0.4, 0.8, 1.0, 0.9)]
    return EcgRecord(signal=np.asarray(rows, dtype=np.float32), fs=fs, leads=LEADS)


@pytest.mark.parametrize("angle", [-45.0, 0.0, 60.0, 100.0, 160.0])
def test_axis_of_synthetic_dipole(angle):
    m = measure_ecg(_dipole_record(angle))
    for key in ("p_axis_deg", "qrs_axis_deg", "t_axis_deg"):
        diff = (m.values[key] - angle + 180.0) % 360.0 - 180.0
        assert abs(diff) <= 2.0, (key, m.values[key], m.reasons)


def test_dicom_against_device():
    """The Mortara file's own measurements: RR 982, PR 161, QRS 75, QT 368 ms,
    axes P 74, QRS 52, T 57 deg. Our QRS is longer than this cart's (102 ms) while
    shorter than LUDB's cardiologists' (docs/results/measurements.md): the two
    references place the QRS boundaries differently."""
    m = measure_ecg(read_ecg(DICOM))
    v = m.values
    assert abs(v["rr_ms"] - 982.0) <= 5.0
    assert abs(v["pr_ms"] - 161.0) <= 15.0
    assert 75.0 <= v["qrs_ms"] <= 75.0 + 30.0
    assert abs(v["qt_ms"] - 368.0) <= 30.0
    assert abs(v["p_axis_deg"] - 74.0) <= 10 and abs(v["qrs_axis_deg"] - 52.0) <= 10 and abs(v["t_axis_deg"] - 57.0) <= 10


def test_ectopic_beats_are_excluded_and_do_not_make_the_rhythm_irregular():
    """Demo case 1 (phantom): 13 beats, 4 of them premature with a pause after each.
    The median is built from the 9 others; normal-to-normal intervals are regular,
    so the rhythm is not called irregular and QTc uses their mean."""
    from engine.measure import beats, prep, qrs_detect

    rec = read_ecg(ROOT / "resources" / "demo" / "case1_cardiomegaly_edema_pleural_effusion_ecg.hea")
    m = measure_ecg(rec)
    x = prep.condition(rec.signal, rec.fs)
    bc = beats.classify_beats(x, qrs_detect.detect_qrs(x))
    assert m.n_beats == 13 and bc.premature.sum() == 4
    assert m.n_dominant == int(bc.dominant.sum()) <= 9
    assert "irregular rhythm" not in m.flags
    nn = beats.nn_intervals_ms(bc)
    assert m.qtc_all["bazett"] == pytest.approx(m.values["qt_ms"] / math.sqrt(nn.mean() / 1000.0), abs=0.1)
    assert m.rr_sd_ms > 150.0      # all-beat RR variability still reports the ectopy


def test_missing_leads():
    rec = read_ecg(LUDB / "1.hea")
    two = replace(rec, signal=rec.signal[6:8], leads=rec.leads[6:8])      # V1, V2 only
    m = measure_ecg(two)
    assert all(m.values[k] is None for k in GLOBAL_KEYS) and m.reasons["hr_bpm"].startswith("lead missing")
    chest = replace(rec, signal=rec.signal[6:], leads=rec.leads[6:])     # no limb leads
    m = measure_ecg(chest)
    assert m.values["qrs_ms"] is not None and abs(m.values["hr_bpm"] - 45.4) <= 1.0
    assert m.values["qrs_axis_deg"] is None and "lead missing" in m.reasons["qrs_axis_deg"]
    assert m.voltage["sokolow_lyon_mv"] is not None and m.voltage["cornell_mv"] is None
