"""Recognise a file's format from its content (not only its extension).

`sniff(path)` returns one of the `Kind` strings below. It reads at most the first
64 KiB of the file. XML files are told apart by their root element (UTF-8, Latin-1
or UTF-16): "muse-xml" (RestingECG), "philips-xml" (restingecgdata), "hl7-aecg"
(AnnotatedECG), "xml" (any other XML document).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from engine.io.files import read_bytes
from engine.io.xml_common import xml_flavour

Kind = Literal["dicom", "wfdb-header", "png", "jpeg", "matlab", "muse-xml", "philips-xml", "hl7-aecg",
               "xml", "scp-ecg", "edf", "bdf", "empty", "unknown"]

_HEAD_BYTES = 65536
# First non-comment line of a WFDB header: record name[/segments], signal count, ...
_WFDB_RECORD_LINE = re.compile(rb"^[ \t]*[-\w]+(/\d+)?[ \t]+\d+([ \t]|$)")
_DICOM_TAG_GROUPS = (b"\x02\x00", b"\x08\x00")


def sniff_bytes(head: bytes) -> Kind:
    """Format of a file whose first bytes (up to 64 KiB) are `head`."""
    if not head:
        return "empty"
    if len(head) >= 132 and head[128:132] == b"DICM":
        return "dicom"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head.startswith(b"MATLAB 5.0") or _looks_like_matlab_v4(head):
        return "matlab"
    if _looks_like_scp_ecg(head):
        return "scp-ecg"
    if head.startswith(b"0       ") and len(head) >= 256 and head[184:192].strip().isdigit():
        return "edf"
    if head.startswith(b"\xffBIOSEMI"):
        return "bdf"
    flavour = xml_flavour(head)  # GE MUSE, Philips, HL7 aECG or other XML, by root element
    if flavour is not None:
        return flavour  # type: ignore[return-value]
    if _looks_like_wfdb_header(head):
        return "wfdb-header"
    # A DICOM data set written without the 128-byte preamble starts with a group
    # 0002 or 0008 element tag, then (explicit VR) two upper-case letters.
    if head[:2] in _DICOM_TAG_GROUPS and len(head) >= 8 and (
            head[4:6].isalpha() and head[4:6].isupper() or head[2:4] in (b"\x00\x00", b"\x05\x00")):
        return "dicom"
    return "unknown"


def sniff(path: Path) -> Kind:
    """Format of the file at `path`, from its first 64 KiB (typed errors on OSError)."""
    return sniff_bytes(read_bytes(path, _HEAD_BYTES))


def _looks_like_wfdb_header(head: bytes) -> bool:
    if b"\x00" in head:
        return False
    try:
        text = head.decode("ascii")
    except UnicodeDecodeError:
        try:
            text = head.decode("utf-8")
        except UnicodeDecodeError:
            return False
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        return bool(_WFDB_RECORD_LINE.match(stripped.encode("ascii", "replace")))
    return False


def _looks_like_matlab_v4(head: bytes) -> bool:
    # MATLAB v4 matrix header: five little-endian int32 (type, rows, cols, imag, namelen),
    # as in PhysioNet/CinC .mat signal files. type 0-52 (MOPT), imag 0/1, namelen small.
    if len(head) < 20:
        return False
    mopt, rows, cols, imag, namelen = (int.from_bytes(head[i:i + 4], "little") for i in range(0, 20, 4))
    return mopt in (0, 10, 20, 30, 40, 50) and imag in (0, 1) and 0 < namelen < 64 and rows > 0 and cols > 0


def _looks_like_scp_ecg(head: bytes) -> bool:
    # SCP-ECG has no magic number: record CRC (2), length (4), then section 0's header:
    # CRC (2), id 0 (2), length (4), versions (2), reserved (6) = "SCPECG" from version 2.0.
    # Older writers leave the reserved bytes blank: then section 0's own CRC must match.
    if len(head) < 22 or head[8:10] != b"\x00\x00":
        return False
    if head[16:22] == b"SCPECG":
        return True
    length = int.from_bytes(head[10:14], "little")
    if not 16 + 10 <= length <= len(head) - 6 or int.from_bytes(head[2:6], "little") < 6 + length:
        return False
    import binascii
    return binascii.crc_hqx(head[8:6 + length], 0xFFFF) == int.from_bytes(head[6:8], "little")
