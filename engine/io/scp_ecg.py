"""Read an SCP-ECG file (EN 1064 / ISO 11073-91064, protocol versions 1.x-3.0) into an `EcgRecord`.

Why our own decoder: no well-kept, small pure-Python SCP-ECG library exists. The one
complete reader on PyPI, `ecgdatakit` (Apache-2.0), decodes both sample files exactly,
but its wheel is ~48 MB (64 MB installed: it bundles neural-network weights and
plotting code) for the ~1 200 lines we need, returns 8 leads for 8-lead files and
takes 65-95 ms per file. It is the test oracle instead (the `dev` extra):
tests/engine/test_read_scp_ecg.py checks that both decoders give the same samples.

Layout: a record is CRC (2 bytes), length (uint32), then sections, each with a 16-byte
header (CRC, id, length, section version, protocol version, 6 reserved bytes, which in
section 0 read "SCPECG"). Section 0 points to the others (id, length, 1-based byte
index). All integers are little-endian.

- 2: Huffman tables (`engine.io.scp_huffman`); absent = samples stored as int16.
- 3: leads (count, flags: bit 0 reference beat subtracted, bit 2 simultaneous), then
  per lead first / last sample (1-based) and lead code.
- 4: reference beat length and fiducial, QRS subtraction zones (beat type, start,
  fiducial, end).
- 5 / 6: reference beats / rhythm: amplitude multiplier (nV per unit), sample interval
  (us), difference coding (0, 1, 2), a flag (6: bimodal compression up to version 2.x),
  per lead byte counts, then per-lead streams.
- 1, 7, 8, 10, 11: patient, global measurements, statements, lead measurements, coded
  statements (read when section 8 is absent) (`engine.io.scp_meta`).

Rhythm = decoded residual of section 6 + (when section 3 says so) the reference beat of
type 0 added back at every QRS subtraction zone, aligned on its fiducial. Bimodal
compression (rhythm decimated outside the QRS) is refused with UnsupportedFormatError:
neither sample file uses it and a faithful reconstruction needs the writer's filter.

CRCs (CRC-CCITT, initial value 0xFFFF) of the record and of sections 0-11 are checked;
a mismatch is a CorruptFileError. The one benign variant accepted: a CRC field of 0,
which some writers leave when they do not compute it (noted in `meta["warnings"]`).

The file stores 8 leads (I, II, V1-V6) on most carts: III, aVR, aVL, aVF are derived
(`engine.io.ecg_common.complete_limb_leads`) and named in `meta["derived_leads"]`;
paediatric and other non-standard leads (V3R, V4R, V7, ...) stay extra channels.
"""

from __future__ import annotations

import binascii
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from engine.errors import CorruptFileError, LeadError, UnsupportedFormatError
from engine.io import scp_huffman, scp_meta
from engine.io.ecg_common import check_signal_size, complete_limb_leads
from engine.io.files import file_size, read_bytes
from engine.io.guard import corrupt_file_errors
from engine.records import EcgRecord, Source

log = logging.getLogger(__name__)

#: Largest SCP-ECG file read (a resting ECG is 10-100 KiB).
MAX_FILE_BYTES = 16 * 1024 * 1024
_HEADER = 16
_MAX_LEADS = 64
_MAX_BEAT_SAMPLES = 20_000  # a reference beat: 2 s at 10 kHz

#: Section 3 lead codes of the standard (index = code).
LEAD_CODES: tuple[str, ...] = (
    "Unspecified", "I", "II", "V1", "V2", "V3", "V4", "V5", "V6", "V7",
    "V2R", "V3R", "V4R", "V5R", "V6R", "V7R", "X", "Y", "Z", "CC5",
    "CM5", "LA", "RA", "LL", "fI", "fE", "fC", "fA", "fM", "fF",
    "fH", "I-cal", "II-cal", "V1-cal", "V2-cal", "V3-cal", "V4-cal", "V5-cal", "V6-cal", "V7-cal",
    "V2R-cal", "V3R-cal", "V4R-cal", "V5R-cal", "V6R-cal", "V7R-cal", "X-cal", "Y-cal", "Z-cal",
    "CC5-cal", "CM5-cal", "LA-cal", "RA-cal", "LL-cal", "fI-cal", "fE-cal", "fC-cal", "fA-cal",
    "fM-cal", "fF-cal", "fH-cal", "III", "aVR", "aVL", "aVF", "-aVR", "V8", "V9", "V8R", "V9R",
    "D", "A", "J", "Defib", "ExtPace", "A1", "A2", "A3", "A4", "V8-cal",
    "V9-cal", "V8R-cal", "V9R-cal", "D-cal", "A-cal", "J-cal")


