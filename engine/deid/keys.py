"""Keyed, consistent replacements: date offsets, UIDs and pseudonyms.

All derive from one secret key with HMAC-SHA256, so the same patient gets the
same date offset and pseudonym, and the same UID the same new UID, in every
file of an export (and across exports made with the same key). Without the key
the originals cannot be recovered from the outputs.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from datetime import date, datetime, timedelta

#: Dates move back by 1 to MAX_OFFSET_DAYS days (never forward, never 0).
MAX_OFFSET_DAYS = 3650


class DeidKeys:
    """Replacements derived from `key` (bytes; a random one per export when None)."""

    def __init__(self, key: bytes | None = None) -> None:
        self.key = key if key else os.urandom(32)

    def _digest(self, kind: str, value: str) -> bytes:
        return hmac.new(self.key, f"{kind}\x00{value}".encode("utf-8"), hashlib.sha256).digest()

    def offset_days(self, patient: str) -> int:
        """The (negative) number of days this patient's dates move by."""
        return -(1 + int.from_bytes(self._digest("date", patient)[:8], "big") % MAX_OFFSET_DAYS)

    def pseudonym(self, patient: str) -> str:
        """The patient's replacement ID / name, e.g. "ANON-3F9A1C22D0"."""
        return "ANON-" + self._digest("patient", patient)[:5].hex().upper()

    def uid(self, uid: str) -> str:
        """A new DICOM UID for `uid` (under the UUID-derived root 2.25, at most 64 characters)."""
        return "2.25." + str(int.from_bytes(self._digest("uid", uid)[:16], "big"))

    def token(self, value: str, n: int = 12) -> str:
        """A short keyed hex token of `value` (file names)."""
        return self._digest("token", value)[: (n + 1) // 2].hex()[:n]


def shift_date(d: date, days: int) -> date:
    return d + timedelta(days=days)


def shift_text(value: str, fmt: str, days: int) -> str | None:
    """`value` parsed with strptime `fmt`, moved by `days`, formatted the same; None when
    it does not parse."""
    try:
        parsed = datetime.strptime(value, fmt)
    except ValueError:
        return None
    return (parsed + timedelta(days=days)).strftime(fmt)
