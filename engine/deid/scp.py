"""SCP-ECG de-identification: section 1 (patient data) tags, CRCs recomputed.

Layout (EN 1064 / ISO 11073-91064; see engine/io/scp_ecg.py): a record CRC (2 bytes,
CRC-CCITT over the rest), the record length, then sections with a 16-byte header
(CRC over the section after its CRC field, id, length, ...). Section 0 points at
the others (id uint16, length uint32, 1-based index uint32 per entry). Section 1
is a list of tags (tag uint8, length uint16, value; tag 255 ends).

Every value is overwritten in place, keeping its length (no section moves):
texts are zero-filled (the patient ID holds the export's pseudonym, cut to fit),
the birth date zeroed, the acquisition date moved by the patient's keyed offset
(time of day kept), the institution / department / device numbers of tags 14-15
zeroed (the manufacturer, model and language bytes the reader uses are kept), and
age, height, weight and sex zeroed unless `keep_characteristics`. Then the CRCs
of section 1 and of the record are recomputed (a CRC field of 0, "not computed",
stays 0).
"""

from __future__ import annotations

import binascii
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from engine.deid.keys import DeidKeys
from engine.errors import DeidError

#: Text tags zero-filled: last / first / second last name, diagnosis or referral, institution
#: and department descriptions, referring / confirming physicians, technician, room, free texts,
#: ECG sequence number, medical history codes, drugs.
TEXT_TAGS = {0: "last name", 1: "first name", 3: "second last name", 10: "drugs",
             13: "referral indication", 16: "acquiring institution", 17: "analysing institution",
             18: "acquiring department", 19: "analysing department", 20: "referring physician",
             21: "confirming physician", 22: "technician", 23: "room", 30: "free text",
             31: "ECG sequence number", 32: "medical history codes", 35: "medical history"}
CHARACTERISTIC_TAGS = {4: "age", 6: "height", 7: "weight", 8: "sex"}
ZEROED_TAGS = {5: "date of birth", 9: "race"}
MACHINE_TAGS = {14: "acquiring device numbers", 15: "analysing device numbers"}
_PATIENT_ID, _ACQ_DATE = 2, 25


def _crc(data: bytes) -> int:
    return binascii.crc_hqx(data, 0xFFFF)


def _section1(data: bytes | bytearray) -> tuple[int, int]:
    """(start, length) of section 1 in the record, from section 0's pointers."""
    if len(data) < 22:
        raise DeidError("the file is too short to be SCP-ECG")
    s0_len = int.from_bytes(data[10:14], "little")
    pos = 6 + 16
    while pos + 10 <= min(len(data), 6 + s0_len):
        sid = int.from_bytes(data[pos:pos + 2], "little")
        length = int.from_bytes(data[pos + 2:pos + 6], "little")
        index = int.from_bytes(data[pos + 6:pos + 10], "little")
        if sid == 1 and length > 16:
            start = index - 1
            if start < 0 or start + length > len(data):
                raise DeidError("section 1 lies outside the file")
            return start, length
        pos += 10
    raise DeidError("the file has no patient data section (section 1)")


def deid_scp(src: Path, dst: Path, keys: DeidKeys, pkey: str, *,
             keep_characteristics: bool = False) -> dict[str, Any]:
    """Write a de-identified copy of an SCP-ECG file.

    Raises:
        DeidError: not a well-formed SCP-ECG record, or the copy cannot be written.
    """
    try:
        data = bytearray(src.read_bytes())
    except OSError as exc:
        raise DeidError(f"{src} cannot be read ({exc.strerror}).") from exc
    try:
        start, length = _section1(data)
    except DeidError as exc:
        raise DeidError(f"{src}: {exc}; it was not exported.") from exc
    days = keys.offset_days(pkey)
    pseudonym = keys.pseudonym(pkey).encode("ascii")
    changes: dict[str, str] = {}
    pos, end = start + 16, start + length
    while pos + 3 <= end:
        tag, n = data[pos], int.from_bytes(data[pos + 1:pos + 3], "little")
        if tag == 255:
            break
        v0, v1 = pos + 3, pos + 3 + n
        if v1 > end:
            raise DeidError(f"{src}: patient data tag {tag} runs past its section; it was not exported.")
        if tag == _PATIENT_ID and n:
            data[v0:v1] = pseudonym[:max(0, n - 1)].ljust(n, b"\x00")
            changes["patient ID"] = "pseudonym"
        elif tag in TEXT_TAGS or tag in ZEROED_TAGS or (tag in CHARACTERISTIC_TAGS and not keep_characteristics):
            if any(data[v0:v1]):
                data[v0:v1] = bytes(n)
                changes[(TEXT_TAGS | ZEROED_TAGS | CHARACTERISTIC_TAGS)[tag]] = "removed"
        elif tag in MACHINE_TAGS and n >= 6:
            data[v0:v0 + 6] = bytes(6)
            changes[MACHINE_TAGS[tag]] = "removed"
        elif tag == _ACQ_DATE and n >= 4:
            year, month, day = int.from_bytes(data[v0:v0 + 2], "little"), data[v0 + 2], data[v0 + 3]
            try:
                moved = date(year, month, day) + timedelta(days=days)
                data[v0:v0 + 4] = moved.year.to_bytes(2, "little") + bytes([moved.month, moved.day])
                changes["date of acquisition"] = "date shifted"
            except ValueError:
                data[v0:v0 + 4] = bytes(4)
                changes["date of acquisition"] = "removed"
        pos = v1
    if int.from_bytes(data[start:start + 2], "little") != 0:
        data[start:start + 2] = _crc(bytes(data[start + 2:end])).to_bytes(2, "little")
    if int.from_bytes(data[0:2], "little") != 0:
        data[0:2] = _crc(bytes(data[2:])).to_bytes(2, "little")
    try:
        dst.write_bytes(bytes(data))
    except OSError as exc:
        raise DeidError(f"Cannot write {dst} ({exc.strerror}).") from exc
    return {"patient_pseudonym": keys.pseudonym(pkey), "changes": changes}