def lead_name(code: int) -> str:
    """Name of a section 3 lead code ("I", "V3R", ...; "lead code N" when unknown)."""
    return LEAD_CODES[code] if 0 < code < len(LEAD_CODES) else f"lead code {code}"


def crc_ccitt(data: bytes) -> int:
    """CRC-CCITT (polynomial 0x1021, initial value 0xFFFF) as SCP-ECG computes it."""
    return binascii.crc_hqx(data, 0xFFFF)


@dataclass(frozen=True)
class _Section:
    id: int
    start: int  # 0-based offset of the section header
    length: int  # including the header
    version: int

    def body(self, data: bytes) -> bytes:
        return data[self.start + _HEADER:self.start + self.length]


@dataclass(frozen=True)
class _Lead:
    start: int
    end: int
    code: int


def read_scp_ecg(path: Path, annotations: bool = True) -> EcgRecord:
    """Read an SCP-ECG file.

    Args:
        path: the .scp file.
        annotations: False (batch scoring) skips the median beats (the reference beats
            are still decoded when the rhythm needs them added back); patient fields,
            measurements and statements are read either way (they cost well under 1 ms).

    Returns:
        EcgRecord: `signal` float32 `[n_leads, n_samples]` in mV, standard leads in
        `LEADS` order (derived limb leads in `meta["derived_leads"]`), non-standard
        leads in `extra_signal` (mV, `extra_units` "mV"); `meta`: patient fields,
        "device_measurements", "measurements", "statements", "median_beats"
        ({"signal": float32 `[n, m]` mV, "fs", "leads", "derived"}), "scp" (version,
        encoding details).

    Raises:
        CorruptFileError: CRC mismatch, truncated or inconsistent sections, Huffman
            streams that break. UnsupportedFormatError: bimodal compression, leads not
            recorded together. LeadError: no standard lead.
    """
    size = file_size(path, "SCP-ECG file")
    if size > MAX_FILE_BYTES:
        raise CorruptFileError(f"The SCP-ECG file {path} is {size} bytes, far more than an ECG "
                               f"holds; it is damaged or not an SCP-ECG file.")
    data = read_bytes(path, None, "SCP-ECG file")
    with corrupt_file_errors(
            path, lambda error: f"The SCP-ECG file {path} is damaged ({error}). Export the ECG again.",
            f"The SCP-ECG file {path} claims more data than can be read."):
        return decode_scp_ecg(data, path, annotations)


