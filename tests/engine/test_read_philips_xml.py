"""Philips XML reader (SierraECG 1.03 HeartStart MRx, PhilipsECG 1.04 PageWriter Touch, UTF-16)
and the XLI decoder, with the MIT `sierraecg` package as the oracle."""

from __future__ import annotations

import base64
import struct
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from xml_samples import PHILIPS_103, PHILIPS_104, edited_copy, read_text

from engine.constants import LEADS
from engine.errors import CorruptFileError, UnsupportedFormatError
from engine.io import read_ecg
from engine.io.sniff import sniff
from engine.io.xli import philips_limb_leads, xli_decode


def _waveform_bytes(path) -> bytes:
    root = ET.fromstring(path.read_bytes())
    node = next(e for e in root.iter() if e.tag.endswith("parsedwaveforms"))
    return base64.b64decode("".join(node.text.split()))


@pytest.mark.parametrize("path, version, seconds, removed", [
    (PHILIPS_104, "PhilipsECG 1.04", 10.6, 200), (PHILIPS_103, "SierraECG 1.03", 10.528, 236)])
def test_twelve_stored_leads_calibration_cut(path, version, seconds, removed) -> None:
    assert sniff(path) == "philips-xml"
    record = read_ecg(path)
    assert record.source.format == "philips-xml" and record.meta["document"] == version
    assert record.leads == LEADS and record.fs == 500.0 and record.meta["derived_leads"] == ()
    assert record.signal.dtype == np.float32
    assert record.duration_s == pytest.approx(seconds)
    assert record.meta["calibration_samples_removed"] == removed  # of the 11 s (5500 samples) stored
    # stored leads obey Einthoven within the rounding of Philips' residual coding (1 count = 5 uV)
    np.testing.assert_allclose(record.lead("III"), record.lead("II") - record.lead("I"), atol=0.0101)
    np.testing.assert_allclose(record.lead("aVF"), record.lead("II") - record.lead("I") / 2, atol=0.0101)


def test_xli_decoder_equals_sierraecg() -> None:
    sierra_xli = pytest.importorskip("sierraecg.xli")
    for path in (PHILIPS_103, PHILIPS_104):
        data = _waveform_bytes(path)
        ours = xli_decode(data, 12, 5500, "test")
        theirs = sierra_xli.xli_decode(data, list(LEADS))
        for a, b in zip(ours, theirs):
            assert a.dtype == np.int16 and np.array_equal(a, b)


@pytest.mark.parametrize("path", [PHILIPS_103, PHILIPS_104])
def test_samples_equal_sierraecg_times_resolution(path) -> None:
    sierraecg = pytest.importorskip("sierraecg")
    oracle = sierraecg.read_file(str(path))  # raw counts, limb leads rebuilt
    record = read_ecg(path)
    n = record.n_samples
    for lead in oracle.leads:
        np.testing.assert_allclose(record.lead(lead.label), lead.samples[:n] * 0.005, atol=1e-6)
    # the cut tail is the calibration segment: identical values in all 12 leads
    tail = np.stack([lead.samples[n:] for lead in oracle.leads])
    assert np.all(tail == tail[:1]) and set(np.unique(tail)) == {0, 200}  # 0, then a 1 mV pulse


def test_utf16_and_utf8_copies_read_the_same(tmp_path) -> None:
    assert PHILIPS_104.read_bytes()[:2] == b"\xff\xfe"
    content, _ = read_text(PHILIPS_104)
    utf8 = tmp_path / "utf8.xml"
    utf8.write_bytes(content.replace('encoding="utf-16"', 'encoding="utf-8"').encode("utf-8"))
    a, b = read_ecg(PHILIPS_104), read_ecg(utf8)
    assert np.array_equal(a.signal, b.signal) and a.meta["statements"] == b.meta["statements"]


