"""Do an ECG and a chest X-ray belong to the same patient? Compare what both files say.

`compare_patients(ecg_meta, cxr_meta)` reads the identity fields the readers put in
`EcgRecord.meta` / `CxrImage.meta` (engine/io/dicom_ecg_meta.py, engine/io/cxr_dicom.py,
engine/io/wfdb_meta.py, engine/io/demographics.py):

- "patient_id": DICOM PatientID (compared stripped, case-insensitive);
- "patient_name": DICOM PN text `Family^Given^Middle^Prefix^Suffix` (compared as the set of
  lower-case words, so "DOE^JOHN", "Doe^John" and "Doe ^ John" agree, and a middle name
  present in one file only does not make a mismatch; placeholders such as "Anonymous" count
  as no name);
- "birth_date": DICOM DA `YYYYMMDD` (digits compared);
- "sex": "M" / "F" (from engine.io.demographics);
- "acquired" (both) or "study_date" (chest X-ray): acquisition date; a large gap between the
  two is a note in the reason, never a mismatch (a chest film from last year is still the
  same patient's).

Rules: any identifier present in both files that disagrees -> "different_patient", the
reason naming the fields. Otherwise "same_patient" when the patient ID agrees, or the name
and the birth date both agree; else "unknown" (what could not be compared, e.g. "the ECG
file carries no patient identifiers"). Sex alone never makes a match (half of all patients
share it) but can make a mismatch. Age is not compared (it changes between the two dates).
WFDB files carry no patient identifiers (only age and sex in comments): their pairing is
"unknown" unless the sex disagrees.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from typing import Any, Literal

#: Fields that identify a patient, in the order they are reported.
IDENTIFIERS = ("patient_id", "patient_name", "birth_date", "sex")
_LABELS = {"patient_id": "patient ID", "patient_name": "name", "birth_date": "birth date",
           "sex": "sex"}
#: Names that stand for "no name" (anonymised exports).
PLACEHOLDER_NAMES = frozenset({"anonymous", "anonymized", "anonymised", "anon", "unknown",
                               "none", "na", "n/a", "patient", "test", "noname", "no name"})
#: Acquisition gap (days) above which the reason notes it.
LARGE_GAP_DAYS = 30

Status = Literal["same_patient", "different_patient", "unknown"]


@dataclass(frozen=True)
class Pairing:
    """The verdict on an ECG and a chest X-ray.

    Attributes:
        status: "same_patient", "different_patient" or "unknown".
        reason: one sentence for the user (which fields agree / disagree / are missing,
            and any note on the acquisition dates).
        matched: identifier fields present in both files that agree (IDENTIFIERS names).
        mismatched: identifier fields present in both files that disagree.
        acquired_gap_days: days between the two acquisitions, None when a date is missing.
    """

    status: Status
    reason: str
    matched: tuple[str, ...] = ()
    mismatched: tuple[str, ...] = ()
    acquired_gap_days: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: status, reason, matched, mismatched (lists), acquired_gap_days."""
        return {"status": self.status, "reason": self.reason, "matched": list(self.matched),
                "mismatched": list(self.mismatched), "acquired_gap_days": self.acquired_gap_days}

    @property
    def withhold_teacher(self) -> bool:
        """True when the chest X-ray teacher's results must not be shown beside this ECG."""
        return self.status == "different_patient"


def _text(value: Any) -> str:
    return re.sub(r"\s+", " ", str(value if value is not None else "")).strip()


def normalise_id(value: Any) -> str | None:
    """Patient ID stripped and upper-cased; None when empty."""
    text = _text(value).upper()
    return text or None


def normalise_name(value: Any) -> frozenset[str] | None:
    """The set of lower-case words of a person name (DICOM `^`-separated components, commas,
    spaces and dots split words); None for an empty or placeholder name."""
    text = _text(value).lower()
    if not text or text.replace("^", " ").strip() in PLACEHOLDER_NAMES:
        return None
    words = frozenset(w for w in re.split(r"[\^,.\s=]+", text) if w)
    return words or None


def normalise_birth_date(value: Any) -> str | None:
    """`YYYYMMDD` from "19710123", "1971-01-23", "1971.01.23"; None when not 8 digits."""
    digits = re.sub(r"\D", "", _text(value))
    return digits if len(digits) == 8 else None


def normalise_sex(value: Any) -> str | None:
    """"M" or "F"; None for anything else (O, U, empty)."""
    text = _text(value).upper()
    return text if text in ("M", "F") else None