def decode_scp_ecg(data: bytes, path: Path, annotations: bool = True) -> EcgRecord:
    """`read_scp_ecg` on the file's bytes `data` (same result and errors)."""
    what = f"The SCP-ECG file {path}"
    warnings: list[str] = []
    sections = _sections(data, what, warnings)
    if 3 not in sections or 6 not in sections:
        raise CorruptFileError(f"{what} has no {'lead' if 3 not in sections else 'rhythm'} "
                               f"section; it holds no ECG samples to show.")
    tables = (scp_huffman.parse_tables(sections[2].body(data), what) if 2 in sections else None)
    leads, flags = _leads(sections[3].body(data), what)
    encoding = scp_meta.encoding_of(sections[1].body(data)) if 1 in sections else None
    names = [lead_name(lead.code) for lead in leads]

    rhythm_body = sections[6].body(data)
    avm6, interval6, diff6, flag6, _ = _stream_header(rhythm_body, len(leads), what, "rhythm")
    if flag6 and sections[6].version < 30:
        raise UnsupportedFormatError(f"{what} uses bimodal compression (rhythm stored at a reduced "
                                     f"rate outside the QRS complexes), which this program does not "
                                     f"read. Export the ECG without high compression.")
    fs = _rate(interval6, what)
    n = leads[0].end - leads[0].start + 1
    if any(lead.start != leads[0].start or lead.end != leads[0].end for lead in leads):
        raise UnsupportedFormatError(f"{what} stores leads recorded at different times (sample "
                                     f"ranges differ); this program reads simultaneous 12-lead ECGs.")
    check_signal_size(len(leads), n, fs, what)
    residual = _decode_leads(rhythm_body, len(leads), [n] * len(leads), tables, diff6, what, "rhythm")
    rhythm_nv = residual.astype(np.float64) * avm6

    subtracted = bool(flags & 0x01)
    median = None
    if subtracted or (annotations and 5 in sections):
        median = _reference_beats(data, sections, leads, tables, what, warnings, required=subtracted)
    if subtracted:
        if median is None:  # not reached: a required reference beat raises when missing
            raise CorruptFileError(f"{what} subtracts reference beats it does not hold.")
        if median["interval"] != interval6:
            raise UnsupportedFormatError(f"{what} subtracts reference beats sampled at another rate "
                                         f"than the rhythm, which this program does not read.")
        _add_reference_beats(rhythm_nv, median["nv"], median["zones"], median["fiducial"], leads[0].start)

    lead_set = complete_limb_leads(zip(names, rhythm_nv / 1e6))
    if not lead_set.leads:
        raise LeadError(f"{what} has none of the 12 standard ECG leads (leads: {', '.join(names)}). "
                        f"Open a 12-lead ECG.")
    meta: dict[str, Any] = {
        "original_lead_names": list(lead_set.original_names),
        "derived_leads": list(lead_set.derived),
        "scp": {"protocol_version": sections[0].version, "huffman": tables is not None,
                "differences": diff6, "reference_beat_subtracted": subtracted,
                "amplitude_nv": avm6, "sample_interval_us": interval6}}
    if 1 in sections:
        _describe(meta, warnings, "patient data",
                  lambda: scp_meta.patient_meta(sections[1].body(data), encoding))
    _annotate(meta, data, sections, encoding, warnings)
    if annotations:
        if median is not None:
            beats = complete_limb_leads(zip(names, median["nv"] / 1e6))
            if beats.leads:
                meta["median_beats"] = {"signal": beats.signal, "fs": _rate(median["interval"], what),
                                        "leads": beats.leads, "derived": beats.derived}
    if warnings:
        meta["warnings"] = warnings
    return EcgRecord(
        signal=lead_set.signal, fs=fs, leads=lead_set.leads, meta=meta,
        source=Source(path=str(path), format="scp-ecg"),
        extra_signal=lead_set.extra_signal, extra_names=lead_set.extra_names,
        extra_units=("mV",) * len(lead_set.extra_names))


def _sections(data: bytes, what: str, warnings: list[str]) -> dict[int, _Section]:
    """Sections 0-11 present (length > 0), located from section 0, headers and CRCs checked."""
    if len(data) < 6 + _HEADER:
        raise CorruptFileError(f"{what} is too short ({len(data)} bytes) to be an SCP-ECG record.")
    declared = int.from_bytes(data[2:6], "little")
    if declared > len(data) or declared < 6 + _HEADER:
        raise CorruptFileError(f"{what} declares {declared} bytes but has {len(data)}: it is "
                               f"truncated. Copy or export the ECG again.")
    data = data[:declared]
    _check_crc(data[2:], int.from_bytes(data[0:2], "little"), what, "record", warnings)
    s0_len = int.from_bytes(data[10:14], "little")
    if int.from_bytes(data[8:10], "little") != 0 or not _HEADER <= s0_len <= len(data) - 6:
        raise CorruptFileError(f"{what} does not start with a valid section 0 (pointer section).")
    found = {0: _Section(0, 6, s0_len, data[14])}
    for pos in range(6 + _HEADER, 6 + s0_len - 9, 10):
        sid = int.from_bytes(data[pos:pos + 2], "little")
        length = int.from_bytes(data[pos + 2:pos + 6], "little")
        index = int.from_bytes(data[pos + 6:pos + 10], "little")
        if sid == 0 or length == 0 or sid > 11:
            continue  # absent, or a manufacturer section (not read)
        start = index - 1
        if index == 0 or length < _HEADER or start + length > len(data):
            raise CorruptFileError(f"{what}: section {sid} ({length} bytes at byte {index}) lies "
                                   f"outside the {len(data)}-byte record; the file is damaged.")
        if int.from_bytes(data[start + 2:start + 4], "little") != sid:
            raise CorruptFileError(f"{what}: section 0 points to section {sid} but another section "
                                   f"is there; the file is damaged.")
        own = int.from_bytes(data[start + 4:start + 8], "little")
        if own != length:
            if not _HEADER <= own <= length:
                raise CorruptFileError(f"{what}: section {sid} is {own} bytes by its header and "
                                       f"{length} by section 0; the file is damaged.")
            warnings.append(f"section {sid} is {own} bytes by its header, {length} by section 0")
            length = own
        _check_crc(data[start + 2:start + length], int.from_bytes(data[start:start + 2], "little"),
                   what, f"section {sid}", warnings)
        found[sid] = _Section(sid, start, length, data[start + 8])
    _check_crc(data[8:6 + s0_len], int.from_bytes(data[6:8], "little"), what, "section 0", warnings)
    return found


