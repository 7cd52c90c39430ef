"""HL7 aECG reader on the HL7 ballot example (Mortara ELI 250) and variants made from it."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import numpy as np
import pytest
from xml_samples import HL7_AECG, edited_copy

from engine.constants import LEADS
from engine.errors import CorruptFileError
from engine.io import read_ecg
from engine.io.sniff import sniff

NS = "{urn:hl7-org:v3}"


def _independent_decode(path) -> dict[str, np.ndarray]:
    """Rhythm leads in mV: digits * scale (uV) + origin (uV), decoded here."""
    root = ET.parse(path).getroot()
    series = root.find(f"{NS}component/{NS}series")
    out = {}
    for seq in series.iter(f"{NS}sequence"):
        value = seq.find(f"{NS}value")
        digits = value.find(f"{NS}digits")
        if digits is None or seq in out:
            continue
        code = seq.find(f"{NS}code").get("code").replace("MDC_ECG_LEAD_", "")
        if code in out:
            break  # the representative beat follows the rhythm in document order
        scale = float(value.find(f"{NS}scale").get("value"))
        origin = float(value.find(f"{NS}origin").get("value"))
        out[code] = (np.array([int(x) for x in digits.text.split()]) * scale + origin) / 1000.0
    return out


def test_rhythm_matches_independent_decode() -> None:
    assert sniff(HL7_AECG) == "hl7-aecg"
    record = read_ecg(HL7_AECG)
    assert record.source.format == "hl7-aecg"
    assert record.leads == LEADS and record.fs == 500.0 and record.duration_s == 10.0
    assert record.meta["derived_leads"] == ()
    stored = _independent_decode(HL7_AECG)
    assert len(stored) == 12
    for code, mv in stored.items():
        lead = {"AVR": "aVR", "AVL": "aVL", "AVF": "aVF"}.get(code, code)
        np.testing.assert_allclose(record.lead(lead), mv, atol=1e-6)
    # stored III satisfies Einthoven within the 2.5 uV quantisation
    np.testing.assert_allclose(record.lead("III"), record.lead("II") - record.lead("I"), atol=0.0051)


def test_representative_beat() -> None:
    median = read_ecg(HL7_AECG).meta["median_beats"]
    assert median["fs"] == 500.0 and median["leads"] == LEADS and median["signal"].shape == (12, 599)
    assert 0.3 < np.ptp(median["signal"][1]) < 5.0


def test_device_measurements_and_statements() -> None:
    meta = read_ecg(HL7_AECG, annotations=False).meta
    # the derived series' global annotations: PR 148, P 102, QRS 120, QT 420, QTc 443 ms, axes 44/-61/86
    assert meta["device_measurements"] == {
        "pr_ms": 148.0, "p_ms": 102.0, "qrs_ms": 120.0, "qt_ms": 420.0, "qtc_ms": 443.0,
        "p_axis_deg": 44.0, "qrs_axis_deg": -61.0, "t_axis_deg": 86.0}
    assert meta["statements"] == [{"text": "Sinus Rhythm", "code": "MDC_ECG_RHY_SINUS_RHY", "confirmed": None}]


def test_patient_and_acquisition() -> None:
    meta = read_ecg(HL7_AECG).meta
    assert meta["patient_id"] == "SBJ-123" and meta["patient_name"] == "Clark"
    assert meta["sex"] == "M" and meta["birth_date"] == "1953-05-08" and meta["age"] == 46
    assert meta["acquired"] == "2002-11-22 09:10:00"
    assert meta["device"] == {"manufacturer": "Mortara Instrument, Inc.", "model": "ELI250", "software": "5.3"}


def test_100_hz_and_ids_that_are_not_uuids(tmp_path) -> None:
    path = edited_copy(HL7_AECG, tmp_path, r'<increment value="0.002" unit="s"/>',
                       '<increment value="10" unit="ms"/>', count=0)
    path = edited_copy(path, tmp_path, r'<id root="61d1a24f-b47e-41aa-ae95-f8ac302f4eeb"/>',
                       '<id root="2.16.840.1.113883.3.400" extension="ECG-0042"/>')
    record = read_ecg(path)
    assert record.fs == 100.0 and record.duration_s == 50.0  # same 5000 samples, now 10 ms apart
    assert record.meta["document_id"] == "2.16.840.1.113883.3.400:ECG-0042"
    np.testing.assert_array_equal(record.signal, read_ecg(HL7_AECG).signal)


def test_origin_and_scale_per_sequence(tmp_path) -> None:
    # lead I only: scale 5 uV (twice), origin 0.5 mV
    path = edited_copy(HL7_AECG, tmp_path,
                       r'(MDC_ECG_LEAD_I" [^>]*>\s*<value xsi:type="SLIST_PQ">\s*(?:<!--[^>]*-->\s*)?)<origin value="0" unit="uV"/>'
                       r'\s*<scale value="2.5" unit="uV"/>',
                       r'\1<origin value="0.5" unit="mV"/><scale value="5" unit="uV"/>')
    original, changed = read_ecg(HL7_AECG), read_ecg(path)
    np.testing.assert_allclose(changed.lead("I"), 2 * original.lead("I") + 0.5, atol=1e-5)
    np.testing.assert_array_equal(changed.lead("V1"), original.lead("V1"))


def test_eight_leads_derive_limb_leads_and_keep_v3r_apart(tmp_path) -> None:
    path = HL7_AECG
    for code in ("III", "AVR", "AVL", "AVF"):  # drop the stored limb leads of the rhythm series
        path = edited_copy(path, tmp_path, rf'<component>\s*<sequence>\s*<code code="MDC_ECG_LEAD_{code}"'
                                           rf'.*?</component>', "")
    path = edited_copy(path, tmp_path, r'"MDC_ECG_LEAD_V3"', '"MDC_ECG_LEAD_V3R"')
    record = read_ecg(path)
    assert record.meta["derived_leads"] == ("III", "aVR", "aVL", "aVF")
    assert "V3" not in record.leads and record.extra_names == ("V3R",)
    original = read_ecg(HL7_AECG)
    np.testing.assert_allclose(record.extra_signal[0], original.lead("V3"), atol=1e-6)
    np.testing.assert_allclose(record.lead("aVF"), original.lead("II") - original.lead("I") / 2, atol=1e-5)


# --- malformed input ---------------------------------------------------------------------------


def test_digits_that_are_not_numbers(tmp_path) -> None:
    bad = edited_copy(HL7_AECG, tmp_path, r"(<digits>\s*\S+ )", r"\1 x7 ")
    with pytest.raises(CorruptFileError, match="not numbers"):
        read_ecg(bad)


def test_leads_of_different_lengths(tmp_path) -> None:
    bad = edited_copy(HL7_AECG, tmp_path, r"(<digits>[^<]*?) \S+\s*</digits>", r"\1</digits>")
    with pytest.raises(CorruptFileError, match="different lengths"):
        read_ecg(bad)


@pytest.mark.parametrize("increment", ['value="0" unit="s"', 'value="1e-9" unit="s"', 'value="x" unit="s"'])
def test_absurd_rates(tmp_path, increment) -> None:
    bad = edited_copy(HL7_AECG, tmp_path, r'<increment value="0.002" unit="s"/>', f"<increment {increment}/>")
    with pytest.raises(CorruptFileError, match="sampling"):
        read_ecg(bad)


def test_truncated(tmp_path) -> None:
    bad = tmp_path / "cut.xml"
    bad.write_bytes(HL7_AECG.read_bytes()[:200_000])
    with pytest.raises(CorruptFileError, match="not well-formed"):
        read_ecg(bad)


def test_ecgdatakit_oracle_agrees() -> None:
    oracle = pytest.importorskip("ecgdatakit").FileParser().parse(str(HL7_AECG))
    record = read_ecg(HL7_AECG)
    for lead in oracle.leads:
        np.testing.assert_allclose(record.lead(lead.label), np.asarray(lead.samples), atol=1e-5)
    m, got = oracle.measurements, record.meta["device_measurements"]
    assert (got["pr_ms"], got["qrs_ms"], got["qt_ms"], got["p_axis_deg"], got["qrs_axis_deg"]) == (
        m.pr_interval, m.qrs_duration, m.qt_interval, m.p_axis, m.qrs_axis)
