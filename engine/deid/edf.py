"""EDF / EDF+ / BDF de-identification: the header's patient and recording fields.

The fixed 256-byte header (EDF spec, https://www.edfplus.info/specs/edf.html)
holds "local patient identification" (bytes 8-88), "local recording
identification" (88-168) and the start date dd.mm.yy (168-176). EDF+ structures
the first two (https://www.edfplus.info/specs/edfplus.html 2.1.3): patient
"code sex birthdate name ...", recording "Startdate dd-MMM-yyyy admincode
technician equipment ...". The copy writes patient "X X X X" (or "X <sex> X X"
with keep_characteristics; "X" is EDF+'s "unknown"), recording "Startdate
<shifted date> X X <equipment>" for EDF+ (else "X"), and moves the start date by
the patient's keyed offset (clipped to 1985..2084, EDF's two-digit year window).
The signal records (and any EDF+ annotation signal, which is not identifying by
itself here: text annotations are kept) are copied byte for byte.
"""

from __future__ import annotations

import shutil
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from engine.deid.keys import DeidKeys
from engine.errors import DeidError


def _field(raw: bytes, start: int, stop: int) -> str:
    return raw[start:stop].decode("latin-1").strip()


def _put(header: bytearray, start: int, stop: int, text: str) -> None:
    data = text.encode("latin-1", "replace")[: stop - start]
    header[start:stop] = data + b" " * (stop - start - len(data))


def edf_patient(path: Path) -> str | None:
    """The patient key of an EDF file (its patient field), or None when anonymous."""
    with open(path, "rb") as fh:
        raw = fh.read(256)
    patient = _field(raw, 8, 88)
    parts = patient.split()
    code = parts[0] if parts else ""
    if code and code.upper() != "X":
        return f"edf:{code.upper()}"
    name = " ".join(p for p in parts[3:] if p.upper() != "X")
    return f"edf-name:{name.upper()}" if name else None


def deid_edf(src: Path, dst: Path, keys: DeidKeys, pkey: str, *,
             keep_characteristics: bool = False) -> dict[str, Any]:
    """Write a de-identified copy of an EDF/BDF file.

    Raises:
        DeidError: not an EDF/BDF file, or it cannot be written.
    """
    try:
        with open(src, "rb") as fh:
            raw = fh.read(256)
    except OSError as exc:
        raise DeidError(f"{src} cannot be read ({exc.strerror}).") from exc
    if len(raw) < 256 or raw[:8] not in (b"0       ", b"\xffBIOSEMI"):
        raise DeidError(f"{src} is not an EDF/BDF file (its header does not start like one).")
    header = bytearray(raw)
    plus = _field(raw, 192, 236).upper().startswith("EDF+") or _field(raw, 192, 236).upper().startswith("BDF+")
    patient = _field(raw, 8, 88).split()
    recording = _field(raw, 88, 168).split()
    days = keys.offset_days(pkey)
    changes: dict[str, str] = {}
    sex = patient[1] if keep_characteristics and plus and len(patient) > 1 and patient[1] in ("M", "F") else "X"
    _put(header, 8, 88, f"X {sex} X X" if plus else "X")
    changes["local patient identification"] = "replaced"
    try:
        start = datetime.strptime(_field(raw, 168, 176), "%d.%m.%y")
        shifted = start + timedelta(days=days)
        if not 1985 <= shifted.year <= 2084:
            shifted = shifted.replace(year=1985 if shifted.year < 1985 else 2084)
        _put(header, 168, 176, shifted.strftime("%d.%m.%y"))
        changes["startdate"] = "date shifted"
    except ValueError:
        shifted = None
        _put(header, 168, 176, "01.01.85")
        changes["startdate"] = "replaced (unreadable)"
    if plus:
        equipment = recording[4] if len(recording) > 4 else "X"
        date_text = shifted.strftime("%d-%b-%Y").upper() if shifted else "X"
        _put(header, 88, 168, f"Startdate {date_text} X X {equipment}")
    else:
        _put(header, 88, 168, "X")
    changes["local recording identification"] = "replaced"
    try:
        shutil.copyfile(src, dst)
        with open(dst, "r+b") as fh:
            fh.write(bytes(header))
    except OSError as exc:
        raise DeidError(f"Cannot write {dst} ({exc.strerror}).") from exc
    return {"patient_pseudonym": keys.pseudonym(pkey), "changes": changes}
