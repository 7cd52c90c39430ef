"""Cut the top-level elements a signal-only DICOM read does not need out of the file's bytes,
before pydicom parses it.

pydicom's `specific_tags` skips an unwanted element of defined length with one seek, but it
parses an unwanted sequence of *undefined* length item by item, building a `Dataset` per
item, only to find where it ends. A waveform annotation sequence of a few hundred
elements (statements, measurements) thus costs more than the waveform itself: 3 of the
5 ms that pydicom takes on tests/data/ecg/dicom/pydicom_waveform_ecg.dcm.

`skim(raw, keep)` walks the top-level elements with `struct` only (no objects per element)
and returns the file without the unwanted ones that come before the first wanted
sequence of undefined length (usually WaveformSequence, which sorts after the annotation
sequence); from there on the bytes are passed through unchanged and `specific_tags` does
the rest. Element values are never interpreted, so what pydicom then reads of the kept
elements is byte for byte what it reads in the whole file.

Only Part-10 files in Implicit or Explicit VR Little Endian are skimmed (the transfer
syntaxes of DICOM waveforms); for anything else, or anything that does not walk cleanly
(a length past the end, an unexpected tag inside a sequence, nesting deeper than
MAX_DEPTH), `skim` returns None and the caller parses the original file, so a damaged file
gets pydicom's own error message.
"""

from __future__ import annotations

import struct

#: Transfer syntaxes whose data sets `skim` walks: Implicit VR LE and Explicit VR LE.
IMPLICIT_LE = "1.2.840.10008.1.2"
EXPLICIT_LE = "1.2.840.10008.1.2.1"

#: Deepest sequence nesting walked; deeper -> None (pydicom parses the file as usual).
MAX_DEPTH = 32

#: Explicit VRs whose length is a 4-byte field after 2 reserved bytes (PS3.5 7.1.2).
_LONG_VRS = frozenset({b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN",
                       b"UR", b"UT", b"UV"})
#: Every explicit VR (PS3.5 6.2).
_VRS = _LONG_VRS | frozenset({b"AE", b"AS", b"AT", b"CS", b"DA", b"DS", b"DT", b"FD", b"FL", b"IS",
                              b"LO", b"LT", b"PN", b"SH", b"SL", b"SS", b"ST", b"TM", b"UI", b"UL",
                              b"US"})
_UNDEFINED = 0xFFFFFFFF
_ITEM, _ITEM_END, _SEQ_END = 0xFFFEE000, 0xFFFEE00D, 0xFFFEE0DD
_TAG, _EXPLICIT, _U32 = struct.Struct("<HH"), struct.Struct("<HH2sH"), struct.Struct("<I")


class _Unwalkable(Exception):
    """The bytes do not walk as a well-formed data set of the assumed transfer syntax."""


def _tag(raw: bytes, pos: int) -> int:
    group, element = _TAG.unpack_from(raw, pos)  # struct.error past the end
    return group << 16 | element


def _header(raw: bytes, pos: int, explicit: bool) -> tuple[int, int, bool, int]:
    """(tag, value length or _UNDEFINED, value encoded as implicit VR, value start) of the
    element whose header starts at `pos` (struct.error when it runs past the end)."""
    group, element, vr, short_length = _EXPLICIT.unpack_from(raw, pos)
    tag = group << 16 | element
    if group == 0xFFFE or not explicit:  # items and delimiters have no VR in any syntax
        return tag, _U32.unpack_from(raw, pos + 4)[0], not explicit, pos + 8
    if vr in _LONG_VRS:
        return tag, _U32.unpack_from(raw, pos + 8)[0], vr == b"UN", pos + 12
    if vr not in _VRS:  # not a VR: the data set is not in the syntax its meta group says
        raise _Unwalkable
    return tag, short_length, False, pos + 8


def _value_end(raw: bytes, start: int, length: int) -> int:
    """Offset just after a value of defined `length` starting at `start`."""
    if start + length > len(raw):
        raise _Unwalkable
    return start + length


def _skip_element(raw: bytes, header: tuple[int, int, bool, int], explicit: bool, depth: int) -> int:
    """Offset just after the element whose `_header` is `header`."""
    _, length, implicit_value, start = header
    if length != _UNDEFINED:
        return _value_end(raw, start, length)
    # a sequence (or encapsulated OB/OW fragments) of undefined length; an undefined-length UN
    # holds an implicit VR sequence (PS3.5 6.2.2)
    return _skip_items(raw, start, explicit and not implicit_value, depth + 1)


def _skip_items(raw: bytes, pos: int, explicit: bool, depth: int) -> int:
    """Offset just after the sequence delimiter of the items starting at `pos`."""
    if depth > MAX_DEPTH:
        raise _Unwalkable
    while True:
        tag, length, _, start = _header(raw, pos, explicit)
        if tag == _SEQ_END:
            return start
        if tag != _ITEM:
            raise _Unwalkable
        if length != _UNDEFINED:
            pos = _value_end(raw, start, length)
            continue
        pos = start
        while _tag(raw, pos) != _ITEM_END:
            pos = _skip_element(raw, _header(raw, pos, explicit), explicit, depth)
        pos += 8


def _meta_end(raw: bytes) -> tuple[int, str]:
    """(offset of the data set, transfer syntax UID) of a Part-10 file."""
    if len(raw) < 132 or raw[128:132] != b"DICM":
        raise _Unwalkable
    pos, syntax = 132, None
    while pos + 8 <= len(raw) and _tag(raw, pos) >> 16 == 0x0002:  # always explicit VR LE
        tag, length, _, start = _header(raw, pos, True)
        if length == _UNDEFINED:
            raise _Unwalkable
        pos = _value_end(raw, start, length)
        if tag == 0x00020010:
            syntax = raw[start:pos].rstrip(b"\x00 ").decode("ascii", "replace")
    if syntax is None:
        raise _Unwalkable
    return pos, syntax


def skim(raw: bytes, keep: frozenset[int]) -> bytes | None:
    """`raw` (a whole DICOM file) without the top-level elements whose tags are not in `keep`,
    up to the first kept element of undefined length; the rest unchanged.

    Args:
        raw: the file's bytes (preamble, "DICM", file meta group, data set).
        keep: top-level tags (`group << 16 | element`) to keep.

    Returns:
        The reduced file's bytes, `raw` itself when nothing is cut, or None when the file is
        not Part 10 in Implicit / Explicit VR Little Endian or does not walk cleanly.
    """
    try:
        start, syntax = _meta_end(raw)
        if syntax not in (IMPLICIT_LE, EXPLICIT_LE):
            return None
        explicit = syntax == EXPLICIT_LE
        if not explicit and raw[start + 4:start + 6] in _VRS:
            return None  # explicit VR data under an implicit VR syntax: pydicom detects and reads it
        pieces, copied_to, pos = [], 0, start
        while pos < len(raw):
            header = _header(raw, pos, explicit)
            tag, length = header[:2]
            if tag in keep and length == _UNDEFINED:
                break  # pass the rest through; pydicom's specific_tags handles it
            end = _skip_element(raw, header, explicit, 0)
            if tag not in keep:
                pieces.append(raw[copied_to:pos])
                copied_to = end
            pos = end
    except (_Unwalkable, struct.error):
        return None
    if copied_to == 0:
        return raw
    pieces.append(raw[copied_to:])
    return b"".join(pieces)
