"""engine.io.ecg_common: lead completion, device measurements, statements, formatting."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from engine.constants import LEADS
from engine.errors import CorruptFileError
from engine.io.ecg_common import (
    DEVICE_MEASUREMENT_KEYS, check_signal_size, complete_limb_leads, device_measurements,
    format_device_measurements, iso_date, iso_datetime, iso_time, person_name, statement,
    statement_texts, statements_confirmed, unit_label)


def _eight(n: int = 50, seed: int = 0) -> list[tuple[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    names = ["Lead I", "MDC_ECG_LEAD_II", "V1", "V2", "V3", "V4", "V5", "V6"]
    return [(name, rng.normal(size=n)) for name in names]


def test_eight_stored_leads_give_twelve_with_einthoven_goldberger() -> None:
    channels = _eight()
    out = complete_limb_leads(channels)
    assert out.leads == LEADS
    assert out.derived == ("III", "aVR", "aVL", "aVF")
    assert out.signal.dtype == np.float32 and out.signal.shape == (12, 50)
    i, ii = channels[0][1], channels[1][1]
    sig = {lead: out.signal[k] for k, lead in enumerate(out.leads)}
    np.testing.assert_allclose(sig["III"], ii - i, atol=1e-6)
    np.testing.assert_allclose(sig["aVR"], -(i + ii) / 2, atol=1e-6)
    np.testing.assert_allclose(sig["aVL"], i - ii / 2, atol=1e-6)
    np.testing.assert_allclose(sig["aVF"], ii - i / 2, atol=1e-6)
    np.testing.assert_allclose(sig["V4"], channels[5][1], atol=1e-6)
    assert out.original_names[:3] == ("Lead I", "MDC_ECG_LEAD_II", "")
    assert out.extra_signal is None and out.extra_names == ()


def test_stored_limb_leads_are_kept_not_rederived() -> None:
    channels = _eight() + [("III", np.full(50, 7.0))]
    out = complete_limb_leads(channels)
    assert out.derived == ("aVR", "aVL", "aVF")
    assert np.all(out.signal[out.leads.index("III")] == 7.0)


def test_paediatric_leads_stay_extra_channels() -> None:
    rng = np.random.default_rng(1)
    names = ["I", "II", "V3R", "V1", "V2", "V4", "V6", "MDC_ECG_LEAD_V7"]
    channels = [(name, rng.normal(size=20)) for name in names]
    out = complete_limb_leads(channels)
    assert "V3" not in out.leads and "V5" not in out.leads
    assert out.leads == ("I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V4", "V6")
    assert out.extra_names == ("V3R", "V7")
    np.testing.assert_allclose(out.extra_signal[0], channels[2][1], atol=1e-6)


def test_no_standard_lead_gives_empty_signal() -> None:
    out = complete_limb_leads([("Resp", np.zeros(10))])
    assert out.signal.shape == (0, 10) and out.leads == () and out.extra_names == ("Resp",)


def test_device_measurements_keeps_vocabulary_finite_floats_in_order() -> None:
    got = device_measurements({"qt_ms": "400", "hr_bpm": 72, "pr_ms": "", "qrs_ms": float("nan"),
                               "other": 3, "t_axis_deg": "-15"})
    assert got == {"hr_bpm": 72.0, "qt_ms": 400.0, "t_axis_deg": -15.0}
    assert list(got) == [k for k in DEVICE_MEASUREMENT_KEYS if k in got]
    assert all(isinstance(v, float) for v in got.values())
    assert format_device_measurements(got) == ["HR 72 bpm", "QT 400 ms", "T axis -15°"]


def test_statements_are_json_ready() -> None:
    items = [statement("  Sinus   rhythm ", "SR", True), statement("Abnormal ECG", None, True)]
    assert items[0] == {"text": "Sinus rhythm", "code": "SR", "confirmed": True}
    assert json.loads(json.dumps(items)) == items
    assert statement_texts(items + ["plain text"]) == ["Sinus rhythm", "Abnormal ECG", "plain text"]
    assert statements_confirmed(items) is True
    assert statements_confirmed([statement("x")]) is None


@pytest.mark.parametrize("raw, expected", [
    ("Doe^John", "Doe, John"), ("Clark^Christopher^J^Dr^III", "Clark, Dr Christopher J III"),
    ("Doe, John", "Doe, John"), ("", None), (None, None), ("Doe^", "Doe")])
def test_person_name(raw, expected) -> None:
    assert person_name(raw) == expected


def test_dates_times_units() -> None:
    assert iso_date("20021122") == "2002-11-22"
    assert iso_date("11-22-2002") == "2002-11-22"  # GE MUSE writes month first
    assert iso_date("2002-11-22") == "2002-11-22"
    assert iso_date("22.11.2002") == "2002-11-22"
    assert iso_date("not a date") is None and iso_date("20021322") is None
    assert iso_time("091000") == "09:10:00" and iso_time("09:10:00") == "09:10:00"
    assert iso_time("9:10") == "09:10" and iso_time("256000") is None
    assert iso_datetime("20021122091000") == "2002-11-22 09:10:00"
    assert iso_datetime("20021122091000.000-0500") == "2002-11-22 09:10:00"
    assert iso_datetime("11-22-2002", "09:10:00") == "2002-11-22 09:10:00"
    assert unit_label("{H.B.}/min") == "bpm" and unit_label("deg") == "°"
    assert unit_label("uV") == "µV" and unit_label("furlong") == "furlong"


def test_check_signal_size_refuses_absurd_sizes() -> None:
    check_signal_size(12, 5000, 500.0, "x")
    for args in ((12, 10 ** 9, 500.0), (0, 10, 500.0), (12, 10, 0.0), (12, 10, math.inf),
                 (12, -1, 500.0)):
        with pytest.raises(CorruptFileError, match="damaged"):
            check_signal_size(*args, "The file x")


def test_channels_of_different_lengths_are_a_caller_error() -> None:
    with pytest.raises(ValueError, match="different lengths"):
        complete_limb_leads([("I", np.zeros(10)), ("II", np.zeros(9))])
