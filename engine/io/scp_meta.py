"""SCP-ECG sections that describe rather than sample: 1 (patient and acquisition),
7 (global measurements), 8 (interpretive statements) and 10 (per-lead measurements).

Each parser takes a section body (the bytes after its 16-byte header) and returns
plain values for `EcgRecord.meta`; a damaged descriptive section raises
`CorruptFileError` and the reader keeps the signal, noting the loss in `meta["warnings"]`.
"""

from __future__ import annotations

import struct
from typing import Any

from engine.errors import CorruptFileError
from engine.io.ecg_common import device_measurements, iso_date, iso_datetime, iso_time, statement

#: "No value" in SCP-ECG integer fields.
UNDEFINED = 29999
_MISSING = {UNDEFINED, 0xFFFF, -1, 32767, -32768, -29999, 999, -999}

#: Section 1 tag 14 byte 17 (language support) -> text encoding; 0 = 8-bit ASCII (read as Latin-1).
_LANGUAGE_CODECS = {0x03: "iso8859_2", 0x0B: "iso8859_4", 0x13: "iso8859_5", 0x1B: "iso8859_6",
                    0x23: "iso8859_7", 0x2B: "iso8859_8", 0x33: "iso8859_11", 0x3B: "iso8859_15",
                    0x07: "utf-16-le", 0x0F: "shift_jis", 0x17: "euc_jp", 0x27: "gb2312",
                    0x2F: "cp949", 0x37: "utf-8"}
#: Section 1 tag 14 byte 8 (manufacturer code) -> name, from the standard's table.
_MANUFACTURERS = ("", "Burdick", "Cambridge", "Compumed", "Datamed", "Fukuda", "Hewlett-Packard",
                  "Marquette Electronics", "Mortara Instruments", "Nihon Kohden", "Okin", "Quinton",
                  "Siemens", "Spacelabs", "Telemed", "Hellige", "ESA-OTE", "Schiller",
                  "Picker-Schwarzer", "et medical devices", "Zwönitz")
#: Section 10 per-lead measurement names, in the order the standard stores them (int16 each).
LEAD_MEASUREMENTS = (
    "P duration", "PR interval", "QRS duration", "QT interval", "Q duration", "R duration",
    "S duration", "R' duration", "S' duration", "Q amplitude", "R amplitude", "S amplitude",
    "R' amplitude", "S' amplitude", "J point amplitude", "P+ amplitude", "P- amplitude",
    "T+ amplitude", "T- amplitude", "ST slope", "P morphology", "T morphology",
    "iso-electric segment at QRS onset", "iso-electric segment at QRS end",
    "intrinsicoid deflection", "quality code", "ST amplitude J+20ms", "ST amplitude J+60ms",
    "ST amplitude J+80ms", "ST amplitude J+RR/16", "ST amplitude J+RR/8")
_LEAD_MEASUREMENT_UNITS = ("ms",) * 9 + ("uV",) * 10 + ("uV/s", "", "", "ms", "ms", "ms", "",
                                                         "uV", "uV", "uV", "uV", "uV")


def text(raw: bytes, encoding: str | None) -> str:
    """A NUL-terminated text field, decoded (Latin-1 when the file names no encoding)."""
    if encoding == "utf-16-le":
        end = next((i for i in range(0, len(raw) - 1, 2) if raw[i:i + 2] == b"\x00\x00"), len(raw))
        raw = raw[:end]
    else:
        raw = raw.split(b"\x00", 1)[0]
    try:
        return raw.decode(encoding or "latin-1").strip()
    except (UnicodeDecodeError, LookupError):
        return raw.decode("latin-1").strip()


def _tags(body: bytes) -> list[tuple[int, bytes]]:
    """(tag, value) of section 1: tag (1 byte), length (uint16), value; tag 255 ends."""
    out, pos = [], 0
    while pos + 3 <= len(body):
        tag, length = body[pos], int.from_bytes(body[pos + 1:pos + 3], "little")
        if tag == 255:
            break
        if pos + 3 + length > len(body):
            raise CorruptFileError(f"patient data tag {tag} runs past its section")
        out.append((tag, body[pos + 3:pos + 3 + length]))
        pos += 3 + length
    return out


def _date(raw: bytes) -> str | None:
    if len(raw) < 4:
        return None
    year = int.from_bytes(raw[0:2], "little")
    return iso_date(f"{year:04d}{raw[2]:02d}{raw[3]:02d}")


def _time(raw: bytes) -> str | None:
    return iso_time(f"{raw[0]:02d}{raw[1]:02d}{raw[2]:02d}") if len(raw) >= 3 else None


def encoding_of(body: bytes) -> str | None:
    """The text encoding section 1 announces (tag 14, language support byte), or None."""
    try:
        for tag, value in _tags(body):
            if tag == 14 and len(value) > 16:
                return _LANGUAGE_CODECS.get(value[16])
    except CorruptFileError:
        pass
    return None