def _check_crc(covered: bytes, stored: int, what: str, part: str, warnings: list[str]) -> None:
    if stored == 0 and crc_ccitt(covered) != 0:
        warnings.append(f"no CRC written for the {part} (CRC field 0); not checked")
        return
    if crc_ccitt(covered) != stored:
        raise CorruptFileError(f"{what} fails its checksum (CRC of the {part}): the file was "
                               f"damaged in storage or transfer. Copy or export the ECG again.")


def _leads(body: bytes, what: str) -> tuple[list[_Lead], int]:
    if len(body) < 2:
        raise CorruptFileError(f"{what}: the lead section is too short.")
    count, flags = body[0], body[1]
    if not 0 < count <= _MAX_LEADS or 2 + 9 * count > len(body):
        raise CorruptFileError(f"{what}: the lead section declares {count} leads that it does not hold.")
    leads = []
    for i in range(count):
        pos = 2 + 9 * i
        start = int.from_bytes(body[pos:pos + 4], "little")
        end = int.from_bytes(body[pos + 4:pos + 8], "little")
        if start < 1 or end < start:
            raise CorruptFileError(f"{what}: lead {i + 1} has the impossible sample range {start}-{end}.")
        leads.append(_Lead(start, end, body[pos + 8]))
    return leads, flags


def _stream_header(body: bytes, n_leads: int, what: str, part: str) -> tuple[int, int, int, int, list[int]]:
    """(amplitude multiplier nV, sample interval us, difference coding, flag byte, byte count per lead)."""
    if len(body) < 6 + 2 * n_leads:
        raise CorruptFileError(f"{what}: the {part} section is too short.")
    avm, interval = int.from_bytes(body[0:2], "little"), int.from_bytes(body[2:4], "little")
    diff, flag = body[4], body[5]
    if diff not in (0, 1, 2):
        raise CorruptFileError(f"{what}: the {part} section names an unknown difference coding ({diff}).")
    if avm == 0:
        raise CorruptFileError(f"{what}: the {part} section gives no amplitude scale (0 nV per unit).")
    sizes = [int.from_bytes(body[6 + 2 * i:8 + 2 * i], "little") for i in range(n_leads)]
    if 6 + 2 * n_leads + sum(sizes) > len(body):
        raise CorruptFileError(f"{what}: the {part} data ({sum(sizes)} bytes) runs past its section.")
    return avm, interval, diff, flag, sizes


def _rate(interval_us: int, what: str) -> float:
    if interval_us == 0:
        raise CorruptFileError(f"{what} declares a sample interval of 0 us.")
    # the interval is whole microseconds: 600 Hz is written 1667 us; take the whole rate in Hz
    # whose interval rounds to the one written, else the exact quotient
    whole = round(1e6 / interval_us)
    return float(whole) if whole > 0 and round(1e6 / whole) == interval_us else 1e6 / interval_us


def _decode_leads(body: bytes, n_leads: int, counts: list[int], tables, diff: int, what: str,
                  part: str) -> np.ndarray:
    """int64 `[n_leads, max(counts)]` amplitudes of a section 5 / 6 body."""
    _, _, _, _, sizes = _stream_header(body, n_leads, what, part)
    chunks, pos = [], 6 + 2 * n_leads
    for size in sizes:
        chunks.append(body[pos:pos + size])
        pos += size
    labels = [f"{what}, {part} lead {i + 1}" for i in range(n_leads)]
    per_sample_bits = 1 if tables is not None else 16  # the shortest Huffman code is 1 bit
    for chunk, count, label in zip(chunks, counts, labels):  # before allocating anything
        if count * per_sample_bits > 8 * len(chunk):
            raise CorruptFileError(f"{label} declares {count} samples, more than its {len(chunk)} "
                                   f"bytes can hold; the file is damaged. Export the ECG again.")
    out = np.zeros((n_leads, max(counts)), np.int64)
    if tables is not None:
        decoded = scp_huffman.decode_leads(chunks, counts, tables, labels)
    else:
        decoded = []
        for chunk, count, label in zip(chunks, counts, labels):
            if 2 * count > len(chunk):
                raise CorruptFileError(f"{label} holds {len(chunk) // 2} samples, {count} expected.")
            decoded.append(np.frombuffer(chunk, dtype="<i2", count=count).astype(np.int64))
    for i, (values, count) in enumerate(zip(decoded, counts)):
        out[i, :count] = scp_huffman.undo_differences(values, diff)
    return out