def test_repbeats_are_median_beats() -> None:
    median = read_ecg(PHILIPS_104).meta["median_beats"]
    assert median["fs"] == 500.0 and median["leads"] == LEADS
    assert median["signal"].shape == (12, 600)  # 1.2 s; the 32767 fill after the beat is cut
    root = ET.fromstring(PHILIPS_104.read_bytes())
    beat = next(e for e in root.iter() if e.tag.endswith("repbeat") and e.get("leadname") == "V4")
    wave = next(e for e in beat if e.tag.endswith("waveform"))
    counts = np.frombuffer(base64.b64decode("".join(wave.text.split())), dtype="<i2")
    np.testing.assert_allclose(median["signal"][LEADS.index("V4")], counts[:600] * 0.0025, atol=1e-6)
    assert np.all(counts[600:] == 32767)
    assert "median_beats" not in read_ecg(PHILIPS_103).meta  # the 1.03 file carries none


def test_device_measurements_equal_the_values_in_the_xml() -> None:
    # 1.04 interpretation/globalmeasurements; pdur 508 > PR 144 is not a P duration
    assert read_ecg(PHILIPS_104).meta["device_measurements"] == {
        "hr_bpm": 41.0, "rr_ms": 1463.0, "pr_ms": 144.0, "qrs_ms": 102.0, "qt_ms": 564.0,
        "qtc_ms": 466.0, "p_axis_deg": 19.0, "qrs_axis_deg": 85.0, "t_axis_deg": 53.0}
    # 1.03 interpretation/interpretationmeasurements
    meta = read_ecg(PHILIPS_103, annotations=False).meta
    assert meta["device_measurements"] == {
        "hr_bpm": 41.0, "pr_ms": 151.0, "qrs_ms": 135.0, "qt_ms": 476.0, "qtc_ms": 393.0,
        "p_axis_deg": 66.0, "qrs_axis_deg": -21.0, "t_axis_deg": 59.0}
    raw = {m["name"]: m["value"] for m in meta["measurements"]}
    assert raw["thorizaxis"] == 60.0 and "sthorizaxis" not in raw  # its value is "Failed"


def test_statements_codes_and_confirmation() -> None:
    confirmed = read_ecg(PHILIPS_104).meta
    assert confirmed["statements"] == [
        {"text": "SINUS BRADYCARDIA (V-rate<60)", "code": "SB", "confirmed": True},
        {"text": "NO PREVIOUS TRACING AVAILABLE FOR COMPARISON", "code": "NPTA", "confirmed": True},
        {"text": "OTHERWISE NORMAL ECG", "code": "ON", "confirmed": True}]
    unconfirmed = read_ecg(PHILIPS_103).meta
    texts = [s["text"] for s in unconfirmed["statements"]]
    assert texts[2] == "Inferior infarct, acute (LCx) (ST>0.10mV, II III aVF, STd V1-V3)"
    assert ">>> Acute MI <<<" in texts and texts[-1] == "ABNORMAL ECG"
    assert {s["confirmed"] for s in unconfirmed["statements"]} == {False}


def test_patient_and_device() -> None:
    meta = read_ecg(PHILIPS_104).meta
    assert meta["patient_id"] == "9999" and "patient_name" not in meta  # "---" placeholders
    assert meta["birth_date"] == "1976-01-01" and meta["sex"] == "F" and "age" not in meta
    assert meta["acquired"] == "2008-12-23 19:44:46"
    assert meta["device"] == {"manufacturer": "Philips Medical Products", "model": "PageWriter Touch",
                              "software": "C.01.02.00", "serial": "EKG16296"}
    assert read_ecg(PHILIPS_103).meta["age"] == 50


# --- malformed input ---------------------------------------------------------------------------


def _with_waveform(tmp_path, data: bytes):
    encoded = base64.b64encode(data).decode("ascii")
    return edited_copy(PHILIPS_103, tmp_path, r'(<parsedwaveforms[^>]*>)[^<]*', lambda m: m.group(1) + encoded)