def _device(value: bytes, encoding: str | None) -> dict[str, str]:
    """Tag 14 (acquiring device): fixed 36 bytes, then NUL-terminated strings (analysis
    program revision, serial number, system software, SCP implementation software, trade name)."""
    if len(value) < 36:
        return {}
    strings = value[36:].split(b"\x00") + [b""] * 5
    strings = [text(s, None if encoding == "utf-16-le" else encoding) for s in strings[:5]]
    code = value[7]
    out = {"manufacturer": strings[4] or (_MANUFACTURERS[code] if code < len(_MANUFACTURERS) else ""),
           "model": text(value[8:14], None), "software": strings[2], "serial": strings[1]}
    return {k: v for k, v in out.items() if v}


def patient_meta(body: bytes, encoding: str | None) -> dict[str, Any]:
    """patient_id, patient_name ("Last, First"), birth_date / acquired (ISO), age (years),
    sex ("M"/"F"), device {manufacturer, model, software, serial}, institution,
    confirming_physician, filters {highpass_hz, lowpass_hz}: only fields the file has."""
    fields: dict[int, bytes] = {}
    for tag, value in _tags(body):
        fields.setdefault(tag, value)
    meta: dict[str, Any] = {}
    decoded = {tag: text(value, encoding) for tag, value in fields.items() if tag in (0, 1, 2, 3, 16, 21)}
    if decoded.get(2):
        meta["patient_id"] = decoded[2]
    last = " ".join(x for x in (decoded.get(0), decoded.get(3)) if x)
    name = ", ".join(x for x in (last, decoded.get(1)) if x)
    if name:
        meta["patient_name"] = name
    if 5 in fields and (birth := _date(fields[5])):
        meta["birth_date"] = birth
    if 4 in fields and len(fields[4]) >= 3:
        age, unit = int.from_bytes(fields[4][0:2], "little"), fields[4][2]
        if unit in (0, 1) and 0 < age <= 130:  # 0 unspecified, 1 years
            meta["age"] = age
    if 8 in fields and fields[8][:1] in (b"\x01", b"\x02"):
        meta["sex"] = "M" if fields[8][0] == 1 else "F"
    if 25 in fields and (day := _date(fields[25])):  # a time without its date is not kept
        meta["acquired"] = iso_datetime(day, _time(fields[26]) if 26 in fields else None) or day
    if 14 in fields and (device := _device(fields[14], encoding)):
        meta["device"] = device
    if decoded.get(16):
        meta["institution"] = decoded[16]
    if decoded.get(21):
        meta["confirming_physician"] = decoded[21]
    filters = {}
    highpass = int.from_bytes(fields[27][0:2], "little") if len(fields.get(27, b"")) >= 2 else 0
    lowpass = int.from_bytes(fields[28][0:2], "little") if len(fields.get(28, b"")) >= 2 else 0
    if 0 < highpass < 0xFFFF:  # 0 / 0xFFFF: not given
        filters["highpass_hz"] = highpass / 100.0
    if 0 < lowpass < 0xFFFF:
        filters["lowpass_hz"] = float(lowpass)
    if filters:
        meta["filters"] = filters
    return meta


def _ok(value: int) -> bool:
    return value not in _MISSING


def global_measurements(body: bytes) -> tuple[list[dict[str, Any]], dict[str, float]]:
    """Section 7: (raw measurement list for `meta["measurements"]`, device measurements).

    Layout: number of measurement blocks (reference beat types + 1), number of pacemaker
    spikes, mean RR and PP (ms, from version 2.0), then per block P onset, P offset,
    QRS onset, QRS offset, T offset (ms within the reference beat, uint16) and P, QRS, T
    axes (degrees, int16); then spikes (4 + 6 bytes each), QRS types, and ventricular rate,
    atrial rate, QTc (uint16) and the QTc formula. Intervals of the first block (beat type 0)
    give PR = QRS onset - P onset, P = P offset - P onset, QRS = QRS offset - QRS onset,
    QT = T offset - QRS onset."""
    if len(body) < 6:
        raise CorruptFileError("the global measurements section is too short")
    n_blocks, n_spikes = body[0], body[1]
    rr, pp = struct.unpack_from("<HH", body, 2)
    raw: list[dict[str, Any]] = []
    values: dict[str, Any] = {}
    if _ok(rr) and rr:
        raw.append({"name": "RR interval", "value": float(rr), "units": "ms", "group": None})
        values["rr_ms"] = rr
    if _ok(pp) and pp:
        raw.append({"name": "PP interval", "value": float(pp), "units": "ms", "group": None})
    pos = 6
    if pos + 16 * n_blocks > len(body):
        raise CorruptFileError("the global measurement blocks run past their section")
    names = ("P onset", "P offset", "QRS onset", "QRS offset", "T offset", "P axis", "QRS axis", "T axis")
    for b in range(n_blocks):
        block = struct.unpack_from("<5H3h", body, pos + 16 * b)
        for name, value in zip(names, block):
            if _ok(value):
                raw.append({"name": name, "value": float(value),
                            "units": "deg" if "axis" in name else "ms", "group": b})
        if b == 0:
            p_on, p_off, q_on, q_off, t_off, p_ax, qrs_ax, t_ax = block
            if _ok(p_on) and _ok(q_on) and q_on > p_on:
                values["pr_ms"] = q_on - p_on
            if _ok(p_on) and _ok(p_off) and p_off > p_on:
                values["p_ms"] = p_off - p_on
            if _ok(q_on) and _ok(q_off) and q_off > q_on:
                values["qrs_ms"] = q_off - q_on
            if _ok(q_on) and _ok(t_off) and t_off > q_on:
                values["qt_ms"] = t_off - q_on
            for key, axis in (("p_axis_deg", p_ax), ("qrs_axis_deg", qrs_ax), ("t_axis_deg", t_ax)):
                if _ok(axis) and -360 <= axis <= 360:
                    values[key] = axis
    pos += 16 * n_blocks + 10 * n_spikes
    if pos + 2 <= len(body):
        n_qrs = int.from_bytes(body[pos:pos + 2], "little")
        pos += 2 + n_qrs
        if pos + 7 <= len(body):
            vent, atrial, qtc, _formula = struct.unpack_from("<3HB", body, pos)
            if _ok(vent) and vent:
                raw.append({"name": "Ventricular rate", "value": float(vent), "units": "/min", "group": None})
                values["hr_bpm"] = vent
            if _ok(atrial) and atrial:
                raw.append({"name": "Atrial rate", "value": float(atrial), "units": "/min", "group": None})
            if _ok(qtc) and qtc:
                raw.append({"name": "QTc", "value": float(qtc), "units": "ms", "group": None})
                values["qtc_ms"] = qtc
    return raw, device_measurements(values)