def _reference_beats(data: bytes, sections: dict[int, _Section], leads: list[_Lead], tables, what: str,
                     warnings: list[str], required: bool) -> dict[str, Any] | None:
    """{"nv": float64 `[n_leads, m]` in nV, "interval": us, "fiducial": 1-based sample,
    "zones": [(start, fiducial, end)] of beat type 0} from sections 4 and 5."""
    try:
        if 4 not in sections or 5 not in sections:
            raise CorruptFileError(f"{what} subtracts reference beats but lacks section "
                                   f"{4 if 4 not in sections else 5}; the file is damaged.")
        body4 = sections[4].body(data)
        if len(body4) < 6:
            raise CorruptFileError(f"{what}: the QRS locations section is too short.")
        length_ms, fiducial, n_qrs = (int.from_bytes(body4[i:i + 2], "little") for i in (0, 2, 4))
        if 6 + 14 * n_qrs > len(body4):
            raise CorruptFileError(f"{what}: the QRS locations run past their section.")
        zones = []
        for q in range(n_qrs):
            pos = 6 + 14 * q
            if int.from_bytes(body4[pos:pos + 2], "little") == 0:
                zones.append(tuple(int.from_bytes(body4[pos + k:pos + k + 4], "little") for k in (2, 6, 10)))
        body5 = sections[5].body(data)
        avm, interval, diff, _, _ = _stream_header(body5, len(leads), what, "reference beat")
        m = round(length_ms * 1000 / interval) if interval else 0
        if not 0 < m <= _MAX_BEAT_SAMPLES:
            raise CorruptFileError(f"{what}: the reference beat length ({length_ms} ms) is impossible.")
        beats = _decode_leads(body5, len(leads), [m] * len(leads), tables, diff, what, "reference beat")
        return {"nv": beats.astype(np.float64) * avm, "interval": interval, "fiducial": fiducial,
                "zones": zones}
    except CorruptFileError as exc:
        if required:
            raise
        log.warning("reference beats not read: %s", exc)
        warnings.append(f"median beats not read: {exc}")
        return None


def _add_reference_beats(rhythm: np.ndarray, beat: np.ndarray, zones: list[tuple[int, int, int]],
                         fiducial: int, first_sample: int) -> None:
    """Add the type-0 reference beat back into the residual `rhythm` (in place, both in nV):
    in each zone (start, fiducial, end; 1-based samples) the beat is aligned so that its own
    fiducial falls on the zone's."""
    n, m = rhythm.shape[1], beat.shape[1]
    for start, fid, end in zones:
        first = max(start, first_sample, fid - fiducial + 1)
        last = min(end, first_sample + n - 1, fid - fiducial + m)
        if last < first:
            continue
        r0, b0 = first - first_sample, fiducial - fid + first - 1
        rhythm[:, r0:r0 + last - first + 1] += beat[:, b0:b0 + last - first + 1]


def _describe(meta: dict[str, Any], warnings: list[str], part: str, parse) -> None:
    """meta.update(parse()); a damaged descriptive section costs only its own fields."""
    try:
        meta.update(parse())
    except CorruptFileError as exc:
        log.warning("SCP-ECG %s not read: %s", part, exc)
        warnings.append(f"{part} not read: {exc}")


def _annotate(meta: dict[str, Any], data: bytes, sections: dict[int, _Section], encoding: str | None,
              warnings: list[str]) -> None:
    measurements: list[dict[str, Any]] = []
    if 7 in sections:
        def global_part() -> dict[str, Any]:
            raw, device = scp_meta.global_measurements(sections[7].body(data))
            measurements.extend(raw)
            return {"device_measurements": device} if device else {}
        _describe(meta, warnings, "global measurements", global_part)
    if 10 in sections:
        def lead_part() -> dict[str, Any]:
            measurements.extend(scp_meta.lead_measurements(sections[10].body(data), lead_name))
            return {}
        _describe(meta, warnings, "lead measurements", lead_part)
    if measurements:
        meta["measurements"] = measurements
    if 8 in sections:
        _describe(meta, warnings, "statements", lambda: (
            {"statements": s} if (s := scp_meta.statements(sections[8].body(data), encoding)) else {}))
    if 11 in sections and "statements" not in meta:  # coded statements only when no full text
        _describe(meta, warnings, "coded statements", lambda: (
            {"statements": s} if (s := scp_meta.coded_statements(sections[11].body(data), encoding))
            else {}))
