"""Open a DICOM file with pydicom and say what kind of object it holds.

Shared by the DICOM ECG and chest X-ray readers so that each can refuse the
other's files with a message that says where to open them instead.
"""

from __future__ import annotations

import io
import os
import zlib
from functools import lru_cache
from pathlib import Path
from typing import Literal

from engine.errors import CorruptFileError, ReadError, UnsupportedFormatError
from engine.io.dicom_skim import skim
from engine.io.guard import corrupt_file_errors
from engine.io.limits import INFLATED_MAX_BYTES

DicomKind = Literal["waveform", "image", "pdf", "other"]

#: SOP classes holding waveforms (PS3.4 B.5), prefix match.
_WAVEFORM_PREFIX = "1.2.840.10008.5.1.4.1.1.9."
#: Encapsulated PDF (often a printed ECG exported by an ECG management system).
_ENCAPSULATED_PDF = "1.2.840.10008.5.1.4.1.1.104.1"

#: Largest file (bytes) whose unwanted elements `open_dicom` cuts out in memory before
#: parsing (`engine.io.dicom_skim`); a larger one is parsed from disk with `specific_tags`.
SKIM_MAX_BYTES = 32 * 1024 * 1024
#: Deflated Explicit VR Little Endian: pydicom inflates the whole data set in one call.
_DEFLATED_UID = b"1.2.840.10008.1.2.1.99"
#: Bytes searched for the deflated transfer syntax UID (the file meta group comes first).
_META_HEAD_BYTES = 4096


@lru_cache(maxsize=8)
def _tags(keywords: tuple[str, ...]) -> frozenset[int]:
    from pydicom.datadict import tag_for_keyword

    return frozenset(t for k in keywords if (t := tag_for_keyword(k)) is not None)


def _source(path: Path, keywords: tuple[str, ...] | None):
    """What pydicom reads: for a file of at most SKIM_MAX_BYTES its bytes in memory (for a
    partial read without the top-level elements outside `keywords`: `dicom_skim.skim`),
    else `path`."""
    with open(path, "rb") as fh:
        if os.fstat(fh.fileno()).st_size > SKIM_MAX_BYTES:
            return path
        raw = fh.read(SKIM_MAX_BYTES + 1)  # + 1: a file that grew since fstat is left to pydicom
    if len(raw) > SKIM_MAX_BYTES:
        return path
    skimmed = skim(raw, _tags(keywords)) if keywords is not None else None
    # from memory: an element claiming more bytes than the file has costs only what the file
    # has (from disk, Python allocates the claimed length first: 4 GB for a damaged length)
    return io.BytesIO(raw if skimmed is None else skimmed)


def check_inflated_size(path: Path, limit: int = INFLATED_MAX_BYTES) -> None:
    """Refuse a deflated DICOM whose data set inflates to more than `limit` bytes, before
    pydicom inflates it whole (`zlib.decompress` in one call: a 3 MB file inflated to 7.8 GB).
    The stream is inflated in 1 MiB pieces that are counted and dropped, so this costs at most
    `limit` bytes of inflating and 1 MiB of memory; files of another transfer syntax cost one
    4 KiB read.

    Raises:
        CorruptFileError: the data set inflates to more than `limit` bytes (the message names
            the limit), or the file meta group cannot be read."""
    from pydicom.filereader import _read_file_meta_info, read_preamble

    with open(path, "rb") as fh:
        if _DEFLATED_UID not in fh.read(_META_HEAD_BYTES):
            return
        fh.seek(0)
        read_preamble(fh, True)
        meta = _read_file_meta_info(fh)  # leaves fh at the data set
        if str(meta.get("TransferSyntaxUID", "")).encode("ascii", "replace") != _DEFLATED_UID:
            return  # the UID's text was somewhere else in the head
        inflater = zlib.decompressobj(-zlib.MAX_WBITS)
        total = 0
        while not inflater.eof and (chunk := fh.read(1 << 16)):
            while chunk and not inflater.eof:
                total += len(inflater.decompress(chunk, 1 << 20))
                chunk = inflater.unconsumed_tail
                if total > limit:
                    raise CorruptFileError(
                        f"The DICOM file {path} is deflated and inflates to more than "
                        f"{limit // 2**20} MiB, more than this program reads; it is damaged or "
                        f"not an ECG or chest X-ray. Export it again without deflate compression.")


def open_dicom(path: Path, what: str, keywords: tuple[str, ...] | None = None):
    """Parse `path` with pydicom (`pydicom.Dataset`); typed errors only.

    A deflated file is refused before it is inflated when it would inflate to more than
    `engine.io.limits.INFLATED_MAX_BYTES` (`check_inflated_size`).

    `keywords`: parse only these top-level elements (the others are cut out of the bytes
    first where `engine.io.dicom_skim` can, else pydicom skips them without decoding
    them); None: all.

    Raises:
        CorruptFileError: pydicom cannot parse the file.
        ReadError: the file cannot be read.
    """
    import pydicom
    from pydicom.errors import InvalidDicomError

    with corrupt_file_errors(
            path, lambda error: f"The DICOM file {path} is damaged and cannot be parsed ({error}). "
                                f"Export the {what} again.",
            f"The DICOM file {path} claims more data than can be read; it is damaged."):
        try:
            check_inflated_size(path)
            if keywords is None:
                return pydicom.dcmread(_source(path, None), force=True)
            return pydicom.dcmread(_source(path, keywords), force=True, specific_tags=list(keywords))
        except InvalidDicomError as exc:
            raise UnsupportedFormatError(f"{path} is not a DICOM file ({exc}). Open a DICOM {what}.") from exc
        except PermissionError as exc:
            raise ReadError(f"You are not allowed to read {path}. Ask for read permission.") from exc


def dicom_kind(ds) -> DicomKind:
    """What a parsed DICOM data set holds: a waveform, an image, a PDF or other."""
    try:
        sop = str(ds.get("SOPClassUID", "") or "")
    except Exception:  # a damaged value (e.g. a corrupted VR): judge by the elements present
        sop = ""
    if sop.startswith(_WAVEFORM_PREFIX) or "WaveformSequence" in ds:
        return "waveform"
    if sop == _ENCAPSULATED_PDF or "EncapsulatedDocument" in ds:
        return "pdf"
    if "PixelData" in ds or "FloatPixelData" in ds or "DoubleFloatPixelData" in ds:
        return "image"
    return "other"


def text_value(ds, keyword: str) -> str | None:
    """Stripped text of an element of `ds` (a data set or sequence item); None when absent or blank."""
    value = ds.get(keyword, None)
    text = str(value).strip() if value is not None else ""
    return text or None


def text_fields(ds, fields: tuple[tuple[str, str], ...]) -> dict[str, str]:
    """{key: text} for the (key, DICOM keyword) pairs of `fields` whose element has text, in order."""
    return {key: text for key, keyword in fields if (text := text_value(ds, keyword))}


def element_text(ds, keyword: str, default: str = "?") -> str:
    """Text of a top-level element for a message; `default` when absent or damaged."""
    try:
        value = ds.get(keyword, None)
        return default if value is None else str(value)
    except Exception:  # a damaged value must not hide the real message
        return default


def sop_class_name(ds) -> str:
    """Human name of the data set's SOP class, e.g. "12-lead ECG Waveform Storage"."""
    try:
        sop = ds.get("SOPClassUID", None)
        return str(sop.name) if sop is not None else "unknown kind"
    except Exception:  # a damaged UID value
        return "unknown kind"
