"""Turn WFDB header comments into `EcgRecord.meta` fields.

Handles the conventions of the databases the product meets:
- LUDB: `<age>: 51`, `<sex>: F`, `<diagnoses>:` followed by one statement per line.
- PhysioNet/CinC 2020/2021 and PTB-XL in WFDB: `Age: 77`, `Sex: Female`,
  `Dx: 164873001,426783006` (SNOMED CT codes; each becomes a statement with its term,
  `engine.io.snomed_ecg`, and the code beside it).
- PTB: `age: 81`, `sex: female`, `ECG date: ...`, `Reason for admission: ...`, ...
Every `key: value` comment is kept in `header_fields` (first occurrence wins) and
every comment line, verbatim, in `comments`.
"""

from __future__ import annotations

from typing import Any

from engine.io.demographics import age_sex_meta
from engine.io.ecg_common import statement
from engine.io.snomed_ecg import snomed_term
from engine.io.wfdb_header import WfdbHeader

#: Longest key of a `key: value` comment, characters.
_MAX_KEY = 81


def _key_value(line: str) -> tuple[str, str] | None:
    """(key, value) of a `key: value` or `<key>: value` comment line, both stripped; None when
    the line is not one. The key starts with an ASCII letter, has at most _MAX_KEY characters
    and none of ":<>". String operations, linear in the line's length: the former pattern
    `^<?\\s*([A-Za-z][^:<>]{0,80}?)\\s*>?\\s*:\\s*(.*)$` took 25 s on a comment of 8,000
    blanks (same results: tests/engine/test_read_wfdb.py)."""
    head, colon, value = line.partition(":")
    if not colon:
        return None
    key = head.removeprefix("<").lstrip().rstrip()
    if key.endswith(">"):
        key = key[:-1].rstrip()
    if not key or not (key[0].isascii() and key[0].isalpha()) or len(key) > _MAX_KEY \
            or "<" in key or ">" in key:
        return None
    return key, value.strip()
_STATEMENT_SECTIONS = {"diagnoses", "diagnosis", "statements", "interpretation"}


def header_meta(header: WfdbHeader) -> dict[str, Any]:
    """Meta fields from a parsed header: record_name, comments, header_fields, and
    when present age (int, years), sex ("M"/"F"), statements (list of
    `ecg_common.statement` dicts {"text", "code", "confirmed": None}: the free-text
    diagnoses with code None, then one per `Dx` code with its SNOMED CT term), dx_codes
    (list of SNOMED CT code strings), acquired ("HH:MM:SS DD/MM/YYYY" as written)."""
    fields: dict[str, str] = {}
    statements: list[str] = []
    in_statements = False
    for line in header.comments:
        pair = _key_value(line)
        if in_statements and line:
            statements.append(line)
            continue
        if pair:
            key, value = pair
            fields.setdefault(key, value)
            if key.lower() in _STATEMENT_SECTIONS and not value:
                in_statements = True
            elif key.lower() in _STATEMENT_SECTIONS:
                statements.append(value)
    meta: dict[str, Any] = {"record_name": header.record_name,
                            "comments": list(header.comments),
                            "header_fields": fields}
    lower = {k.lower(): v for k, v in reversed(list(fields.items()))}
    meta.update(age_sex_meta(lower.get("age"), lower.get("sex")))
    items = [statement(text) for text in statements if text.strip()]
    if "dx" in lower:
        codes = [c.strip() for c in lower["dx"].split(",") if c.strip()]
        meta["dx_codes"] = codes
        items += [statement(snomed_term(code), code) for code in codes]
    if items:
        meta["statements"] = items
    acquired = " ".join(x for x in (header.base_time, header.base_date) if x)
    if acquired:
        meta["acquired"] = acquired
    elif "ecg date" in lower:
        meta["acquired"] = lower["ecg date"]
    return meta
