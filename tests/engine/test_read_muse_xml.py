"""GE MUSE XML reader on the two real MUSE files (GE MV360 and MAC 5500 carts)."""

from __future__ import annotations

import base64
import json
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from xml_samples import BILLION_LAUGHS, EXTERNAL_ENTITY, MUSE_PACED, MUSE_SINUS, edited_copy

from engine.constants import LEADS
from engine.errors import CorruptFileError, LeadError
from engine.io import read_ecg
from engine.io.dispatch import read_any
from engine.io.sniff import sniff


def _independent_decode(path, kind: str = "Rhythm") -> dict[str, np.ndarray]:
    """Each stored lead in mV, decoded here with ElementTree + base64 + numpy."""
    root = ET.parse(path).getroot()
    waveform = next(w for w in root.iter("Waveform") if w.findtext("WaveformType") == kind)
    out = {}
    for lead in waveform.iter("LeadData"):
        counts = np.frombuffer(base64.b64decode(lead.findtext("WaveFormData")), dtype="<i2")
        out[lead.findtext("LeadID")] = counts * float(lead.findtext("LeadAmplitudeUnitsPerBit")) / 1000.0
    return out


@pytest.mark.parametrize("path", [MUSE_SINUS, MUSE_PACED])
def test_rhythm_matches_independent_decode_and_limb_leads_are_derived(path) -> None:
    assert sniff(path) == "muse-xml"
    record = read_ecg(path)
    assert record.source.format == "muse-xml"
    assert record.leads == LEADS and record.fs == 500.0 and record.duration_s == 10.0
    assert record.signal.dtype == np.float32 and record.signal.shape == (12, 5000)
    stored = _independent_decode(path)
    assert sorted(stored) == sorted(["I", "II", "V1", "V2", "V3", "V4", "V5", "V6"])
    for lead, mv in stored.items():
        np.testing.assert_allclose(record.lead(lead), mv, atol=1e-6)
    assert record.meta["derived_leads"] == ("III", "aVR", "aVL", "aVF")
    i, ii = stored["I"], stored["II"]
    np.testing.assert_allclose(record.lead("III"), ii - i, atol=1e-5)
    np.testing.assert_allclose(record.lead("aVR"), -(i + ii) / 2, atol=1e-5)
    np.testing.assert_allclose(record.lead("aVL"), i - ii / 2, atol=1e-5)
    np.testing.assert_allclose(record.lead("aVF"), ii - i / 2, atol=1e-5)
    assert 0.3 < np.ptp(record.lead("II")) < 5.0  # a real ECG amplitude in mV


def test_median_beats_match_independent_decode() -> None:
    median = read_ecg(MUSE_PACED).meta["median_beats"]
    assert median["fs"] == 500.0 and median["leads"] == LEADS
    assert median["signal"].shape == (12, 600) and median["signal"].dtype == np.float32
    stored = _independent_decode(MUSE_PACED, "Median")
    np.testing.assert_allclose(median["signal"][LEADS.index("V2")], stored["V2"], atol=1e-6)
    np.testing.assert_allclose(median["signal"][2], stored["II"] - stored["I"], atol=1e-5)
    assert "median_beats" not in read_ecg(MUSE_PACED, annotations=False).meta


def test_device_measurements_equal_the_values_in_the_xml() -> None:
    meta = read_ecg(MUSE_SINUS).meta
    # RestingECGMeasurements: VentricularRate 90, PRInterval 144, QRSDuration 86, QTInterval 402,
    # QTCorrected 491, PAxis 48, RAxis 0, TAxis 111; P duration = (POffset 188 - POnset 147) / 500 Hz
    assert meta["device_measurements"] == {
        "hr_bpm": 90.0, "pr_ms": 144.0, "p_ms": 82.0, "qrs_ms": 86.0, "qt_ms": 402.0, "qtc_ms": 491.0,
        "p_axis_deg": 48.0, "qrs_axis_deg": 0.0, "t_axis_deg": 111.0}
    raw = {m["name"]: m["value"] for m in meta["measurements"]}
    assert raw["QTcFrederica"] == 460.0 and raw["AtrialRate"] == 90.0
    # signal-only reads (batch scoring) keep them
    assert read_ecg(MUSE_SINUS, annotations=False).meta["device_measurements"] == meta["device_measurements"]


def test_statements_lines_and_confirmation() -> None:
    sinus = read_ecg(MUSE_SINUS).meta
    assert [s["text"] for s in sinus["statements"]] == [
        "Normal Sinus rhythm", "Anterior infarct, age undetermined",
        "T wave abnormality, consider lateral ischemia", "Abnormal ECG",
        "When compared with ECG of 30-MAR-2023 09:09,", "Questionable change in The axis"]
    assert {s["confirmed"] for s in sinus["statements"]} == {False}  # Status UNCONFIRMED
    paced = read_ecg(MUSE_PACED).meta
    assert paced["statements"][0] == {"text": "Ventricular-paced rhythm", "code": None, "confirmed": True}
    assert paced["original_statements"][0]["text"] == "Wide QRS rhythm"  # the cart's own reading
    json.dumps(paced["statements"])  # JSON-ready