_NORMALISE = {"patient_id": normalise_id, "patient_name": normalise_name,
              "birth_date": normalise_birth_date, "sex": normalise_sex}


def identity(meta: dict[str, Any] | None) -> dict[str, Any]:
    """The identity fields of a record's meta (IDENTIFIERS plus "acquired" / "study_date"),
    raw as the reader wrote them; small and picklable (for batch results)."""
    meta = meta or {}
    return {k: meta[k] for k in (*IDENTIFIERS, "acquired", "study_date")
            if meta.get(k) not in (None, "")}


def acquisition_date(meta: dict[str, Any]) -> date | None:
    """The acquisition date of a record's meta: "acquired" (DICOM `YYYYMMDD[HHMMSS]`,
    `YYYYMMDD HHMMSS`, or WFDB `HH:MM:SS DD/MM/YYYY`) or else "study_date"; None if none parses."""
    for key in ("acquired", "study_date"):
        text = _text(meta.get(key))
        m = re.search(r"\b(\d{2})/(\d{2})/(\d{4})\b", text)  # WFDB base date DD/MM/YYYY
        parts = (m.group(3), m.group(2), m.group(1)) if m else None
        if parts is None:
            m = re.match(r"^(\d{4})-?(\d{2})-?(\d{2})", text)
            parts = m.groups() if m else None
        if parts is None:
            continue
        try:
            return date(int(parts[0]), int(parts[1]), int(parts[2]))
        except ValueError:
            continue
    return None


def _agree(field: str, a: Any, b: Any) -> bool:
    """Normalised values agree; names agree when one's words include the other's (a middle
    name or a suffix present in one file only)."""
    if field == "patient_name":
        return a <= b or b <= a
    return a == b


def _labels(fields: list[str] | tuple[str, ...]) -> str:
    return ", ".join(_LABELS[f] for f in fields)


def compare_patients(ecg_meta: dict[str, Any] | None, cxr_meta: dict[str, Any] | None) -> Pairing:
    """Compare the patient fields of an ECG's meta with a chest X-ray's (see module docstring).

    Returns:
        Pairing: status, reason, matched and mismatched identifier fields.
    """
    ecg_meta, cxr_meta = ecg_meta or {}, cxr_meta or {}
    ecg = {f: _NORMALISE[f](ecg_meta.get(f)) for f in IDENTIFIERS}
    cxr = {f: _NORMALISE[f](cxr_meta.get(f)) for f in IDENTIFIERS}
    both = [f for f in IDENTIFIERS if ecg[f] is not None and cxr[f] is not None]
    matched = tuple(f for f in both if _agree(f, ecg[f], cxr[f]))
    mismatched = tuple(f for f in both if f not in matched)
    d_ecg, d_cxr = acquisition_date(ecg_meta), acquisition_date(cxr_meta)
    gap = abs((d_ecg - d_cxr).days) if d_ecg and d_cxr else None
    note = ""
    if gap is not None and gap > LARGE_GAP_DAYS:
        note = (f" Note: the ECG ({d_ecg.isoformat()}) and the chest X-ray ({d_cxr.isoformat()}) "
                f"were acquired {gap} days apart.")

    if mismatched:
        agree = f" ({_labels(matched)} agree{'s' if len(matched) == 1 else ''})" if matched else ""
        reason = (f"different patients: the {_labels(mismatched)} of the ECG and the chest X-ray "
                  f"differ{agree}.")
        return Pairing("different_patient", reason + note, matched, mismatched, gap)
    if "patient_id" in matched or {"patient_name", "birth_date"} <= set(matched):
        return Pairing("same_patient", f"same patient: {_labels(matched)} agree." + note,
                       matched, mismatched, gap)
    strong = ("patient_id", "patient_name", "birth_date")
    ecg_has = [f for f in strong if ecg[f] is not None]
    cxr_has = [f for f in strong if cxr[f] is not None]
    if not ecg_has and not cxr_has:
        reason = "neither file carries patient identifiers (ID, name, birth date)"
    elif not ecg_has:
        reason = "the ECG file carries no patient identifiers (ID, name, birth date)"
    elif not cxr_has:
        reason = "the chest X-ray file carries no patient identifiers (ID, name, birth date)"
    else:
        reason = (f"the files share no identifier to compare (ECG: {_labels(ecg_has)}; "
                  f"chest X-ray: {_labels(cxr_has)})")
    if matched:
        reason += f"; only the {_labels(matched)} agree{'s' if len(matched) == 1 else ''}"
    return Pairing("unknown", f"patient unknown: {reason}. Check that both belong to the same "
                   f"patient." + note, matched, mismatched, gap)
