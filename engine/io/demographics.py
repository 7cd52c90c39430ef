"""Patient age and sex from the free text of any file format (WFDB comments, DICOM elements)."""

from __future__ import annotations

import re
from typing import Any

_AGE = re.compile(r"^\s*(\d{1,3})\s*(y|years?)?\s*$", re.IGNORECASE)
#: Longest text read as an age, characters.
_MAX_AGE_CHARS = 32


def parse_age(text: str) -> int | None:
    """Age in whole years from "51", "042Y", "77 years"; None when not a plausible age.

    A text over _MAX_AGE_CHARS is no age (the pattern's two blank runs take time in n squared)."""
    text = str(text)
    if len(text) > _MAX_AGE_CHARS:
        return None
    m = _AGE.match(text)
    if not m:
        return None
    age = int(m.group(1))
    return age if age <= 130 else None


def parse_sex(text: str) -> str | None:
    """"M", "F" or None from "F", "female", "Male", ..."""
    value = str(text).strip().lower()
    if value in ("m", "male", "man"):
        return "M"
    if value in ("f", "female", "woman"):
        return "F"
    return None


def age_sex_meta(age: str | None, sex: str | None) -> dict[str, Any]:
    """{"age": int years, "sex": "M"/"F"} for a record's meta: only the values that parse
    (`age` / `sex` None when the file has no such field)."""
    meta: dict[str, Any] = {}
    years = parse_age(age) if age else None
    if years is not None:
        meta["age"] = years
    letter = parse_sex(sex) if sex else None
    if letter is not None:
        meta["sex"] = letter
    return meta
