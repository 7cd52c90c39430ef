"""SCP-ECG reading on two real files (ECG Toolkit's 12-lead example, a Welch Allyn cart's
8-lead paediatric file with V3R/V7), checked against the independent `ecgdatakit` decoder,
plus damaged and re-encoded variants made from them."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from scp_factory import crc, fix_crcs, pointers

from engine.constants import LEADS
from engine.errors import CorruptFileError, UnsupportedFormatError
from engine.io import read_ecg
from engine.io.dispatch import read_any
from engine.io.scp_ecg import read_scp_ecg
from engine.io.scp_huffman import decode, default_table
from engine.io.sniff import sniff, sniff_bytes

DATA = Path(__file__).resolve().parents[1] / "data" / "formats" / "scp_ecg"
TOOLKIT = DATA / "ecgtoolkit_Example.scp"
WELCH = DATA / "welchallyn_cardiocontrol_ECG_20060620_112352_ANON000002.SCP"


@pytest.fixture(scope="module")
def toolkit():
    return read_ecg(TOOLKIT)


@pytest.fixture(scope="module")
def welch():
    return read_ecg(WELCH)


@pytest.mark.parametrize("path", [TOOLKIT, WELCH])
def test_samples_equal_ecgdatakit(path):
    edk = pytest.importorskip("ecgdatakit")
    oracle = edk.FileParser().parse(str(path))
    rec = read_ecg(path)
    assert rec.fs == oracle.leads[0].sampling_rate
    for lead in oracle.leads:  # every stored lead, standard or not, to 1e-6 mV (float32 rounding)
        ours = (rec.lead(lead.label) if lead.label in rec.leads
                else rec.extra_signal[rec.extra_names.index(lead.label)])
        assert lead.units == "mV"
        np.testing.assert_allclose(ours, lead.samples, atol=1e-6, rtol=0)
    median = rec.meta["median_beats"]
    for lead in oracle.median_beats:
        if lead.label in median["leads"]:
            np.testing.assert_allclose(median["signal"][median["leads"].index(lead.label)], lead.samples,
                                       atol=1e-6, rtol=0)


def test_toolkit_twelve_stored_leads(toolkit):
    assert toolkit.leads == LEADS and toolkit.signal.shape == (12, 5000) and toolkit.fs == 500.0
    assert toolkit.signal.dtype == np.float32 and toolkit.source.format == "scp-ecg"
    assert toolkit.meta["derived_leads"] == [] and toolkit.extra_signal is None
    lead = {n: toolkit.lead(n).astype(np.float64) for n in LEADS}
    span = np.ptp(lead["II"])
    assert 0.3 < span < 5.0 and np.abs(toolkit.signal).max() < 5.0  # mV, not raw units
    # stored (not derived) limb leads obey Einthoven within the 2.5 uV quantisation
    assert np.abs(lead["III"] - (lead["II"] - lead["I"])).max() <= 0.0051
    assert set(np.unique(np.round(toolkit.signal[0] / 0.0025, 3) % 1)) <= {0.0}  # multiples of 2.5 uV


def test_toolkit_patient_device_measurements(toolkit):
    meta = toolkit.meta
    assert meta["patient_id"] == "SBJ-123" and meta["patient_name"] == "Clark"
    assert meta["birth_date"] == "1953-05-08" and meta["sex"] == "M"
    assert meta["acquired"] == "2002-11-22 09:10:00"
    assert meta["device"]["model"] == "ELI250" and meta["device"]["manufacturer"] == "ECGConversion"
    # section 7 block 0: P 286-388, QRS 434-554, T end 854 ms; axes 44, -61, 86; QTc 443
    assert meta["device_measurements"] == {"pr_ms": 148.0, "p_ms": 102.0, "qrs_ms": 120.0, "qt_ms": 420.0,
                                           "qtc_ms": 443.0, "p_axis_deg": 44.0, "qrs_axis_deg": -61.0,
                                           "t_axis_deg": 86.0}
    assert {"name": "QRS onset", "value": 434.0, "units": "ms", "group": 0} in meta["measurements"]
    assert "statements" not in meta
    median = meta["median_beats"]
    assert median["signal"].shape == (12, 599) and median["fs"] == 500.0 and median["leads"] == LEADS


def test_welch_allyn_paediatric_leads_kept_apart(welch):
    assert welch.fs == 600.0  # 1667 us written for 1/600 s
    assert welch.leads == ("I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V4", "V6")
    assert welch.meta["derived_leads"] == ["III", "aVR", "aVL", "aVF"]
    assert welch.extra_names == ("V3R", "V7") and welch.extra_units == ("mV", "mV")
    assert welch.extra_signal.shape == (2, 6000) and welch.signal.shape == (10, 6000)
    lead = {n: welch.lead(n).astype(np.float64) for n in welch.leads}
    np.testing.assert_allclose(lead["III"], lead["II"] - lead["I"], atol=1e-6)
    np.testing.assert_allclose(lead["aVR"], -(lead["I"] + lead["II"]) / 2, atol=1e-6)
    assert not np.allclose(welch.extra_signal[0], lead["V4"])  # V3R is not any chest lead
    median = welch.meta["median_beats"]
    assert median["leads"] == welch.leads and median["derived"] == ("III", "aVR", "aVL", "aVF")
    assert median["signal"].shape == (10, 433)


def test_welch_allyn_statements_and_measurements(welch):
    meta = welch.meta
    assert meta["patient_id"] == "ANON000002" and meta["patient_name"] == "REMOVED, REMOVE"
    assert meta["age"] == 36 and "acquired" not in meta  # the file gives a time but no date
    assert meta["device"] == {"manufacturer": "Welch Allyn Cardio Control", "model": "MDW14",
                              "software": "CCW"}
    assert meta["device_measurements"] == {
        "hr_bpm": 82.0, "rr_ms": 731.0, "pr_ms": 177.0, "p_ms": 102.0, "qrs_ms": 100.0, "qt_ms": 343.0,
        "qtc_ms": 401.0, "p_axis_deg": 64.0, "qrs_axis_deg": 49.0, "t_axis_deg": 25.0}
    texts = [s["text"] for s in meta["statements"]]
    assert texts[2:4] == ["sinusrytm", "AV-block I (begränsad)"] and len(texts) == 5
    assert all(s["confirmed"] is True and s["code"] is None for s in meta["statements"])
    by_name = {m["name"]: m for m in meta["measurements"]}
    assert by_name["I PR interval"]["value"] == 177.0 and by_name["I R amplitude"]["units"] == "uV"


def test_signal_only_read_same_signal(welch):
    fast = read_ecg(WELCH, annotations=False)
    np.testing.assert_array_equal(fast.signal, welch.signal)
    assert "median_beats" not in fast.meta  # the batch path keeps measurements and statements
    for key in ("patient_id", "statements", "device_measurements", "measurements", "derived_leads"):
        assert fast.meta[key] == welch.meta[key]


def test_sniffed_by_content_and_read_any(tmp_path):
    copy = tmp_path / "ecg.bin"
    copy.write_bytes(TOOLKIT.read_bytes())
    assert sniff(copy) == "scp-ecg"
    modality, rec = read_any(copy)
    assert modality == "ecg" and rec.source.format == "scp-ecg"
    # a writer that leaves section 0's reserved bytes blank: recognised by section 0's CRC
    data = bytearray(TOOLKIT.read_bytes())
    data[16:22] = bytes(6)
    assert sniff_bytes(bytes(data)) == "unknown"
    _fix_crcs(data)
    assert sniff_bytes(bytes(data)) == "scp-ecg"


# ---- damaged and re-encoded variants ------------------------------------------------------

_crc, _pointers, _fix_crcs = crc, pointers, fix_crcs


def _edited(tmp_path, edit, fix=True, source=TOOLKIT) -> Path:
    data = bytearray(source.read_bytes())
    edit(data, _pointers(data))
    if fix:
        _fix_crcs(data)
    out = tmp_path / "edited.scp"
    out.write_bytes(bytes(data))
    return out


def _raises_fast(path: Path, error=CorruptFileError, match: str | None = None):
    start = time.perf_counter()
    with pytest.raises(error, match=match) as info:
        read_ecg(path)
    assert time.perf_counter() - start < 2.0
    assert "(unexpected " not in str(info.value)
    return info.value


def test_bad_crc_refused(tmp_path):
    def flip(data, ptr):
        start, length = ptr[6]
        data[start + 100] ^= 0x10
    _raises_fast(_edited(tmp_path, flip, fix=False), match="checksum")


def test_crc_field_zero_is_accepted_with_a_warning(tmp_path):
    path = tmp_path / "zero.scp"
    data = bytearray(TOOLKIT.read_bytes())
    data[0:2] = b"\x00\x00"
    path.write_bytes(bytes(data))
    rec = read_ecg(path)
    assert any("CRC field 0" in w for w in rec.meta["warnings"]) and rec.leads == LEADS


def test_truncated_refused(tmp_path):
    path = tmp_path / "cut.scp"
    path.write_bytes(TOOLKIT.read_bytes()[:20000])
    _raises_fast(path, match="truncated")


@pytest.mark.parametrize("size, match", [(10, "more than its 10 bytes can hold"),
                                         (700, "Huffman data ends")])
def test_huffman_stream_too_short_refused(tmp_path, size, match):
    def shorten(data, ptr):  # lead 1 of section 6 claims `size` bytes for its 5000 samples (~2500 used)
        start, _ = ptr[6]
        data[start + 16 + 6:start + 16 + 8] = size.to_bytes(2, "little")
    _raises_fast(_edited(tmp_path, shorten), match=match)


def test_huffman_bit_flips_never_crash(tmp_path):
    rng = np.random.default_rng(0)
    start, length = _pointers(TOOLKIT.read_bytes())[6]
    for trial in range(30):
        positions = rng.integers(start + 16 + 30, start + length, size=4)

        def flip(data, ptr, positions=positions):
            for p in positions:
                data[p] ^= 1 << int(rng.integers(0, 8))
        path = _edited(tmp_path, flip)
        try:
            rec = read_ecg(path)
            assert rec.signal.shape == (12, 5000) and np.isfinite(rec.signal).all()
        except CorruptFileError as exc:
            assert "Huffman" in str(exc)


def test_absurd_sizes_and_rates_refused(tmp_path):
    def huge(data, ptr):  # lead 1 ends at sample 4e9
        start, _ = ptr[3]
        data[start + 16 + 2 + 4:start + 16 + 2 + 8] = (4_000_000_000).to_bytes(4, "little")
    _raises_fast(_edited(tmp_path, huge), UnsupportedFormatError)

    def every(data, ptr):
        start, _ = ptr[3]
        for i in range(12):
            end = start + 16 + 2 + 9 * i + 4
            data[end:end + 4] = (4_000_000_000).to_bytes(4, "little")
    _raises_fast(_edited(tmp_path, every), match="samples")

    def no_interval(data, ptr):
        start, _ = ptr[6]
        data[start + 16 + 2:start + 16 + 4] = b"\x00\x00"
    _raises_fast(_edited(tmp_path, no_interval), match="interval")

    def bimodal(data, ptr):
        start, _ = ptr[6]
        data[start + 16 + 5] = 1
    _raises_fast(_edited(tmp_path, bimodal), UnsupportedFormatError, match="bimodal")


def test_default_table_codes():
    # +1 '100', -2 '1101', 0 '0', 8-bit escape '1111111110' + 0x85 (-123), then padding
    bits = "100" + "1101" + "0" + "1111111110" + "10000101"
    data = int(bits.ljust(32, "0"), 2).to_bytes(4, "big")
    assert decode(data, 4, [default_table()], "t").tolist() == [1, -2, 0, -123]
    with pytest.raises(CorruptFileError):
        decode(data[:1], 4, [default_table()], "t")


# ---- reference beat subtraction, on an uncompressed re-encoding of the real file ----------

def _section(sid: int, body: bytes) -> bytes:
    header = sid.to_bytes(2, "little") + (16 + len(body)).to_bytes(4, "little") + bytes([20, 20])
    header += b"SCPECG" if sid == 0 else bytes(6)
    return _crc(header + body).to_bytes(2, "little") + header + body


def _scp(bodies: dict[int, bytes]) -> bytes:
    offset, pointers, blobs = 6 + 16 + 120, b"", []
    for sid in range(12):
        if sid in bodies:
            blob = _section(sid, bodies[sid])
            pointers += (sid.to_bytes(2, "little") + len(blob).to_bytes(4, "little")
                         + (offset + 1).to_bytes(4, "little"))
            blobs.append(blob)
            offset += len(blob)
        else:
            pointers += sid.to_bytes(2, "little") + bytes(8)
    s0 = _section(0, (0).to_bytes(2, "little") + (136).to_bytes(4, "little") + (7).to_bytes(4, "little")
                  + pointers[10:])
    record = s0 + b"".join(blobs)
    body = (6 + len(record)).to_bytes(4, "little") + record
    return _crc(body).to_bytes(2, "little") + body


def test_reference_beat_added_back(tmp_path, toolkit):
    order = ["I", "II", "V1", "V2", "V3", "V4", "V5", "V6", "III", "aVR", "aVL", "aVF"]
    codes = [1, 2, 3, 4, 5, 6, 7, 8, 61, 62, 63, 64]
    rhythm = np.stack([np.round(toolkit.lead(n) / 0.0025) for n in order]).astype(np.int64)  # 2.5 uV units
    median = toolkit.meta["median_beats"]
    beat = np.stack([np.round(median["signal"][median["leads"].index(n)] / 0.0025)
                     for n in order]).astype(np.int64)
    fid_ref = 300  # 1-based sample of the beat's fiducial
    zones = [(f - 100, f, f + 150) for f in (1000, 2000, 3001, 4950)]  # last zone runs past the end
    residual = rhythm.copy()
    for start, fid, end in zones:
        for s in range(start, min(end, 5000) + 1):
            residual[:, s - 1] -= beat[:, s - fid + fid_ref - 1]
    s3 = bytes([12, 0x01 | 0x04]) + b"".join(
        (1).to_bytes(4, "little") + (5000).to_bytes(4, "little") + bytes([c]) for c in codes)
    s4 = ((599 * 2).to_bytes(2, "little") + fid_ref.to_bytes(2, "little") + len(zones).to_bytes(2, "little")
          + b"".join((0).to_bytes(2, "little") + b"".join(v.to_bytes(4, "little") for v in z) for z in zones))

    def stream(values: np.ndarray) -> bytes:
        n = values.shape[1]
        return ((2500).to_bytes(2, "little") + (2000).to_bytes(2, "little") + bytes([0, 0])
                + (2 * n).to_bytes(2, "little") * 12 + values.astype("<i2").tobytes())
    path = tmp_path / "subtracted.scp"
    path.write_bytes(_scp({3: s3, 4: s4, 5: stream(beat), 6: stream(residual)}))
    rec = read_ecg(path)
    assert rec.meta["scp"]["reference_beat_subtracted"] and not rec.meta["scp"]["huffman"]
    np.testing.assert_allclose(rec.signal, toolkit.signal, atol=1e-6)
    np.testing.assert_allclose(rec.meta["median_beats"]["signal"], median["signal"], atol=1e-6)
    # without the add-back the residual would differ from the rhythm in every zone
    assert np.abs(residual - rhythm).max() > 10


def test_read_scp_ecg_direct_path_type():
    rec = read_scp_ecg(WELCH)
    assert rec.source.path == str(WELCH)


def _table_bytes(codes: list[tuple[str, int, int, int]]) -> bytes:
    """Section 2 codes (prefix bits as text, total bits, mode, value), base code bit-reversed."""
    out = len(codes).to_bytes(2, "little")
    for prefix, total, mode, value in codes:
        reversed_code = int(prefix[::-1], 2)
        out += bytes([len(prefix), total, mode]) + value.to_bytes(2, "little", signed=True)
        out += reversed_code.to_bytes(4, "little")
    return out


def _bits(text: str) -> bytes:
    return int(text.ljust(-(-len(text) // 8) * 8, "0"), 2).to_bytes(-(-len(text) // 8), "big")


def test_section_2_tables_with_value_bits_and_table_switches():
    from engine.io.scp_huffman import decode_leads, parse_tables
    # one table: '0' -> 0, '10' -> +1, '110' -> -1, '111' + 8-bit value
    single = parse_tables((1).to_bytes(2, "little") + _table_bytes(
        [("0", 1, 1, 0), ("10", 2, 1, 1), ("110", 3, 1, -1), ("111", 11, 1, 0)]), "t")
    a = _bits("0" + "10" + "110" + "111" + "11111011" + "10")  # 0, 1, -1, -5, 1
    b = _bits("111" + "01111111" + "0")  # 127, 0
    got = decode_leads([a, b], [5, 2], single, ["a", "b"])
    assert got[0].tolist() == [0, 1, -1, -5, 1] and got[1].tolist() == [127, 0]
    with pytest.raises(CorruptFileError, match="ends or breaks"):
        decode_leads([a, b], [5, 7], single, ["a", "b"])  # b: 2 values, then 4 padding bits read as '0'
    # two tables: table 1 '111' switches to table 2 ('0' -> 5, '1' switches back)
    switching = parse_tables((2).to_bytes(2, "little")
                             + _table_bytes([("0", 1, 1, 0), ("10", 2, 1, 1), ("110", 3, 1, -1),
                                             ("111", 3, 0, 2)])
                             + _table_bytes([("0", 1, 1, 5), ("1", 1, 0, 1)]), "t")
    stream = _bits("0" + "10" + "110" + "111" + "0" + "0" + "1" + "0")
    assert decode_leads([stream], [6], switching, ["s"])[0].tolist() == [0, 1, -1, 5, 5, 0]
    bad = parse_tables((1).to_bytes(2, "little") + _table_bytes([("0", 1, 1, 0), ("1", 1, 0, 7)]), "t")
    with pytest.raises(CorruptFileError, match="table 7"):
        decode_leads([_bits("01")], [3], bad, ["s"])


def test_section_11_coded_statements_when_no_full_text(tmp_path, welch):
    """Section 8 of the real file moved to section 11 as one coded and one free-text statement."""
    data = WELCH.read_bytes()
    start, length = _pointers(data)[8]
    body8 = data[start + 16:start + length]
    def item(seq: int, content: bytes) -> bytes:
        return bytes([seq]) + len(content).to_bytes(2, "little") + content
    coded = item(1, b"\x01SR\x00AVB1\x00")  # type 1: statement acronyms
    free = item(2, b"\x02sinusrytm\x00")  # type 2: free text
    body11 = body8[:8] + bytes([2]) + coded + free
    bodies = {sid: data[s + 16:s + n] for sid, (s, n) in _pointers(data).items() if sid != 8}
    bodies[11] = body11
    path = tmp_path / "coded.scp"
    path.write_bytes(_scp(bodies))
    rec = read_ecg(path)
    assert rec.meta["statements"] == [{"text": "SR", "code": "SR", "confirmed": True},
                                      {"text": "AVB1", "code": "AVB1", "confirmed": True},
                                      {"text": "sinusrytm", "code": None, "confirmed": True}]
    np.testing.assert_array_equal(rec.signal, welch.signal)
