"""Map vendor lead names to the canonical 12-lead names of `engine.constants.LEADS`.

Readers call `canonical_lead(name)` on every channel label they find (WFDB signal
descriptions, DICOM channel source code meanings or code values). Spellings handled,
case-insensitively: `i`, `II`, `Lead III`, `lead_avr`, `AVL`, `MDC_ECG_LEAD_aVF`,
`Lead I (Einthoven)`, `V1`, `C1` (European chest-lead names), `ECG V2`, DICOM MDC codes
`2:1`, `2:61` and SCP-ECG codes `5.6.3-9-1`.
"""

from __future__ import annotations

import re
from functools import lru_cache

from engine.constants import LEADS

# Upper-case token (after stripping prefixes and separators) -> canonical name.
_TOKENS: dict[str, str] = {
    "I": "I", "II": "II", "III": "III",
    "AVR": "aVR", "AVL": "aVL", "AVF": "aVF",
    **{f"V{k}": f"V{k}" for k in range(1, 7)},
    **{f"C{k}": f"V{k}" for k in range(1, 7)},
}

# MDC (ISO/IEEE 11073) lead codes as used in DICOM CID 3001 ("2:<n>") and the
# SCP-ECG codes ("5.6.3-9-<n>") that share the same numbers.
_MDC_NUMBERS: dict[int, str] = {
    1: "I", 2: "II", 3: "V1", 4: "V2", 5: "V3", 6: "V4", 7: "V5", 8: "V6",
    61: "III", 62: "aVR", 63: "aVL", 64: "aVF",
}

#: Longest channel label that may name a lead, characters.
MAX_LABEL_CHARS = 64
_CODE_RE = re.compile(r"^\s*(?:2:|5\.6\.3-9-|MDC_ECG_LEAD_)(\d+)\s*$", re.IGNORECASE)
_PARENS_RE = re.compile(r"\([^)]*\)")
_PREFIX_RE = re.compile(r"^(?:MDC_ECG_LEAD_|ECG_LEAD_|LEAD_|LEAD|ECG_|ECG)", re.IGNORECASE)
_SEPARATORS_RE = re.compile(r"[\s_.\-:]+")


def canonical_lead(name: str | None) -> str | None:
    """Canonical lead name (one of `LEADS`) for a vendor label, or None.

    Args:
        name: a channel label as a file spells it, e.g. "avr", "Lead II",
            "MDC_ECG_LEAD_aVF", "2:61".

    Returns:
        "I", "II", ..., "V6", or None when the label is not one of the 12
        standard leads (e.g. "vx", "MLII", "V3R", "-aVR", "Resp").
    """
    if not name:
        return None
    text = str(name)
    if len(text) > MAX_LABEL_CHARS:  # no lead name is this long; keeps the patterns' time bounded
        return None
    return _canonical_text(text)


@lru_cache(maxsize=1024)
def _canonical_text(label: str) -> str | None:
    """`canonical_lead` of a non-empty label (cached: readers meet the same few labels
    in every file, twice per file)."""
    text = label.strip()
    if text.startswith("-"):
        return None  # an inverted lead (e.g. Cabrera -aVR) is not the lead itself
    code = _CODE_RE.match(text)
    if code:
        return _MDC_NUMBERS.get(int(code.group(1)))
    text = _PARENS_RE.sub(" ", text).strip()
    text = _SEPARATORS_RE.sub("_", text).strip("_+")
    text = _PREFIX_RE.sub("", text).strip("_")
    text = text.replace("_", "").upper()
    return _TOKENS.get(text)


def order_leads(labels: list[str | None]) -> tuple[list[int], list[int]]:
    """Split channel labels into standard leads (canonical order) and extras.

    Args:
        labels: one label per channel, in file order.

    Returns:
        (lead_rows, extra_rows): `lead_rows[k]` is the file channel index of the
        k-th standard lead found, in `LEADS` order; `extra_rows` are the
        remaining channels in file order (non-standard leads, other signals, and
        any second channel claiming a lead already taken).
    """
    first: dict[str, int] = {}
    for index, label in enumerate(labels):
        lead = canonical_lead(label)
        if lead is not None and lead not in first:
            first[lead] = index
    lead_rows = [first[lead] for lead in LEADS if lead in first]
    taken = set(lead_rows)
    extra_rows = [i for i in range(len(labels)) if i not in taken]
    return lead_rows, extra_rows
