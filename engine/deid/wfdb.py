"""WFDB de-identification: header comments stripped, record renamed, base date removed.

WFDB headers carry no patient fields of their own; identifiers hide in the
comment lines (`# ECG date: ...`, admission dates, free-text history) and in the
record line's base date/time. The copy keeps only comments of the form
`key: value` whose key is in KEPT_COMMENT_KEYS (age and sex under
`keep_characteristics`, diagnosis codes always: clinical content, no identity),
drops the record line's base time and date, and renames the record and its
signal files to a keyed token. Signal files are copied byte for byte.
Multi-segment records (a header naming other headers) are refused.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

from engine.errors import DeidError

#: Comment keys kept (lower case, without <>), besides age/sex under keep_characteristics.
KEPT_COMMENT_KEYS = frozenset({"dx", "diagnoses"})
CHARACTERISTIC_KEYS = frozenset({"age", "sex"})
_MAX_HEADER = 1 << 20


def _comment_key(line: str) -> str | None:
    m = re.match(r"#\s*<?([^:>]+)>?\s*:", line)
    return m.group(1).strip().lower() if m else None


def deid_wfdb(header: Path, out_dir: Path, new_name: str, *,
              keep_characteristics: bool = False) -> dict[str, Any]:
    """Write `<out_dir>/<new_name>.hea` and its renamed signal files.

    Returns:
        {"outputs": [names], "changes": {...}} for the report.

    Raises:
        DeidError: unreadable or multi-segment header, a signal file missing.
    """
    try:
        raw = header.read_bytes()[:_MAX_HEADER].decode("latin-1")
    except OSError as exc:
        raise DeidError(f"{header} cannot be read ({exc.strerror}).") from exc
    lines = raw.splitlines()
    body_idx = [i for i, ln in enumerate(lines) if ln.strip() and not ln.lstrip().startswith("#")]
    if not body_idx:
        raise DeidError(f"{header} has no record line; it is not a WFDB header.")
    record = lines[body_idx[0]].split()
    if "/" in record[0]:
        raise DeidError(f"{header} is a multi-segment WFDB record; de-identified export of those is "
                        f"not supported.")
    old_name = record[0]
    kept_keys = KEPT_COMMENT_KEYS | (CHARACTERISTIC_KEYS if keep_characteristics else frozenset())
    out_lines: list[str] = []
    renamed: dict[str, str] = {}
    removed_comments: list[str] = []
    base_removed = len(record) > 4
    out_lines.append(" ".join([new_name] + record[1:4]))
    for i, ln in enumerate(lines):
        if i == body_idx[0]:
            continue
        if ln.lstrip().startswith("#"):
            key = _comment_key(ln.strip())
            if key is not None and key in kept_keys:
                out_lines.append(ln)
            elif ln.strip("# \t"):
                removed_comments.append(key or "free text")
            continue
        if not ln.strip():
            continue
        tokens = ln.split()
        fname = tokens[0]
        if "/" in fname or "\\" in fname:
            raise DeidError(f"{header} names a signal file in another folder ({fname}); not supported.")
        if fname not in renamed:
            suffix = fname[len(old_name):] if fname.startswith(old_name) else "_" + fname
            renamed[fname] = new_name + suffix
        tokens[0] = renamed[fname]
        # the signal line's description (last field, may contain blanks) is kept as is
        out_lines.append(" ".join(tokens))
    for old, new in renamed.items():
        src = header.parent / old
        if not src.is_file():
            raise DeidError(f"{header} names the signal file {old}, which is missing.")
        shutil.copyfile(src, out_dir / new)
    (out_dir / f"{new_name}.hea").write_text("\n".join(out_lines) + "\n", encoding="latin-1")
    changes: dict[str, Any] = {"record_renamed": True, "signal_files_renamed": len(renamed),
                               "comments_removed": removed_comments}
    if base_removed:
        changes["base_time_date_removed"] = True
    return {"outputs": [f"{new_name}.hea", *renamed.values()], "changes": changes}