def test_wrong_xli_chunk_size(tmp_path) -> None:
    data = bytearray(_waveform_bytes(PHILIPS_103))
    data[0:4] = struct.pack("<i", 10 ** 8)
    with pytest.raises(CorruptFileError, match="XLI stream is damaged"):
        read_ecg(_with_waveform(tmp_path, bytes(data)))


def test_invalid_lzw_code(tmp_path) -> None:
    # first code 1000: no table entry yet
    chunk = bytes([0b11111010, 0b00000000]) * 8
    data = struct.pack("<ihh", len(chunk), 0, 0) + chunk
    with pytest.raises(CorruptFileError, match="invalid LZW code"):
        read_ecg(_with_waveform(tmp_path, data * 12))


def test_truncated_xli_stream(tmp_path) -> None:
    data = _waveform_bytes(PHILIPS_103)
    with pytest.raises(CorruptFileError, match="truncated|damaged"):
        read_ecg(_with_waveform(tmp_path, data[:len(data) // 3]))


def test_bad_base64(tmp_path) -> None:
    bad = edited_copy(PHILIPS_103, tmp_path, r'(<parsedwaveforms[^>]*>)', r"\1***")
    with pytest.raises(CorruptFileError, match="not valid base64"):
        read_ecg(bad)


def test_absurd_duration_refused(tmp_path) -> None:
    bad = edited_copy(PHILIPS_103, tmp_path, r'durationperchannel="11000"', 'durationperchannel="1e15"')
    with pytest.raises(CorruptFileError, match="damaged"):
        read_ecg(bad)


def test_unsupported_version(tmp_path) -> None:
    bad = edited_copy(PHILIPS_103, tmp_path, r"<documentversion>1.03<", "<documentversion>2.00<")
    with pytest.raises(UnsupportedFormatError, match="1.03 and PhilipsECG 1.04"):
        read_ecg(bad)


def test_xli_decoder_bounds_output() -> None:
    # a valid stream that decodes to more than the declared samples is refused
    data = _waveform_bytes(PHILIPS_103)
    with pytest.raises(CorruptFileError, match="more samples than"):
        xli_decode(data, 12, 100, "test")


def test_limb_residuals_rebuilt_with_floor() -> None:
    leads = [np.array(v, dtype=np.int16) for v in ([3], [6], [1], [2], [-1], [0])]
    i, ii, iii, avr, avl, avf = (x[0] for x in philips_limb_leads(leads))
    assert (iii, avr, avl, avf) == (6 - 3 - 1, -2 - 4, (3 - 2) // 2 + 1, (6 + 2) // 2 - 0)


@settings(max_examples=300, deadline=None, derandomize=True)
@given(st.binary(max_size=600), st.integers(1, 12))
def test_xli_decoder_on_random_streams_returns_or_raises_corrupt(data, n_leads) -> None:
    try:
        leads = xli_decode(data, n_leads, 2000, "fuzz")
    except CorruptFileError as exc:
        assert "fuzz" in str(exc)
    else:
        assert len(leads) == n_leads and all(x.dtype == np.int16 and x.size <= 2001 for x in leads)


def test_ecgdatakit_oracle_agrees() -> None:
    parser = pytest.importorskip("ecgdatakit").FileParser()
    for path in (PHILIPS_103, PHILIPS_104):
        oracle, record = parser.parse(str(path)), read_ecg(path)
        for lead in oracle.leads:
            samples = np.asarray(lead.samples)[:record.n_samples]
            np.testing.assert_allclose(record.lead(lead.label), samples, atol=1e-5)
        got, m = record.meta["device_measurements"], oracle.measurements
        assert (got["hr_bpm"], got["pr_ms"], got["qrs_ms"], got["qt_ms"], got["qrs_axis_deg"]) == (
            m.heart_rate, m.pr_interval, m.qrs_duration, m.qt_interval, m.qrs_axis)
