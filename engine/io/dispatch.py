"""`read_any(path)`: read a file that may be an ECG or a chest X-ray, recognising it once.

For a file dropped on the review window, whose kind the user did not say. The
result is the one of trying `read_ecg` first and `read_cxr` when the ECG reader
refuses the file as unsupported (the same record or image, and the same typed
errors with the same messages: when both readers refuse a file, the ECG
reader's refusal), but the file is sniffed once and a DICOM file is parsed once.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Literal

from engine.errors import UnsupportedFormatError
from engine.io import _XML_READERS, _guard, _read_xml_ecg, _resolve, read_ecg
from engine.io.cxr_dicom import decode_dicom_cxr
from engine.io.dicom_common import dicom_kind, open_dicom
from engine.io.dicom_ecg import decode_dicom_ecg
from engine.io.sniff import sniff
from engine.records import CxrImage, EcgRecord

__all__ = ["read_any"]

#: What `read_any` found: an ECG record or a chest X-ray image.
Modality = Literal["ecg", "cxr"]


def read_any(path: str | os.PathLike) -> tuple[Modality, EcgRecord | CxrImage]:
    """Read an ECG (WFDB, DICOM waveform, MUSE / Philips / HL7 aECG XML) or a chest X-ray (DICOM image, PNG, JPEG).

    Args:
        path: any file `read_ecg` or `read_cxr` accepts (a WFDB header, one of its
            signal files, the record name without extension, a DICOM, PNG or JPEG file).

    Returns:
        ("ecg", EcgRecord) with `signal` float32 `[n_leads, n_samples]` in mV, or
        ("cxr", CxrImage) with `pixels` float32 `[H, W]` in [0, 1]: exactly what
        `read_ecg(path)` / `read_cxr(path)` return.

    Raises:
        MissingFileError, CorruptFileError, UnsupportedFormatError, LeadError,
        ReadError: those of `read_ecg`, or of `read_cxr` for a file it reads as an image.
    """
    return _guard(_read_any, path, "ECG")


def _read_any(path: str | os.PathLike) -> tuple[Modality, EcgRecord | CxrImage]:
    from engine.io.cxr_raster import read_raster_cxr
    from engine.io.wfdb_reader import read_wfdb

    p = _resolve(path, "ECG file")
    kind = sniff(p)
    if kind == "dicom":
        return _read_dicom(p)
    if kind in ("png", "jpeg"):
        return "cxr", _read_image(lambda q: read_raster_cxr(q, kind), p)
    if kind == "wfdb-header":
        return "ecg", read_wfdb(p)
    if kind in _XML_READERS:  # GE MUSE, Philips, HL7 aECG XML: always an ECG
        return "ecg", _read_xml_ecg(kind, p, True)
    # a WFDB signal file beside its header, or a file the ECG reader refuses with its message
    return "ecg", read_ecg(p)


def _read_dicom(p: Path) -> tuple[Modality, EcgRecord | CxrImage]:
    """Parse `p` once (all elements, as both DICOM readers do) and decode what it holds."""
    ds = open_dicom(p, "ECG")
    kind = dicom_kind(ds)
    if kind == "waveform":
        return "ecg", decode_dicom_ecg(ds, p)
    if kind == "image":
        return "cxr", _read_image(lambda q: decode_dicom_cxr(ds, q), p)
    # a PDF or another object: the ECG reader's refusal (it parses again, on this error path only)
    return "ecg", read_ecg(p)


def _read_image(read: Callable[[Path], CxrImage], p: Path) -> CxrImage:
    """`read(p)` under `read_cxr`'s safety net. When it refuses the file as unsupported, the
    ECG reader's refusal is raised instead, as when the ECG reader was tried first."""
    try:
        return _guard(read, p, "chest X-ray")
    except UnsupportedFormatError:
        read_ecg(p)  # refuses an image: its UnsupportedFormatError replaces the chest X-ray's
        raise