def test_patient_and_acquisition_fields_for_people() -> None:
    meta = read_ecg(MUSE_SINUS).meta
    assert meta["patient_id"] == "081486213" and meta["patient_name"] == "DOE, JOHN"
    assert meta["birth_date"] == "1979-07-08"  # MUSE writes 07-08-1979, month first
    assert meta["age"] == 43 and meta["sex"] == "M"
    assert meta["acquired"] == "2023-04-29 22:41:16"
    assert meta["device"]["model"] == "MV360" and meta["device"]["software"] == "1.02 SP05"


def test_ecgdatakit_oracle_agrees() -> None:
    parser = pytest.importorskip("ecgdatakit").FileParser()
    for path in (MUSE_SINUS, MUSE_PACED):
        oracle = parser.parse(str(path))
        record = read_ecg(path)
        for lead in oracle.leads:
            np.testing.assert_allclose(record.lead(lead.label), np.asarray(lead.samples), atol=1e-5)
        m = oracle.measurements
        got = record.meta["device_measurements"]
        assert (got["hr_bpm"], got["pr_ms"], got["qrs_ms"], got["qt_ms"]) == (
            m.heart_rate, m.pr_interval, m.qrs_duration, m.qt_interval)
        assert (got["p_axis_deg"], got["qrs_axis_deg"], got["t_axis_deg"]) == (m.p_axis, m.qrs_axis, m.t_axis)


def test_read_any_routes_to_ecg() -> None:
    modality, record = read_any(MUSE_PACED)
    assert modality == "ecg" and record.source.format == "muse-xml"


# --- malformed input: typed errors with actionable messages -------------------------------------


def test_checksum_mismatch(tmp_path) -> None:
    # change one base64 character of lead I's rhythm data: the CRC32 no longer matches
    bad = edited_copy(MUSE_PACED, tmp_path, r"(<WaveformType>Rhythm</WaveformType>.*?<WaveFormData>\s*)\S{4}",
                      r"\1////")
    with pytest.raises(CorruptFileError, match="checksum"):
        read_ecg(bad)


def test_bad_base64(tmp_path) -> None:
    bad = edited_copy(MUSE_PACED, tmp_path, r"(<WaveformType>Rhythm</WaveformType>.*?<WaveFormData>\s*)",
                      r"\1@@!!")
    with pytest.raises(CorruptFileError, match="base64"):
        read_ecg(bad)


def test_truncated_file(tmp_path) -> None:
    bad = tmp_path / "cut.xml"
    bad.write_bytes(MUSE_PACED.read_bytes()[:60000])
    with pytest.raises(CorruptFileError, match="truncated or damaged"):
        read_ecg(bad)


def test_truncated_lead_data(tmp_path) -> None:
    # a lead claiming more samples than its data holds (no CRC to catch it first)
    bad = edited_copy(MUSE_PACED, tmp_path, r"<LeadDataCRC32>\d+</LeadDataCRC32>", "", count=0)
    bad = edited_copy(bad, tmp_path, r"(<WaveformType>Rhythm.*?<LeadSampleCountTotal>)5000", r"\g<1>5400")
    with pytest.raises(CorruptFileError, match="truncated"):
        read_ecg(bad)


def test_absurd_sample_count_refused_before_allocating(tmp_path) -> None:
    bad = edited_copy(MUSE_PACED, tmp_path, r"(<WaveformType>Rhythm.*?<LeadSampleCountTotal>)5000",
                      r"\g<1>900000000000")
    with pytest.raises(CorruptFileError, match="damaged"):
        read_ecg(bad)


def test_no_rhythm_waveform(tmp_path) -> None:
    bad = edited_copy(MUSE_PACED, tmp_path, r"<WaveformType>Rhythm</WaveformType>",
                      "<WaveformType>Other</WaveformType>")
    with pytest.raises(LeadError, match="no rhythm waveform"):
        read_ecg(bad)


@pytest.mark.parametrize("template", [BILLION_LAUGHS, EXTERNAL_ENTITY], ids=["billion-laughs", "xxe"])
@pytest.mark.parametrize("root", ["RestingECG", "restingecgdata", "AnnotatedECG"])
def test_entity_declarations_refused(tmp_path, template, root) -> None:
    path = tmp_path / "attack.xml"
    path.write_text(template.format(root=root))
    with pytest.raises(CorruptFileError, match="declares XML entities"):
        read_ecg(path)
    path.write_bytes(template.format(root=root).replace('<?xml version="1.0"?>', "").encode("utf-16"))
    with pytest.raises(CorruptFileError, match="declares XML entities"):
        read_ecg(path)


def test_oversized_file_refused_before_reading(tmp_path, monkeypatch) -> None:
    import engine.io.xml_common as xml_common

    monkeypatch.setattr(xml_common, "MAX_XML_BYTES", 100_000)
    with pytest.raises(CorruptFileError, match="MB"):
        read_ecg(MUSE_PACED)  # 144 kB


def test_unknown_xml_refused(tmp_path) -> None:
    path = tmp_path / "other.xml"
    path.write_text('<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"/>')
    from engine.errors import UnsupportedFormatError

    with pytest.raises(UnsupportedFormatError, match="GE MUSE XML, Philips XML, HL7 aECG"):
        read_ecg(path)


def test_too_many_elements_refused_before_parsing(tmp_path) -> None:
    path = tmp_path / "many.xml"
    path.write_bytes(b"<RestingECG>" + b"<a/>" * 1_000_001 + b"</RestingECG>")
    with pytest.raises(CorruptFileError, match="XML tags"):
        read_ecg(path)
