"""Readers: `read_ecg(path) -> EcgRecord` and `read_cxr(path) -> CxrImage`.

The format is recognised from the file's content (`engine.io.sniff`), not its
extension. ECG: WFDB records (give the .hea header, a signal file beside it, or
the record name without extension), DICOM waveforms, GE MUSE XML, Philips XML
(SierraECG / PhilipsECG) and HL7 aECG. Chest X-ray: DICOM
images, PNG and JPEG. Every failure raises a subclass of
`engine.errors.ReadError` whose message says what is wrong and what to do.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from engine.errors import CorruptFileError, UnsupportedFormatError
from engine.io.files import check_file
from engine.io.guard import corrupt_file_errors
from engine.io.sniff import sniff
from engine.records import CxrImage, EcgRecord

__all__ = ["read_ecg", "read_cxr"]

T = TypeVar("T")

_ECG_FORMATS = ("a WFDB record (.hea with its .dat/.mat files), a DICOM ECG waveform (.dcm), a GE MUSE, "
                "Philips or HL7 aECG XML file, an SCP-ECG file (.scp) or an EDF/BDF recording (.edf, .bdf)")
_CXR_FORMATS = "a DICOM image (.dcm), PNG or JPEG"


def read_ecg(path: str | os.PathLike, *, annotations: bool = True) -> EcgRecord:
    """Read a 12-lead ECG file.

    Args:
        path: a WFDB header (.hea), one of its signal files (.dat, .mat, ...), the
            record name without extension, or a DICOM waveform file.
        annotations: False skips what only a reader looks at, for batch scoring: a
            DICOM waveform's statements, measurements and median beats (`meta`), an XML
            file's median beats (its device measurements and statements are kept: they
            cost microseconds). The signal, leads and sampling rate are the same either way.

    Returns:
        EcgRecord: float32 `[n_leads, n_samples]` in mV, standard leads first in
        `engine.constants.LEADS` order (see `engine.records.EcgRecord`).

    Raises:
        MissingFileError, CorruptFileError, UnsupportedFormatError, LeadError,
        ReadError: with a message saying what to do.
    """
    return _guard(lambda p: _read_ecg(p, annotations), path, "ECG")


def read_cxr(path: str | os.PathLike) -> CxrImage:
    """Read a chest X-ray image (DICOM, PNG or JPEG).

    Returns:
        CxrImage: `pixels` float32 `[H, W]` in [0, 1], larger = brighter.

    Raises:
        MissingFileError, CorruptFileError, UnsupportedFormatError, ReadError.
    """
    return _guard(_read_cxr, path, "chest X-ray")


def _guard(reader: Callable[[str | os.PathLike], T], path: str | os.PathLike, what: str) -> T:
    """Run `reader(path)`; a non-engine exception becomes a CorruptFileError (safety net:
    the readers wrap third-party errors themselves, this catches what they missed)."""
    with corrupt_file_errors(
            path, lambda error: f"{path} could not be read as a {what} (unexpected {error}). The "
                                f"file is probably damaged; export it again.",
            f"{path} claims more data than this computer can hold; the {what} file is damaged.",
            log_level=logging.WARNING):
        try:
            return reader(path)
        except RecursionError as exc:
            raise CorruptFileError(f"{path} is nested too deeply to be a valid {what} file.") from exc


def _resolve(path: str | os.PathLike, what: str) -> Path:
    p = Path(os.fspath(path))
    if not p.exists() and p.suffix.lower() != ".hea" and Path(str(p) + ".hea").is_file():
        return Path(str(p) + ".hea")  # a WFDB record name given without extension
    return check_file(p, what)


def _sibling_header(p: Path) -> Path | None:
    candidate = p.with_suffix(".hea")
    if candidate != p and candidate.is_file() and sniff(candidate) == "wfdb-header":
        return candidate
    return None


def _read_ecg(path: str | os.PathLike, annotations: bool = True) -> EcgRecord:
    from engine.io.dicom_ecg import read_dicom_ecg
    from engine.io.wfdb_reader import read_wfdb

    p = _resolve(path, "ECG file")
    kind = sniff(p)
    if kind == "wfdb-header":
        return read_wfdb(p)
    if kind == "dicom":
        return read_dicom_ecg(p, annotations)
    if kind == "scp-ecg":
        from engine.io.scp_ecg import read_scp_ecg
        return read_scp_ecg(p, annotations)
    if kind in ("edf", "bdf"):
        from engine.io.edf import read_edf
        return read_edf(p, annotations)
    if kind in _XML_READERS:
        return _read_xml_ecg(kind, p, annotations)
    if kind == "xml":
        from engine.io.xml_common import refuse_unknown_xml

        raise refuse_unknown_xml(p, "GE MUSE RestingECG, Philips restingecgdata, HL7 AnnotatedECG")
    if kind in ("png", "jpeg"):
        raise UnsupportedFormatError(f"{p} is a {kind.upper()} picture, not an ECG recording. If it "
                                     f"is a chest X-ray image, open it as a chest X-ray.")
    header = _sibling_header(p)
    if header is not None:
        return read_wfdb(header)
    if kind == "empty":
        raise CorruptFileError(f"{p} is empty (0 bytes). Copy the ECG file again.")
    if kind == "matlab":
        raise UnsupportedFormatError(f"{p} is a MATLAB file without its WFDB header. Put the "
                                     f"matching .hea file beside it and open that.")
    raise UnsupportedFormatError(f"{p} is not an ECG format this program reads. Open "
                                 f"{_ECG_FORMATS}.")


#: sniff kind -> (module, reader function) of the XML ECG formats.
_XML_READERS: dict[str, tuple[str, str]] = {
    "muse-xml": ("engine.io.muse_xml", "read_muse_xml"),
    "philips-xml": ("engine.io.philips_xml", "read_philips_xml"),
    "hl7-aecg": ("engine.io.hl7_aecg", "read_hl7_aecg"),
}

_XML_NAMES = {"muse-xml": "GE MUSE XML", "philips-xml": "Philips XML", "hl7-aecg": "HL7 aECG"}


def _read_xml_ecg(kind: str, p: Path, annotations: bool) -> EcgRecord:
    """Read a GE MUSE / Philips / HL7 aECG XML file (`kind` from `sniff`)."""
    import importlib

    module, function = _XML_READERS[kind]
    return getattr(importlib.import_module(module), function)(p, annotations)


def _read_cxr(path: str | os.PathLike) -> CxrImage:
    from engine.io.cxr_dicom import read_dicom_cxr
    from engine.io.cxr_raster import read_raster_cxr

    p = _resolve(path, "chest X-ray file")
    kind = sniff(p)
    if kind == "dicom":
        return read_dicom_cxr(p)
    if kind in ("png", "jpeg"):
        return read_raster_cxr(p, kind)
    if kind == "empty":
        raise CorruptFileError(f"{p} is empty (0 bytes). Copy the image file again.")
    if kind == "wfdb-header" or _sibling_header(p) is not None:
        raise UnsupportedFormatError(f"{p} belongs to a WFDB ECG record, not an image. Open it "
                                     f"as an ECG.")
    if kind in _XML_READERS:
        raise UnsupportedFormatError(f"{p} is an ECG file ({_XML_NAMES[kind]}), not an image. Open it "
                                     f"as an ECG.")
    raise UnsupportedFormatError(f"{p} is not an image format this program reads. Open "
                                 f"{_CXR_FORMATS}.")
