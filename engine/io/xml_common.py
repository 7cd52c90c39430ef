"""Safe, bounded XML parsing and the small helpers every XML ECG reader shares.

`parse_xml(path, what)` refuses, before any parser sees the content:
- files larger than `MAX_XML_BYTES` (a 10 s 12-lead MUSE, Philips or aECG file is
  0.1 - 0.5 MB), or with more than `MAX_XML_TAGS` tags (bounds the tree's memory);
- any entity declaration (`<!ENTITY`, in UTF-8, Latin-1 or UTF-16 files): entity
  expansion ("billion laughs") and external entities (file or network access) both
  need one, and no ECG format uses them. A DOCTYPE naming an external DTD (MUSE's
  `<!DOCTYPE RestingECG SYSTEM "restecg.dtd">`) is allowed: expat never fetches it.

It then parses with the standard library's C ElementTree parser (expat 2.4+ also
limits entity amplification itself). `defusedxml` was measured and not chosen: its
ElementTree parser is the pure-Python one, 4x slower on a MUSE file (6.2 vs 1.5 ms)
and 2x on a Philips file (12.3 vs 6.2 ms), medians of 15 parses on this machine,
and gives no protection beyond refusing entity declarations, which is done here.

`decode_xml_file(path, what, decode, annotations)`: parse, then decode with the damage
messages the XML readers share.

Elements are found namespace-blind (`{*}tag`), as Philips and HL7 files declare a
default namespace and GE MUSE none.
"""

from __future__ import annotations

import base64
import binascii
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from engine.errors import CorruptFileError, UnsupportedFormatError
from engine.io.files import file_size, read_bytes
from engine.io.guard import corrupt_file_errors

#: Largest XML ECG file read (bytes); larger files are refused before reading.
MAX_XML_BYTES: int = 32 * 1024 * 1024
#: Most markup characters ("<") an XML ECG file may hold, checked before parsing: bounds
#: the parsed tree's memory (a 10 s MUSE file has about 500 elements, an aECG 3 000;
#: 32 MB of empty elements would need gigabytes as a tree).
MAX_XML_TAGS: int = 1_000_000

_ENTITY_MARKS = ("<!ENTITY".encode("ascii"), "<!ENTITY".encode("utf-16-le"),
                 "<!ENTITY".encode("utf-16-be"))
_ENCODING_RE = re.compile(rb"^<\?xml[^>]*encoding=[\"']([A-Za-z0-9._-]+)[\"']")


def read_xml_bytes(path: Path, what: str) -> bytes:
    """The bytes of an XML ECG file after the size and entity checks (see module docstring).

    Raises:
        CorruptFileError: larger than MAX_XML_BYTES, or declares XML entities.
    """
    size = file_size(path, what)
    if size > MAX_XML_BYTES:
        raise CorruptFileError(
            f"The {what} {path} is {size / 1e6:.0f} MB, more than the {MAX_XML_BYTES / 1e6:.0f} MB "
            f"an ECG file of this kind can plausibly hold. It is not a resting ECG export; check "
            f"what was exported.")
    data = read_bytes(path, MAX_XML_BYTES + 1, what)
    if len(data) > MAX_XML_BYTES:
        raise CorruptFileError(f"The {what} {path} grew beyond {MAX_XML_BYTES / 1e6:.0f} MB while "
                               f"being read; copy it again.")
    tags = data.count(b"<")
    if tags > MAX_XML_TAGS:
        raise CorruptFileError(
            f"The {what} {path} holds {tags} XML tags, far more than an ECG export (at most "
            f"{MAX_XML_TAGS}); it is not an ECG file of this kind. Check what was exported.")
    if any(mark in data for mark in _ENTITY_MARKS):
        raise CorruptFileError(
            f"The {what} {path} declares XML entities, which ECG exports never do and which can be "
            f"used to attack the computer reading the file; it was refused for safety. Export the "
            f"ECG again from the ECG system.")
    return data


def parse_xml_bytes(data: bytes, path: Path, what: str) -> ET.Element:
    """Root element of `data` (already checked by `read_xml_bytes`).

    Raises:
        CorruptFileError: not well-formed XML (truncated, damaged).
    """
    try:
        parser = ET.XMLParser()
        parser.feed(data)
        return parser.close()
    except ET.ParseError as exc:
        raise CorruptFileError(
            f"The {what} {path} is not well-formed XML ({exc}); it is probably truncated or "
            f"damaged. Export the ECG again.") from exc
    except (LookupError, ValueError) as exc:  # an unknown encoding declaration
        raise CorruptFileError(f"The {what} {path} cannot be decoded ({exc}). Export the ECG "
                               f"again.") from exc


def parse_xml(path: Path, what: str) -> ET.Element:
    """Read, check and parse an XML ECG file; root element. Typed errors only."""
    return parse_xml_bytes(read_xml_bytes(path, what), path, what)


