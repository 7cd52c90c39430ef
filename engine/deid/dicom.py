"""DICOM de-identification by the PS3.15 Basic Application Level Confidentiality Profile.

Reference: DICOM PS3.15 (Security and System Management Profiles), Annex E,
Table E.1-1 "Application Level Confidentiality Profile Attributes", column
"Basic Prof." with the "Retain Longitudinal Temporal Information With Modified
Dates Option" (dates are shifted rather than removed) and, when asked for, the
"Retain Patient Characteristics Option" (sex, age, size, weight kept).
ACTIONS below is the table's rows for the attributes ECG waveform and chest
X-ray files carry (where the table offers a choice such as X/Z/D we take the
strictest that keeps the file valid, X or Z). Action codes (PS3.15 E.1.1):

- X: remove; Z: replace with a zero-length value (a consistent per-patient
  pseudonym for Patient's Name and ID, a dummy value the profile allows);
- U: replace a UID by a new one, the same replacement everywhere in the export
  (`DeidKeys.uid`, keyed HMAC under root 2.25);
- C (Modified Dates Option): DA/DT values moved by the patient's keyed offset
  (whole days; times of day kept).

Beyond the listed rows, as the profile requires of attributes it does not list
individually: private attributes are removed; overlay/curve groups (50xx, 60xx)
removed; any other person name (PN) emptied; any other non-registry UID
replaced (U); any other date shifted (C). Sequences are processed recursively.
Then Patient Identity Removed (0012,0062) = YES, De-identification Method
(0012,0063) and its code sequence (0012,0064: DCM 113100, 113107 [, 113108]) and
Longitudinal Temporal Information Modified (0028,0303) = MODIFIED are set.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from engine.deid.keys import DeidKeys, shift_text
from engine.errors import DeidError
from engine.store.fields import patient_key

log = logging.getLogger(__name__)

#: Table E.1-1 (Basic Profile) rows for the attributes of ECG / CXR files: tag -> action.
ACTIONS: dict[int, str] = {
    0x00080014: "U",  # Instance Creator UID
    0x00080018: "U",  # SOP Instance UID
    0x00080012: "C",  # Instance Creation Date (X/D; kept shifted under the Modified Dates Option)
    0x00080020: "C",  # Study Date (Z)
    0x00080021: "C",  # Series Date (X/D)
    0x00080022: "C",  # Acquisition Date (X/Z)
    0x00080023: "C",  # Content Date (Z/D)
    0x0008002A: "C",  # Acquisition DateTime (X/D)
    0x00080050: "Z",  # Accession Number
    0x00080080: "X",  # Institution Name (X/Z/D)
    0x00080081: "X",  # Institution Address
    0x00080090: "Z",  # Referring Physician's Name
    0x00080092: "X",  # Referring Physician's Address
    0x00080094: "X",  # Referring Physician's Telephone Numbers
    0x00081010: "X",  # Station Name (X/Z/D)
    0x00081030: "X",  # Study Description
    0x0008103E: "X",  # Series Description
    0x00081040: "X",  # Institutional Department Name
    0x00081048: "X",  # Physician(s) of Record
    0x00081050: "X",  # Performing Physicians' Name
    0x00081060: "X",  # Name of Physician(s) Reading Study
    0x00081070: "X",  # Operators' Name (X/Z/D)
    0x00081080: "X",  # Admitting Diagnoses Description
    0x00081110: "X",  # Referenced Study Sequence (X/Z/U*)
    0x00081111: "X",  # Referenced Performed Procedure Step Sequence (X/Z/D)
    0x00081120: "X",  # Referenced Patient Sequence
    0x00081140: "X",  # Referenced Image Sequence (X/Z/U*)
    0x00082111: "X",  # Derivation Description
    0x00100010: "Z",  # Patient's Name
    0x00100020: "Z",  # Patient ID
    0x00100030: "Z",  # Patient's Birth Date
    0x00100032: "X",  # Patient's Birth Time
    0x00100040: "Z",  # Patient's Sex
    0x00101000: "X",  # Other Patient IDs
    0x00101001: "X",  # Other Patient Names
    0x00101002: "X",  # Other Patient IDs Sequence
    0x00101005: "X",  # Patient's Birth Name
    0x00101010: "X",  # Patient's Age
    0x00101020: "X",  # Patient's Size
    0x00101030: "X",  # Patient's Weight
    0x00101040: "X",  # Patient's Address
    0x00101060: "X",  # Patient's Mother's Birth Name
    0x00101090: "X",  # Medical Record Locator
    0x00102000: "X",  # Medical Alerts
    0x00102110: "X",  # Allergies
    0x00102150: "X",  # Country of Residence
    0x00102152: "X",  # Region of Residence
    0x00102154: "X",  # Patient's Telephone Numbers
    0x00102160: "X",  # Ethnic Group
    0x00102180: "X",  # Occupation
    0x001021A0: "X",  # Smoking Status
    0x001021B0: "X",  # Additional Patient History
    0x001021C0: "X",  # Pregnancy Status
    0x001021F0: "X",  # Patient's Religious Preference
    0x00104000: "X",  # Patient Comments
    0x00181000: "X",  # Device Serial Number (X/Z/D)
    0x00181002: "U",  # Device UID
    0x00181030: "X",  # Protocol Name (X/D)
    0x0020000D: "U",  # Study Instance UID
    0x0020000E: "U",  # Series Instance UID
    0x00200010: "Z",  # Study ID
    0x00200052: "U",  # Frame of Reference UID
    0x00200200: "U",  # Synchronization Frame of Reference UID
    0x00204000: "X",  # Image Comments
    0x00321030: "X",  # Reason for Study
    0x00321032: "X",  # Requesting Physician
    0x00321033: "X",  # Requesting Service
    0x00321060: "X",  # Requested Procedure Description (X/Z)
    0x00324000: "X",  # Study Comments
    0x00380010: "X",  # Admission ID
    0x00380300: "X",  # Current Patient Location
    0x00380400: "X",  # Patient's Institution Residence
    0x00380500: "X",  # Patient State
    0x00384000: "X",  # Visit Comments
    0x00400244: "X",  # Performed Procedure Step Start Date
    0x00400245: "X",  # Performed Procedure Step Start Time
    0x00400253: "X",  # Performed Procedure Step ID
    0x00400254: "X",  # Performed Procedure Step Description
    0x00400275: "X",  # Request Attributes Sequence
    0x00400555: "X",  # Acquisition Context Sequence
    0x00401001: "X",  # Requested Procedure ID
    0x00401002: "X",  # Reason for the Requested Procedure
    0x00402016: "Z",  # Placer Order Number / Imaging Service Request
    0x00402017: "Z",  # Filler Order Number / Imaging Service Request
    0x0040A124: "U",  # UID
    0x0040A730: "X",  # Content Sequence
    0x00880140: "U",  # Storage Media File-set UID
}
#: Kept under the Retain Patient Characteristics Option.
CHARACTERISTICS = {0x00100040, 0x00101010, 0x00101020, 0x00101030}
_METHOD_CODES = (("113100", "Basic Application Confidentiality Profile"),
                 ("113107", "Retain Longitudinal Temporal Information Modified Dates Option"),
                 ("113108", "Retain Patient Characteristics Option"))


def _registry_uid(value: str) -> bool:
    """Whether `value` is a UID of the DICOM registry (SOP class, transfer syntax, ...)."""
    from pydicom.uid import UID

    return UID(value).name != value or value.startswith("1.2.840.10008.")


def _shift_da(value: str, days: int) -> str:
    return shift_text(value[:8], "%Y%m%d", days) or ""


def _shift_dt(value: str, days: int) -> str:
    if len(value) < 8:
        return ""
    head = shift_text(value[:8], "%Y%m%d", days)
    return (head + value[8:]) if head else ""


def _multi(value: Any, fn) -> Any:
    from pydicom.multival import MultiValue

    if isinstance(value, (list, MultiValue)):
        return [fn(str(v)) for v in value]
    return fn(str(value)) if value not in (None, "") else value


class _Run:
    def __init__(self, keys: DeidKeys, days: int, pseudonym: str, keep_characteristics: bool) -> None:
        self.keys, self.days, self.pseudonym = keys, days, pseudonym
        self.keep = keep_characteristics
        self.changes: dict[str, str] = {}  # keyword or tag -> action done

    def note(self, elem, action: str) -> None:
        self.changes[elem.keyword or str(elem.tag)] = action

    def dataset(self, ds) -> None:
        for elem in list(ds):
            tag = int(elem.tag)
            group = tag >> 16
            if elem.tag.is_private:
                del ds[elem.tag]
                self.changes["private attributes"] = "X"
                continue
            if 0x5000 <= group <= 0x50FF or 0x6000 <= group <= 0x60FF:
                del ds[elem.tag]
                self.note(elem, "X")
                continue
            action = ACTIONS.get(tag)
            if action and self.keep and tag in CHARACTERISTICS:
                continue
            if action == "X":
                del ds[elem.tag]
                self.note(elem, "X")
            elif action == "Z":
                if tag in (0x00100010, 0x00100020):
                    elem.value = self.pseudonym
                    self.note(elem, "Z (pseudonym)")
                elif elem.VR == "SQ":
                    elem.value = []
                    self.note(elem, "Z")
                else:
                    elem.value = ""
                    self.note(elem, "Z")
            elif action == "U" or (elem.VR == "UI" and elem.value and not action):
                if action == "U" or not all(_registry_uid(str(v)) for v in _as_list(elem.value)):
                    elem.value = _multi(elem.value, self.keys.uid)
                    self.note(elem, "U")
            elif elem.VR == "SQ":
                for item in elem.value:
                    self.dataset(item)
            elif elem.VR == "PN" and elem.value:
                elem.value = ""
                self.note(elem, "Z")
            elif elem.VR == "DA" and elem.value:
                elem.value = _multi(elem.value, lambda v: _shift_da(v, self.days))
                self.note(elem, "C (date shifted)")
            elif elem.VR == "DT" and elem.value:
                elem.value = _multi(elem.value, lambda v: _shift_dt(v, self.days))
                self.note(elem, "C (date shifted)")


def _as_list(value: Any) -> list:
    from pydicom.multival import MultiValue

    return list(value) if isinstance(value, (list, MultiValue)) else [value]


def dicom_patient(ds) -> str | None:
    """The patient key of a dataset (`engine.store.fields.patient_key`)."""
    return patient_key({"patient_id": str(ds.get("PatientID", "") or ""),
                        "patient_name": str(ds.get("PatientName", "") or ""),
                        "birth_date": str(ds.get("PatientBirthDate", "") or "")})


def deid_dicom(src: Path, dst: Path, keys: DeidKeys, fallback_patient: str, *,
               keep_characteristics: bool = False) -> dict[str, Any]:
    """Write a de-identified copy of the DICOM file `src` to `dst`.

    Args:
        fallback_patient: the patient key to use when the file names no patient (its own
            content hash: a date offset of its own).

    Returns:
        {"patient_pseudonym", "changes": {attribute: action}} for the report.

    Raises:
        DeidError: not a DICOM file.
    """
    import pydicom
    from pydicom.dataset import Dataset
    from pydicom.errors import InvalidDicomError

    try:
        ds = pydicom.dcmread(src)
    except (InvalidDicomError, OSError, ValueError, EOFError) as exc:
        raise DeidError(f"{src} could not be read as DICOM ({exc}); it was not exported.") from exc
    pkey = dicom_patient(ds) or fallback_patient
    run = _Run(keys, keys.offset_days(pkey), keys.pseudonym(pkey), keep_characteristics)
    run.dataset(ds)
    meta = ds.file_meta
    if "MediaStorageSOPInstanceUID" in meta:
        meta.MediaStorageSOPInstanceUID = ds.get("SOPInstanceUID") or keys.uid(str(meta.MediaStorageSOPInstanceUID))
    meta.pop(0x00020016, None)  # Source Application Entity Title: names the sending station
    ds.PatientIdentityRemoved = "YES"
    codes = _METHOD_CODES if keep_characteristics else _METHOD_CODES[:2]
    ds.DeidentificationMethod = [m for _, m in codes]  # LO, one value per option (each <= 64 chars)
    seq = []
    for value, meaning in codes:
        item = Dataset()
        item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = value, "DCM", meaning
        seq.append(item)
    ds.DeidentificationMethodCodeSequence = seq
    ds.LongitudinalTemporalInformationModified = "MODIFIED"
    try:
        ds.save_as(dst, enforce_file_format=True)
    except OSError as exc:
        raise DeidError(f"Cannot write {dst} ({exc.strerror}).") from exc
    return {"patient_pseudonym": run.pseudonym, "changes": dict(sorted(run.changes.items()))}