def _statement_values(body: bytes) -> tuple[bool, list[bytes]]:
    """(confirmed, statement byte strings) of a section 8 / 11 body.

    Layout: confirmation (0 original, not confirmed; 1 confirmed; 2 overread, not
    confirmed), report date (4) and time (3), number of statements, then per statement a
    sequence number, a length (uint16) and its bytes."""
    if len(body) < 9:
        raise CorruptFileError("the interpretive statements section is too short")
    out, pos = [], 9
    for _ in range(body[8]):
        if pos + 3 > len(body):
            raise CorruptFileError("the interpretive statements run past their section")
        size = int.from_bytes(body[pos + 1:pos + 3], "little")
        value = body[pos + 3:pos + 3 + size]
        if len(value) < size:
            raise CorruptFileError("an interpretive statement runs past its section")
        pos += 3 + size
        out.append(value)
    return body[0] == 1, out


def _texts(value: bytes, encoding: str | None) -> list[str]:
    parts = value.split(b"\x00\x00") if encoding == "utf-16-le" else value.split(b"\x00")
    return [t for p in parts if (t := text(p + b"\x00", encoding))]


def statements(body: bytes, encoding: str | None) -> list[dict[str, Any]]:
    """Section 8: the full-text interpretive statements, each
    `ecg_common.statement(text, None, confirmed)` (NUL-separated pieces of a statement
    joined by a space)."""
    confirmed, values = _statement_values(body)
    return [statement(" ".join(parts), None, confirmed) for value in values
            if (parts := _texts(value, encoding))]


def coded_statements(body: bytes, encoding: str | None) -> list[dict[str, Any]]:
    """Section 11 (universal statement codes): each statement's first byte is its type:
    1 = coded (NUL-separated statement acronyms, e.g. "SR": text and code both the acronym,
    no term table being in the file), 2 = free text; 3 (statement logic) is left out."""
    confirmed, values = _statement_values(body)
    out = []
    for value in values:
        kind, rest = (value[0], value[1:]) if value else (0, b"")
        if kind == 1:
            out += [statement(code, code, confirmed) for code in _texts(rest, encoding)]
        elif kind == 2 and (parts := _texts(rest, encoding)):
            out.append(statement(" ".join(parts), None, confirmed))
    return out


def lead_measurements(body: bytes, lead_name) -> list[dict[str, Any]]:
    """Section 10: per-lead measurements as {"name", "value", "units", "group": lead}.

    Layout: number of leads (uint16), manufacturer-specific (uint16), then per lead its
    code (uint16), the byte count of its values (uint16) and int16 values in
    `LEAD_MEASUREMENTS` order. `lead_name(code)` names a lead."""
    if len(body) < 4:
        raise CorruptFileError("the lead measurements section is too short")
    count, pos, out = int.from_bytes(body[0:2], "little"), 4, []
    for _ in range(count):
        if pos + 4 > len(body):
            raise CorruptFileError("the lead measurements run past their section")
        code, size = struct.unpack_from("<HH", body, pos)
        block = body[pos + 4:pos + 4 + size]
        if len(block) < size:
            raise CorruptFileError("the lead measurements run past their section")
        pos += 4 + size
        lead = lead_name(code)
        for i, name in enumerate(LEAD_MEASUREMENTS[:size // 2]):
            value = int.from_bytes(block[2 * i:2 * i + 2], "little", signed=True)
            if value not in (UNDEFINED, -UNDEFINED, 32767, -32768):
                out.append({"name": f"{lead} {name}", "value": float(value),
                            "units": _LEAD_MEASUREMENT_UNITS[i], "group": lead})
    return out
