"""The device's own measurements beside ours (engine.measure.device) on the real
vendor sample files."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.io import read_ecg
from engine.measure import measure_ecg
from engine.measure.device import comparable_value, device_values, differences

DATA = Path(__file__).resolve().parents[1] / "data"


def test_dicom_measurement_names_map_to_keys():
    rec = read_ecg(DATA / "ecg" / "dicom" / "pydicom_waveform_ecg.dcm")
    dev = device_values(rec.meta)
    assert dev == {"rr_ms": 982.0, "pr_ms": 161.0, "qrs_ms": 75.0, "qt_ms": 368.0, "qtc_ms": 370.0,
                   "p_axis_deg": 74.0, "qrs_axis_deg": 52.0, "t_axis_deg": 57.0}  # PP 0 left out


@pytest.mark.parametrize("name", ["muse_xml/egm_muse-sinus.xml", "muse_xml/musephi_muse_ecg1.xml",
                                  "philips_xml/philips_1-04_ad4d3d80-d165_PageWriterTouch.xml"])
def test_vendor_files_ours_close_to_the_cart(name):
    """HR within 1 bpm, QT within 25 ms, QTc (ours Bazett) within 25 ms, axes within
    15 deg of the cart's own values."""
    rec = read_ecg(DATA / "formats" / name)
    m = measure_ecg(rec)
    d = differences(m, device_values(rec.meta))
    assert abs(d["hr_bpm"]) <= 1.0
    assert abs(d["qt_ms"]) <= 25.0 and abs(d["qtc_ms"]) <= 25.0
    for k in ("p_axis_deg", "qrs_axis_deg", "t_axis_deg"):
        assert abs(d[k]) <= 15.0
    assert comparable_value(m, "qtc_ms") == m.qtc_all["bazett"]


def test_axis_difference_wraps():
    rec = read_ecg(DATA / "formats" / "muse_xml" / "egm_muse-sinus.xml")
    m = measure_ecg(rec)
    ours = m.values["qrs_axis_deg"]
    d = differences(m, {"qrs_axis_deg": ours + 350.0})
    assert d["qrs_axis_deg"] == pytest.approx(10.0)
