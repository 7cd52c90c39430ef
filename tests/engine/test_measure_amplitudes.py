"""Per-lead amplitudes and voltage criteria of engine.measure: a synthetic dipole of
known amplitudes, and the criteria's arithmetic on a real record (DICOM, true mV)."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import pytest

from engine.io import read_ecg
from engine.measure import measure_ecg
from engine.measure.amplitudes import qrs_waves, voltage_criteria

from test_measure import _dipole_record

DICOM = Path(__file__).resolve().parents[1] / "data" / "ecg" / "dicom" / "pydicom_waveform_ecg.dcm"


def test_dipole_amplitudes():
    """QRS 1.5 mV, T 0.3 mV, P 0.15 mV projected at 30 deg: lead I sees cos(30) of each."""
    m = measure_ecg(_dipole_record(30.0))
    a = m.amplitudes["I"]
    k = math.cos(math.radians(30.0))
    assert a["r_mv"] == pytest.approx(1.5 * k, rel=0.05)
    assert a["t_mv"] == pytest.approx(0.3 * k, rel=0.1)
    assert a["p_mv"] == pytest.approx(0.15 * k, rel=0.15)
    assert a["q_mv"] == 0.0 and a["s_mv"] == 0.0 and abs(a["st_j_mv"]) < 0.05
    # aVR sees the same waves inverted: a QS complex and a negative T
    assert m.amplitudes["aVR"]["q_mv"] < -1.0 and m.amplitudes["aVR"]["r_mv"] == 0.0
    assert m.amplitudes["aVR"]["t_mv"] < 0


def test_qrs_wave_naming():
    import numpy as np
    x = np.array([0, -0.1, -0.2, 0, 0.8, 1.2, 0.3, -0.4, -0.6, 0, 0.3, 0.1, 0])
    assert qrs_waves(x) == {"q_mv": -0.2, "r_mv": 1.2, "s_mv": -0.6, "r_prime_mv": 0.3}


def test_voltage_criteria_on_a_real_record():
    rec = read_ecg(DICOM)
    m = measure_ecg(rec)
    a, v = m.amplitudes, m.voltage
    assert v["sokolow_lyon_mv"] == pytest.approx(abs(a["V1"]["s_mv"]) + max(a["V5"]["r_mv"], a["V6"]["r_mv"]), abs=0.011)
    assert v["cornell_mv"] == pytest.approx(a["aVL"]["r_mv"] + abs(a["V3"]["s_mv"]), abs=0.011)
    assert rec.meta["sex"].startswith("F")   # women: +0.8 mV in the product
    assert v["cornell_product_mv_ms"] == pytest.approx((v["cornell_mv"] + 0.8) * m.values["qrs_ms"], abs=1.0)
    assert v["low_voltage_limb"] is False and v["low_voltage_chest"] is False
    # the same record at a fifth of the amplitude is low-voltage in the limb leads
    small = measure_ecg(replace(rec, signal=rec.signal * 0.2))
    assert small.voltage["low_voltage_limb"] is True


def test_criteria_without_leads_say_why():
    v = voltage_criteria({"I": {"r_mv": 1.0, "qrs_pp_mv": 1.0}}, 100.0, None)
    assert v["sokolow_lyon_mv"] is None and "V1" in v["sokolow_lyon_reason"]
    assert v["cornell_mv"] is None and v["low_voltage_limb"] is None