def local_name(tag: str) -> str:
    """Tag without its namespace: "{urn:hl7-org:v3}AnnotatedECG" -> "AnnotatedECG"."""
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def child(elem: ET.Element | None, path: str) -> ET.Element | None:
    """First element at `path` below `elem` (tags without namespace, "/"-separated,
    "." or ".//" prefixes as in ElementTree); None when `elem` is None or nothing matches."""
    if elem is None:
        return None
    return elem.find(_ns_blind(path))


def children(elem: ET.Element | None, path: str) -> list[ET.Element]:
    """All elements at `path` below `elem` (namespace-blind, as `child`)."""
    return [] if elem is None else elem.findall(_ns_blind(path))


def text(elem: ET.Element | None, path: str | None = None) -> str | None:
    """Stripped text of `elem` (or of its first element at `path`); None when absent or blank."""
    node = elem if path is None else child(elem, path)
    if node is None or node.text is None:
        return None
    value = node.text.strip()
    return value or None


_NS_CACHE: dict[str, str] = {}


def _ns_blind(path: str) -> str:
    cached = _NS_CACHE.get(path)
    if cached is None:
        parts = [p if p in ("", ".", "..", "*") or p.startswith("{") else "{*}" + p
                 for p in path.split("/")]
        cached = _NS_CACHE[path] = "/".join(parts)
    return cached


def decode_base64(data: str | None, path: Path, what: str, part: str) -> bytes:
    """Bytes of a base64 element text (whitespace ignored, no other stray characters).

    Raises:
        CorruptFileError: missing, or not valid base64 (naming `part`, e.g. "lead V2").
    """
    if not data:
        raise CorruptFileError(f"The {what} {path} has no waveform data for {part}. Export the ECG "
                               f"again.")
    try:
        return base64.b64decode("".join(data.split()), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise CorruptFileError(f"The waveform data for {part} in the {what} {path} is not valid "
                               f"base64 ({exc}); the file is damaged. Export the ECG again.") from exc


def xml_flavour(head: bytes) -> str | None:
    """Which XML ECG format a file's first bytes belong to, from its root element:
    "muse-xml" (RestingECG), "philips-xml" (restingecgdata), "hl7-aecg" (AnnotatedECG),
    "xml" (another XML document), None (not XML). Handles UTF-8, Latin-1 and UTF-16 with
    or without a byte-order mark."""
    textual = _head_text(head)
    if textual is None:
        return None
    stripped = textual.lstrip("\ufeff \t\r\n")
    if not stripped.startswith("<"):
        return None
    root = _ROOT_RE.search(stripped)
    if root is None:
        return "xml" if stripped.startswith(("<?xml", "<!--")) else None
    name = root.group(1).rsplit(":", 1)[-1]
    return _ROOTS.get(name, "xml")


_XML_FIRST_BYTES = frozenset(b"<\xef\xff\xfe\x00 \t\r\n")
_ROOTS = {"RestingECG": "muse-xml", "restingecgdata": "philips-xml", "AnnotatedECG": "hl7-aecg"}
# first element start tag that is not a declaration, comment or processing instruction
_ROOT_RE = re.compile(r"<([A-Za-z_][\w.:-]*)[\s/>]")


def _head_text(head: bytes) -> str | None:
    if not head or head[0] not in _XML_FIRST_BYTES:  # fast exit for binary files and WFDB headers
        return None
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return head[:8192].decode("utf-16", errors="ignore")
    if head.startswith(b"<\x00"):
        return head[:8192].decode("utf-16-le", errors="ignore")
    if head.startswith(b"\x00<"):
        return head[:8192].decode("utf-16-be", errors="ignore")
    if head.startswith(b"\xef\xbb\xbf"):
        head = head[3:]
    return head[:8192].decode("latin-1") if head[:1024].lstrip()[:1] == b"<" else None


def refuse_unknown_xml(path: Path, what_is_read: str) -> UnsupportedFormatError:
    """The error for an XML file that is none of the ECG XML formats."""
    return UnsupportedFormatError(
        f"{path} is an XML document, but not one of the ECG XML formats this program reads "
        f"({what_is_read}). Export the ECG as GE MUSE XML, Philips XML, HL7 aECG, DICOM or WFDB.")


_T = TypeVar("_T")


def decode_xml_file(path: Path, what: str, decode: Callable[[ET.Element, Path, bool], _T],
                    annotations: bool) -> _T:
    """`decode(root, path, annotations)` on `parse_xml(path, what)`'s root.

    Errors the decoding meets in damaged content (engine.io.guard.corrupt_file_errors)
    become CorruptFileError "The {what} {path} is damaged (...). Export the ECG again."
    or, for sizes it cannot hold, "The {what} {path} claims more data than can be read;
    it is damaged."
    """
    root = parse_xml(path, what)
    with corrupt_file_errors(path, lambda error: f"The {what} {path} is damaged ({error}). Export "
                                                 f"the ECG again.",
                             f"The {what} {path} claims more data than can be read; it is damaged."):
        return decode(root, path, annotations)
