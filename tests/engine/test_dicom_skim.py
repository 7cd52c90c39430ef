"""Signal-only DICOM reads cut unwanted top-level elements out of the bytes before pydicom
parses them (engine.io.dicom_skim): the record read is unchanged, the cut is exactly the
unwanted elements, and anything the walker does not understand falls back to pydicom."""

from __future__ import annotations

import io
import struct
from pathlib import Path

import numpy as np
import pydicom
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import engine.io.dicom_common as dicom_common
from engine.errors import CromotexError
from engine.io import read_ecg
from engine.io.dicom_ecg import SIGNAL_ONLY_KEYWORDS
from engine.io.dicom_skim import EXPLICIT_LE, IMPLICIT_LE, MAX_DEPTH, skim

DCM = Path(__file__).resolve().parents[1] / "data" / "ecg" / "dicom" / "pydicom_waveform_ecg.dcm"
KEEP = dicom_common._tags(SIGNAL_ONLY_KEYWORDS)


# ------------------------------------------------------------------ hand-made files
def _tag(group: int, element: int) -> bytes:
    return struct.pack("<HH", group, element)


def _explicit(group: int, element: int, vr: bytes, value: bytes | None, undefined: bool = False) -> bytes:
    """One explicit VR LE element; `undefined`: length 0xFFFFFFFF and `value` holds the items
    and the sequence delimiter."""
    length = 0xFFFFFFFF if undefined else len(value)
    if vr in (b"OB", b"OW", b"SQ", b"UN", b"UT"):
        return _tag(group, element) + vr + b"\0\0" + struct.pack("<I", length) + value
    return _tag(group, element) + vr + struct.pack("<H", length) + value


def _implicit(group: int, element: int, value: bytes, undefined: bool = False) -> bytes:
    return _tag(group, element) + struct.pack("<I", 0xFFFFFFFF if undefined else len(value)) + value


def _item(content: bytes, undefined: bool = True) -> bytes:
    if undefined:
        return _tag(0xFFFE, 0xE000) + struct.pack("<I", 0xFFFFFFFF) + content + \
            _tag(0xFFFE, 0xE00D) + b"\0\0\0\0"
    return _tag(0xFFFE, 0xE000) + struct.pack("<I", len(content)) + content


SEQ_END = _tag(0xFFFE, 0xE0DD) + b"\0\0\0\0"


def _part10(syntax: str, dataset: bytes) -> bytes:
    uid = syntax.encode() + (b"\0" if len(syntax) % 2 else b"")
    return b"\0" * 128 + b"DICM" + _explicit(0x0002, 0x0010, b"UI", uid) + dataset


def _keep(*tags: tuple[int, int]) -> frozenset[int]:
    return frozenset(g << 16 | e for g, e in tags)


def test_cuts_exactly_the_unwanted_elements_of_a_hand_made_explicit_file():
    wanted = _explicit(0x0008, 0x0016, b"UI", b"1.2.3\0")
    nested = _explicit(0x0040, 0xA043, b"SQ", _item(_explicit(0x0008, 0x0100, b"SH", b"AB")) + SEQ_END,
                       undefined=True)
    unwanted_sq = _explicit(0x0040, 0xB020, b"SQ",
                            _item(nested + _explicit(0x0040, 0xA30A, b"DS", b"12"))
                            + _item(_explicit(0x0008, 0x0104, b"LO", b"note"), undefined=False)
                            + SEQ_END, undefined=True)
    unwanted_un = _explicit(0x0041, 0x1010, b"UN",  # undefined-length UN: implicit VR inside
                            _item(_implicit(0x0041, 0x1011, b"xy")) + SEQ_END, undefined=True)
    unwanted_plain = _explicit(0x0010, 0x0030, b"DA", b"19700101")
    later = _explicit(0x5400, 0x0100, b"SQ", _item(_explicit(0x003A, 0x0005, b"US", b"\x0c\0")) + SEQ_END,
                      undefined=True)
    after = _explicit(0x7001, 0x1131, b"CS", b"XX")  # after the first kept undefined-length element
    raw = _part10(EXPLICIT_LE, wanted + unwanted_plain + unwanted_sq + unwanted_un + later + after)
    out = skim(raw, _keep((0x0008, 0x0016), (0x5400, 0x0100)))
    assert out == _part10(EXPLICIT_LE, wanted + later + after)


def test_walks_implicit_vr_files_and_defined_length_sequences():
    wanted = _implicit(0x0008, 0x0060, b"ECG\0")
    unwanted = _implicit(0x0040, 0xB020, _item(_implicit(0x0040, 0xA30A, b"12")) + SEQ_END, undefined=True)
    defined = _implicit(0x0040, 0x0555, _item(_implicit(0x0008, 0x0100, b"AB"), undefined=False))
    raw = _part10(IMPLICIT_LE, defined + wanted + unwanted)
    assert skim(raw, _keep((0x0008, 0x0060))) == _part10(IMPLICIT_LE, wanted)


def test_nothing_to_cut_returns_the_same_bytes():
    raw = _part10(EXPLICIT_LE, _explicit(0x0008, 0x0016, b"UI", b"1.2.3\0"))
    assert skim(raw, _keep((0x0008, 0x0016))) is raw


