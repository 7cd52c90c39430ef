"""DICOM ECG waveform reading on pydicom's real Mortara 12-lead file, plus wrong-kind
and damaged DICOM files made from it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest

from engine.constants import LEADS
from engine.errors import CorruptFileError, LeadError, UnsupportedFormatError
from engine.io import read_cxr, read_ecg

DATA = Path(__file__).resolve().parents[1] / "data"
DCM = DATA / "ecg" / "dicom" / "pydicom_waveform_ecg.dcm"
SIIM = next((DATA / "cxr" / "dicom").glob("*.dcm"))


@pytest.fixture(scope="module")
def rec():
    return read_ecg(DCM)


def test_rhythm_group_twelve_leads_1000_hz_in_mv(rec):
    assert rec.leads == LEADS
    assert rec.fs == 1000.0 and rec.signal.shape == (12, 10000) and rec.signal.dtype == np.float32
    assert rec.source.format == "dicom-ecg" and rec.meta["rhythm_group"] == 0
    # raw int16 * 1.25 uV sensitivity / 1000 -> mV, checked against pydicom's own conversion
    ds = pydicom.dcmread(DCM)
    np.testing.assert_allclose(rec.signal, ds.waveform_array(0).T / 1000.0, rtol=1e-6)
    raw = np.frombuffer(ds.WaveformSequence[0].WaveformData, dtype="<i2").reshape(10000, 12)
    np.testing.assert_allclose(rec.signal[1, :3], raw[:3, 1] * 1.25e-3, rtol=1e-6)
    assert rec.signal[0, 0] == pytest.approx(0.1)  # 80 * 1.25 uV


def test_physiological_amplitudes_and_lead_relations(rec):
    assert np.abs(rec.signal).max() < 10.0
    span = np.ptp(rec.lead("II"))
    assert 0.3 < span < 5.0
    lead = {n: rec.lead(n).astype(np.float64) for n in LEADS}
    assert np.abs(lead["III"] - (lead["II"] - lead["I"])).max() < 0.05 * span
    assert np.abs(lead["aVR"] + lead["aVL"] + lead["aVF"]).max() < 0.05 * span


def test_median_beats_statements_measurements_patient(rec):
    median = rec.meta["median_beats"]
    assert median["fs"] == 1000.0 and median["leads"] == LEADS
    assert median["signal"].shape == (12, 1200) and median["signal"].dtype == np.float32
    assert np.abs(median["signal"]).max() < 10.0
    assert rec.meta["statements"] == ["RITMO SINUSALE", "ECG NORMALE"]
    by_name = {m["name"]: m for m in rec.meta["measurements"]}
    assert by_name["QRS Duration"]["value"] == 75.0 and by_name["QRS Duration"]["units"] == "ms"
    assert by_name["QRS Axis"]["value"] == 52.0 and by_name["QRS Axis"]["units"] == "deg"
    assert by_name["RR Interval"]["value"] == 982.0
    assert rec.meta["patient_id"] == "642341" and rec.meta["age"] == 42 and rec.meta["sex"] == "F"
    assert rec.meta["birth_date"] == "1971-01-23" and rec.meta["acquired"] == "2013-01-25 10:59:19"
    assert rec.meta["device"]["manufacturer"] == "Mortara Instrument, Inc."
    assert rec.meta["device"]["model"] == "el250"
    assert rec.meta["original_lead_names"][0] == "Lead I (Einthoven)"


def test_rhythm_found_by_label_when_groups_are_swapped(tmp_path):
    ds = pydicom.dcmread(DCM)
    ds.WaveformSequence = pydicom.Sequence([ds.WaveformSequence[1], ds.WaveformSequence[0]])
    ds.save_as(tmp_path / "swapped.dcm")
    rec = read_ecg(tmp_path / "swapped.dcm")
    assert rec.meta["rhythm_group"] == 1 and rec.n_samples == 10000
    assert rec.meta["median_beats"]["signal"].shape == (12, 1200)


def test_rhythm_found_by_duration_without_labels_and_mv_units(tmp_path):
    ds = pydicom.dcmread(DCM)
    for group in ds.WaveformSequence:
        del group.MultiplexGroupLabel
        for ch in group.ChannelDefinitionSequence:  # sensitivity 0.00125 mV == 1.25 uV
            ch.ChannelSensitivity = "0.00125"
            ch.ChannelSensitivityUnitsSequence[0].CodeValue = "mV"
    ds.save_as(tmp_path / "nolabel.dcm")
    rec = read_ecg(tmp_path / "nolabel.dcm")
    assert rec.n_samples == 10000
    np.testing.assert_allclose(rec.signal, read_ecg(DCM).signal, rtol=1e-5, atol=1e-7)


def test_image_dicom_given_as_ecg_and_ecg_given_as_image():
    with pytest.raises(UnsupportedFormatError, match="open it as a chest X-ray"):
        read_ecg(SIIM)
    with pytest.raises(UnsupportedFormatError, match="Open it as an ECG"):
        read_cxr(DCM)


def test_truncated_waveform_data(tmp_path):
    ds = pydicom.dcmread(DCM)
    ds.WaveformSequence[0].WaveformData = ds.WaveformSequence[0].WaveformData[:1000]
    ds.save_as(tmp_path / "short.dcm")
    with pytest.raises(CorruptFileError, match="truncated"):
        read_ecg(tmp_path / "short.dcm")


def test_no_ecg_leads(tmp_path):
    ds = pydicom.dcmread(DCM)
    for group in ds.WaveformSequence:
        for k, ch in enumerate(group.ChannelDefinitionSequence):
            ch.ChannelSourceSequence[0].CodeMeaning = f"Pressure {k}"
            ch.ChannelSourceSequence[0].CodeValue = f"X{k}"
    ds.save_as(tmp_path / "nolead.dcm")
    with pytest.raises(LeadError, match="Pressure 0"):
        read_ecg(tmp_path / "nolead.dcm")


def test_pdf_dicom_is_refused_with_advice(tmp_path):
    ds = pydicom.dcmread(DCM)
    del ds.WaveformSequence
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.104.1"
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.EncapsulatedDocument = b"%PDF-1.4\n"
    ds.save_as(tmp_path / "pdf.dcm")
    with pytest.raises(UnsupportedFormatError, match="PDF"):
        read_ecg(tmp_path / "pdf.dcm")


def test_truncated_file(tmp_path):
    (tmp_path / "cut.dcm").write_bytes(DCM.read_bytes()[:5000])
    with pytest.raises(CorruptFileError):
        read_ecg(tmp_path / "cut.dcm")


def test_signal_only_read_gives_the_same_record_without_annotations(rec):
    """`annotations=False` (batch scoring) skips statements, measurements and median beats,
    and nothing else: same samples, leads, rate and patient fields; wrong kinds still refused."""
    fast = read_ecg(DCM, annotations=False)
    assert np.array_equal(fast.signal, rec.signal) and fast.leads == rec.leads and fast.fs == rec.fs
    assert set(rec.meta) - set(fast.meta) == {"statements", "measurements", "median_beats", "fiducials",
                                         "device_measurements"}
    for key in ("patient_id", "age", "sex", "acquired", "device", "sop_class", "original_lead_names"):
        assert fast.meta[key] == rec.meta[key]
    with pytest.raises(UnsupportedFormatError, match="DICOM image"):
        read_ecg(SIIM, annotations=False)


# ---- vendor variants (issue 16), made from copies of the real Mortara file ------------------

GENERAL_ECG = "1.2.840.10008.5.1.4.1.1.9.1.2"


def _save(ds, path: Path, **kwargs) -> Path:
    ds.save_as(path, **kwargs)
    return path


def test_device_measurements_from_annotations(rec):
    assert rec.meta["device_measurements"] == {
        "rr_ms": 982.0, "pr_ms": 161.0, "qrs_ms": 75.0, "qt_ms": 368.0, "qtc_ms": 370.0,
        "p_axis_deg": 74.0, "qrs_axis_deg": 52.0, "t_axis_deg": 57.0}  # PP 0 ms: not measured


def test_general_ecg_sop_class_implicit_vr(tmp_path, rec):
    ds = pydicom.dcmread(DCM)
    ds.SOPClassUID = GENERAL_ECG
    ds.file_meta.MediaStorageSOPClassUID = GENERAL_ECG
    ds.file_meta.TransferSyntaxUID = pydicom.uid.ImplicitVRLittleEndian
    path = _save(ds, tmp_path / "implicit.dcm", enforce_file_format=True)
    assert pydicom.dcmread(path).file_meta.TransferSyntaxUID == pydicom.uid.ImplicitVRLittleEndian
    got = read_ecg(path)
    np.testing.assert_array_equal(got.signal, rec.signal)
    assert "General ECG" in got.meta["sop_class"] and got.meta["median_beats"]["signal"].shape == (12, 1200)
    assert got.meta["statements"] == rec.meta["statements"]


def test_padding_zero_keeps_real_zero_samples(tmp_path, rec):
    ds = pydicom.dcmread(DCM)
    raw = np.frombuffer(ds.WaveformSequence[0].WaveformData, dtype="<i2")
    assert (raw == 0).sum() > 1000  # the real recording has many 0 samples
    ds.WaveformSequence[0].add_new(0x5400100A, "OW", b"\x00\x00")  # WaveformPaddingValue
    got = read_ecg(_save(ds, tmp_path / "pad0.dcm"))
    np.testing.assert_array_equal(got.signal, rec.signal)
    assert np.isfinite(got.signal).all() and "padded_samples" not in got.meta


def test_padding_at_the_type_extreme_marks_gaps(tmp_path, rec):
    ds = pydicom.dcmread(DCM)
    raw = np.frombuffer(ds.WaveformSequence[0].WaveformData, dtype="<i2").reshape(10000, 12).copy()
    raw[9500:, 4] = -32768  # lead aVL ends early: padded to the group's length
    ds.WaveformSequence[0].WaveformData = raw.tobytes()
    ds.WaveformSequence[0].add_new(0x5400100A, "OW", np.int16(-32768).tobytes())
    got = read_ecg(_save(ds, tmp_path / "pad_min.dcm"))
    avl = got.lead("aVL")
    assert np.isnan(avl[9500:]).all() and np.isfinite(avl[:9500]).all()
    np.testing.assert_array_equal(avl[:9500], rec.lead("aVL")[:9500])
    assert got.meta["padded_samples"] == 500 and np.isfinite(got.lead("I")).all()


def test_unsupported_median_group_does_not_reject_the_file(tmp_path, rec):
    ds = pydicom.dcmread(DCM)
    ds.WaveformSequence[1].WaveformSampleInterpretation = "MB"  # 8-bit mu-law: not read
    ds.WaveformSequence[1].WaveformBitsAllocated = 8
    got = read_ecg(_save(ds, tmp_path / "mulaw_median.dcm"))
    np.testing.assert_array_equal(got.signal, rec.signal)
    assert "median_beats" not in got.meta
    assert any("median beats not read" in w for w in got.meta["warnings"])


def test_three_groups_rhythm_chosen_by_label(tmp_path, rec):
    ds = pydicom.dcmread(DCM)
    extra = pydicom.Dataset()
    extra.update(ds.WaveformSequence[1])
    extra.MultiplexGroupLabel = "PACER"  # a third, shorter group first in the sequence
    ds.WaveformSequence = pydicom.Sequence([extra, ds.WaveformSequence[1], ds.WaveformSequence[0]])
    got = read_ecg(_save(ds, tmp_path / "three.dcm"))
    assert got.meta["rhythm_group"] == 2 and got.n_samples == 10000
    np.testing.assert_array_equal(got.signal, rec.signal)
    assert got.meta["median_beats"]["signal"].shape == (12, 1200)


def test_units_uv_mv_and_other(tmp_path, rec):
    ds = pydicom.dcmread(DCM)
    channels = ds.WaveformSequence[0].ChannelDefinitionSequence
    for ch in channels[:6]:  # limb leads in mV, chest leads stay in uV
        ch.ChannelSensitivity = "0.00125"
        ch.ChannelSensitivityUnitsSequence[0].CodeValue = "mV"
    channels[11].ChannelSensitivityUnitsSequence[0].CodeValue = "mm[Hg]"  # V6 is not a voltage here
    # (UCUM code value wins over a contradicting meaning)
    got = read_ecg(_save(ds, tmp_path / "units.dcm"))
    assert got.leads == LEADS[:11] and got.extra_names == ("Lead V6",) and got.extra_units == ("mm[Hg]",)
    np.testing.assert_allclose(got.signal, rec.signal[:11], rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(got.extra_signal[0], rec.signal[11] * 1000, rtol=1e-5)  # in its own units


def test_unit_known_by_its_meaning_only(tmp_path, rec):
    ds = pydicom.dcmread(DCM)
    for ch in ds.WaveformSequence[0].ChannelDefinitionSequence:  # a non-UCUM code, meaning "microvolt"
        ch.ChannelSensitivityUnitsSequence[0].CodeValue = "9001"
        ch.ChannelSensitivityUnitsSequence[0].CodingSchemeDesignator = "99VENDOR"
    got = read_ecg(_save(ds, tmp_path / "meaning.dcm"))
    np.testing.assert_array_equal(got.signal, rec.signal)


@pytest.mark.filterwarnings("ignore:Invalid value for VR UI", "ignore:The value length")
def test_invalid_uids_tolerated(tmp_path, rec):
    ds = pydicom.dcmread(DCM)
    ds.SOPInstanceUID = "1.2.826.0.1.3680043.abc.007"
    ds.StudyInstanceUID = "01.2.3..4"
    ds.SeriesInstanceUID = "2.25." + "9" * 70  # over 64 characters
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    with pydicom.config.disable_value_validation():
        path = _save(ds, tmp_path / "baduid.dcm")
    got = read_ecg(path)
    np.testing.assert_array_equal(got.signal, rec.signal)


@pytest.mark.parametrize("keyword", ["ChannelSensitivity", "ChannelSensitivityCorrectionFactor",
                                     "ChannelBaseline"])
@pytest.mark.parametrize("value", ["NaN", "inf", "-Infinity"])
def test_non_finite_channel_scaling_refused(tmp_path, keyword, value):
    ds = pydicom.dcmread(DCM)
    with pydicom.config.disable_value_validation():
        setattr(ds.WaveformSequence[0].ChannelDefinitionSequence[3], keyword, value)
        path = _save(ds, tmp_path / "nan.dcm")
    for annotations in (True, False):
        with pytest.raises(CorruptFileError, match="channel 4") as info:
            read_ecg(path, annotations=annotations)
        assert "(unexpected " not in str(info.value)


def test_person_name_and_dates_for_people(tmp_path):
    ds = pydicom.dcmread(DCM)
    ds.PatientName = "Rossi^Maria^Luisa"
    del ds.AcquisitionDateTime
    ds.AcquisitionDate, ds.AcquisitionTime = "20130125", "105919.250"
    got = read_ecg(_save(ds, tmp_path / "names.dcm"))
    assert got.meta["patient_name"] == "Rossi, Maria Luisa"
    assert got.meta["acquired"] == "2013-01-25 10:59:19"
