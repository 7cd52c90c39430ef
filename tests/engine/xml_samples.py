"""Paths of the real XML ECG sample files and helpers to make damaged copies of them."""

from __future__ import annotations

import re
from pathlib import Path

DATA = Path(__file__).resolve().parents[1] / "data" / "formats"
MUSE_SINUS = DATA / "muse_xml" / "egm_muse-sinus.xml"
MUSE_PACED = DATA / "muse_xml" / "musephi_muse_ecg1.xml"
PHILIPS_104 = DATA / "philips_xml" / "philips_1-04_ad4d3d80-d165_PageWriterTouch.xml"
PHILIPS_103 = DATA / "philips_xml" / "sierra_1-03_129DYPRG_HeartStartMRx.xml"
HL7_AECG = DATA / "hl7_aecg" / "hl7_2003-12_ballot_Example_aECG_Mortara.xml"
ALL_XML = (MUSE_SINUS, MUSE_PACED, PHILIPS_104, PHILIPS_103, HL7_AECG)


def read_text(path: Path) -> tuple[str, str]:
    """(text, encoding) of a sample file (the Philips 1.04 file is UTF-16)."""
    raw = path.read_bytes()
    if raw.startswith(b"\xff\xfe"):
        return raw.decode("utf-16"), "utf-16"
    encoding = "latin-1" if b'encoding="ISO-8859-1"' in raw[:100] else "utf-8"
    return raw.decode(encoding), encoding


def edited_copy(path: Path, folder: Path, pattern: str, replacement: str, count: int = 1,
                name: str | None = None) -> Path:
    """A copy of `path` in `folder` with `pattern` (regex) replaced, same encoding;
    asserts that the pattern was found."""
    content, encoding = read_text(path)
    new, n = re.subn(pattern, replacement, content, count=count, flags=re.S)
    assert n >= 1, f"pattern {pattern!r} not in {path.name}"
    out = folder / (name or path.name)
    out.write_bytes(new.encode(encoding))
    return out


BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE {root} [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<{root}><PatientID>&lol9;</PatientID></{root}>
"""

EXTERNAL_ENTITY = """<?xml version="1.0"?>
<!DOCTYPE {root} [<!ENTITY secret SYSTEM "file:///etc/passwd">]>
<{root}><PatientID>&secret;</PatientID></{root}>
"""
