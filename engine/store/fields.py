"""Turning what a reader and the models give into the store's columns.

- `acquired_iso`: the readers' acquisition times (DICOM `YYYYMMDDHHMMSS`, XML
  `YYYY-MM-DD HH:MM:SS`, WFDB `DD/MM/YYYY` comments, ...) as ISO 8601 text
  `YYYY-MM-DDTHH:MM:SS` (date-only values at T00:00:00), so SQLite sorts and
  filters them as text; None when the value is not a date this module knows.
- `patient_key`: the key that groups one patient's ECGs (serial comparison, AI
  trend): "id:<patient ID>" (upper case, blanks removed) when the file has an ID;
  else "name:<name>|<birth date>" when it has both; else None (the ECG is then
  never grouped with another: a wrong grouping would show a stranger's prior).
"""

from __future__ import annotations

import json
import math
import re
from datetime import datetime
from typing import Any

import numpy as np

_FORMATS = ("%Y%m%d%H%M%S", "%Y%m%d%H%M", "%Y%m%d", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S",
            "%Y-%m-%d %H:%M", "%Y-%m-%d", "%d/%m/%Y %H:%M:%S", "%d/%m/%Y", "%d-%b-%Y %H:%M:%S",
            "%d-%b-%Y", "%H:%M:%S %d/%m/%Y")
#: Patient IDs that identify nobody (placeholders carts write when none was typed in).
_NO_ID = {"", "0", "NONE", "UNKNOWN", "ANONYMOUS", "ANON", "N/A", "NA", "-", "NULL"}


def acquired_iso(value: Any) -> str | None:
    """ISO `YYYY-MM-DDTHH:MM:SS` of an acquisition time string, or None."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.replace(tzinfo=None, microsecond=0).isoformat()
    text = str(value).strip()
    text = re.sub(r"\.\d+$", "", text)          # fractional seconds (DICOM, HL7)
    text = re.sub(r"([+-]\d{4}|Z)$", "", text)  # a UTC offset: keep the local time written
    for fmt in _FORMATS:
        try:
            return datetime.strptime(text, fmt).isoformat()
        except ValueError:
            continue
    return None


def patient_key(meta: dict[str, Any]) -> str | None:
    """The grouping key of a record's patient (see the module docstring), or None."""
    pid = "".join(str(meta.get("patient_id") or "").split()).upper()
    if pid not in _NO_ID:
        return f"id:{pid}"
    name = " ".join(str(meta.get("patient_name") or "").split()).upper()
    birth = re.sub(r"\D", "", str(meta.get("birth_date") or ""))
    if name and name not in _NO_ID and birth:
        return f"name:{name}|{birth}"
    return None


def to_json(value: Any) -> str | None:
    """Compact JSON of `value` (None -> None); numpy scalars/arrays become numbers/lists,
    non-finite floats null, tuples lists, anything else its str()."""
    if value is None:
        return None
    return json.dumps(_plain(value), ensure_ascii=False, allow_nan=False, separators=(",", ":"))


def from_json(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return _plain(value.tolist())
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(float(value)) else None
    if value is None or isinstance(value, (bool, int, str)):
        return value
    return str(value)