@pytest.mark.parametrize("raw", [
    b"",  # empty
    b"\0" * 128 + b"NOPE" + b"\0" * 64,  # not Part 10
    _part10("1.2.840.10008.1.2.2", _explicit(0x0008, 0x0016, b"UI", b"1.2\0")),  # big endian
    _part10(EXPLICIT_LE, _explicit(0x0040, 0xB020, b"SQ", _item(b""), undefined=True)),  # no delimiter
    _part10(EXPLICIT_LE, _explicit(0x0040, 0xB020, b"SQ", _tag(0x0008, 0x0016) + b"\0" * 8,
                                   undefined=True)),  # not an item inside a sequence
    _part10(EXPLICIT_LE, _explicit(0x0008, 0x0016, b"UI", b"1.2\0")[:-2]),  # value past the end
    _part10(EXPLICIT_LE, _tag(0x0008, 0x0016) + b"\x01\x02" + b"\x04\0" + b"1.2\0"),  # not a VR
    _part10(IMPLICIT_LE, _explicit(0x0008, 0x0016, b"UI", b"1.2\0")),  # explicit data, implicit syntax
])
def test_what_does_not_walk_is_left_to_pydicom(raw):
    assert skim(raw, KEEP) is None


def test_nesting_deeper_than_the_limit_is_left_to_pydicom():
    inner = _explicit(0x0008, 0x0100, b"SH", b"AB")
    for _ in range(MAX_DEPTH + 2):
        inner = _explicit(0x0040, 0xA043, b"SQ", _item(inner) + SEQ_END, undefined=True)
    assert skim(_part10(EXPLICIT_LE, inner), KEEP) is None
    shallow = _explicit(0x0040, 0xA043, b"SQ", _item(_explicit(0x0008, 0x0100, b"SH", b"AB")) + SEQ_END,
                        undefined=True)
    assert skim(_part10(EXPLICIT_LE, shallow), KEEP) == _part10(EXPLICIT_LE, b"")


# ------------------------------------------------------------------ the real sample
def _read_unskimmed(path: Path, monkeypatch):
    with monkeypatch.context() as m:
        m.setattr(dicom_common, "SKIM_MAX_BYTES", -1)  # every file "too large": pydicom reads the path
        return read_ecg(path, annotations=False)


def _same_record(a, b) -> None:
    assert np.array_equal(a.signal, b.signal) and a.signal.dtype == b.signal.dtype
    assert (a.fs, a.leads, a.meta) == (b.fs, b.leads, b.meta)


def test_real_sample_loses_its_annotation_sequence_and_nothing_else():
    raw = DCM.read_bytes()
    out = skim(raw, KEEP)
    full, cut = pydicom.dcmread(io.BytesIO(raw)), pydicom.dcmread(io.BytesIO(out))
    assert "WaveformAnnotationSequence" in full and "WaveformAnnotationSequence" not in cut
    assert "AcquisitionContextSequence" not in cut and "StationName" not in cut
    for keyword in SIGNAL_ONLY_KEYWORDS:  # every wanted element present in the file is kept, equal
        assert (keyword in cut) == (keyword in full)
        if keyword in full:
            assert cut[keyword] == full[keyword], keyword
    assert len(out) < len(raw) - 10_000  # the annotation sequence is ~14 kB of this file


def test_signal_only_read_of_the_real_sample_is_unchanged(monkeypatch):
    skimmed = read_ecg(DCM, annotations=False)
    _same_record(skimmed, _read_unskimmed(DCM, monkeypatch))
    full = read_ecg(DCM)  # the app's read: never skimmed, same signal
    assert np.array_equal(full.signal, skimmed.signal) and full.meta["statements"]


def test_real_sample_saved_as_implicit_vr_reads_the_same(tmp_path, monkeypatch):
    ds = pydicom.dcmread(DCM)
    ds.file_meta.TransferSyntaxUID = IMPLICIT_LE
    path = tmp_path / "implicit.dcm"
    ds.save_as(path, implicit_vr=True, little_endian=True, enforce_file_format=True)
    assert len(skim(path.read_bytes(), KEEP)) < path.stat().st_size - 10_000
    _same_record(read_ecg(path, annotations=False), _read_unskimmed(path, monkeypatch))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture],
          derandomize=True)
@given(st.data())
def test_skimming_a_damaged_file_never_changes_what_is_read(tmp_path, monkeypatch, data):
    """Bit flips, truncation and spliced bytes anywhere in the real sample: when the skimmed
    read gives a record, the unskimmed read gives the same one, or fails where pydicom parses
    the unwanted elements that the skim cut out; when the skimmed read fails, so does the other."""
    buf = bytearray(DCM.read_bytes())
    kind = data.draw(st.sampled_from(["flip", "truncate", "splice"]))
    if kind == "flip":
        for _ in range(data.draw(st.integers(1, 4))):
            pos = data.draw(st.integers(132, len(buf) - 1))
            buf[pos] ^= 1 << data.draw(st.integers(0, 7))
    elif kind == "truncate":
        del buf[data.draw(st.integers(132, len(buf) - 1)):]
    else:
        pos = data.draw(st.integers(132, len(buf) - 1))
        chunk = data.draw(st.binary(min_size=1, max_size=32))
        buf[pos:pos + len(chunk)] = chunk
    path = tmp_path / "damaged.dcm"
    path.write_bytes(bytes(buf))
    try:
        skimmed = read_ecg(path, annotations=False)
    except CromotexError:
        skimmed = None
    try:
        plain = _read_unskimmed(path, monkeypatch)
    except CromotexError:
        plain = None
    if skimmed is None:
        assert plain is None
    elif plain is not None:
        _same_record(skimmed, plain)
