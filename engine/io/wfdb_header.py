"""Parse a WFDB header (.hea) into plain values, without touching signal files.

The line grammar is wfdb-python's (`wfdb.io.header.rx_record` / `rx_signal`, wfdb
4.3.1), but parsed here without regular expressions: a line is split into its
blank-separated fields and each field is taken apart with string operations, so
the time is linear in the header's length. wfdb's patterns backtrack without end on
some damaged lines (a 32-byte record line `a 12 1111111111111111111111111!` never
finishes; a signal line of n letters takes time in n squared: 7 s for 20,000) and
hold the GIL meanwhile, freezing the app. Line and field lengths and the number of
lines are limited (`engine.io.limits`). A test checks that our fields equal those of
wfdb's patterns on the real sample headers (wfdb as the oracle).

This module applies the WFDB defaults (header(5)) and checks the values, and is
~100x faster than `wfdb.rdheader` (which also imports pandas, ~0.25 s on the first
read). Every problem raises `CorruptFileError` or `UnsupportedFormatError` with the
line at fault.

Where a damaged line is read differently from wfdb's patterns: a field that does not
have its field's form ends the numeric fields of a signal line (the rest of the line
is the signal's description, as wfdb's pattern does for a field of letters), and a
record line's fields that do not have their form are refused, not skipped.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from engine.errors import CorruptFileError, UnsupportedFormatError
from engine.io.limits import (HEADER_MAX_FIELD_CHARS, HEADER_MAX_LINE_CHARS, HEADER_MAX_LINES,
                              WAVEFORM_MAX_CHANNELS)

#: Most signals a header may declare (real databases have at most a few dozen).
MAX_SIGNALS = WAVEFORM_MAX_CHANNELS
#: Highest plausible sampling rate in Hz.
MAX_FS_HZ = 1_000_000.0
#: WFDB default sampling rate and gain (header(5)).
DEFAULT_FS_HZ = 250.0
DEFAULT_GAIN = 200.0
#: Characters of a record name besides letters and digits (wfdb: [-\w]).
_NAME_EXTRA = frozenset("-_")


@dataclass(frozen=True)
class WfdbSignal:
    """One signal line: `gain` in ADC units per physical unit; `baseline` in ADC units."""

    file_name: str
    fmt: str
    samps_per_frame: int
    skew: int
    byte_offset: int
    gain: float
    baseline: int
    units: str
    adc_res: int
    adc_zero: int
    init_value: int | None
    checksum: int | None
    description: str


@dataclass(frozen=True)
class WfdbHeader:
    """A parsed single-segment WFDB header. `n_samples` is None when the header omits it."""

    record_name: str
    n_segments: int
    fs: float
    n_samples: int | None
    base_time: str
    base_date: str
    signals: tuple[WfdbSignal, ...]
    comments: tuple[str, ...]


def _int(text: str, default: int, what: str, line: str) -> int:
    if not text:
        return default
    try:
        return int(text)
    except ValueError:
        raise CorruptFileError(f"WFDB header: {what} {text!r} is not a whole number "
                               f"in line {line[:80]!r}.") from None


def _digits(text: str) -> bool:
    r"""A non-empty run of ASCII digits (`\d+`)."""
    return text.isascii() and text.isdigit()


def _opt_digits(text: str) -> bool:
    r"""`\d*`."""
    return not text or _digits(text)


def _decimal(text: str) -> bool:
    r"""`\d*\.?\d*` (wfdb's sampling and counter frequencies; may be empty or ".")."""
    whole, _, frac = text.partition(".")
    return _opt_digits(whole) and _opt_digits(frac)


def _is_gain(text: str) -> bool:
    r"""A gain: `-?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?`, case-insensitive, checked without a regex."""
    body = text[1:] if text.startswith("-") else text
    mantissa, e, exponent = body.lower().partition("e")
    whole, _, frac = mantissa.partition(".")
    if not (_opt_digits(whole) and _opt_digits(frac) and (whole or frac)):
        return False
    if e:
        exponent = exponent[1:] if exponent[:1] in ("+", "-") else exponent
        return _digits(exponent)
    return True


def _is_name(text: str, extra: frozenset[str]) -> bool:
    r"""Letters, digits and the characters of `extra` only (`[-\w]` and the like)."""
    return all(c.isalnum() or c in extra for c in text)


def _fields(line: str, max_fields: int) -> list[tuple[int, str]]:
    """The first `max_fields` blank-separated fields of `line` as (start offset, text);
    linear in the line's length.

    Raises:
        CorruptFileError: a field longer than HEADER_MAX_FIELD_CHARS."""
    out: list[tuple[int, str]] = []
    pos = 0
    for text in line.split(None, max_fields)[:max_fields]:
        pos = line.find(text, pos)  # blanks only lie between: the first hit is the field itself
        out.append((pos, text))
        pos += len(text)
    return out


def _check_field(text: str, where: str, line: str) -> None:
    if len(text) > HEADER_MAX_FIELD_CHARS:
        raise CorruptFileError(f"WFDB header {where}: a field of {len(text)} characters (at most "
                               f"{HEADER_MAX_FIELD_CHARS}) in line {line[:80]!r}. The header is "
                               f"damaged.")


def _prefix(text: str, parts: tuple[tuple[str, int], ...]) -> str:
    r"""The longest prefix of `text` of the form given by `parts`, a sequence of (separator,
    most digits): each part is an optional separator character followed by up to that many
    digits (wfdb's base time `\d{,2}:?\d{,2}:?\d{,2}\.?\d{,6}` and date patterns, whose
    every part may be empty, so the greedy prefix is the pattern's match)."""
    pos = 0
    for sep, most in parts:
        if sep and text[pos:pos + 1] == sep:
            pos += 1
        end = pos
        while end < len(text) and end - pos < most and text[end].isascii() and text[end].isdigit():
            end += 1
        pos = end
    return text[:pos]


_TIME = (("", 2), (":", 2), (":", 2), (".", 6))
_DATE = (("", 2), ("/", 2), ("/", 4))


def record_fields(line: str, where: str = "") -> dict[str, str]:
    """The fields of a record line, named and written as wfdb's `rx_record` groups ("" when
    absent): record_name, n_seg, n_sig, fs, counter_freq, base_counter, sig_len,
    base_time, base_date.

    Raises:
        CorruptFileError: not a record line (no name and signal count, a malformed field)."""
    fields = _fields(line, 6)
    for _, text in fields:
        _check_field(text, where, line)
    bad = CorruptFileError(f"The first line of the WFDB header {where} is not a record "
                           f"line ({line[:80]!r}).")
    if len(fields) < 2:
        raise bad
    name, _, n_seg = fields[0][1].partition("/")
    if not name or not _is_name(name, _NAME_EXTRA) or not _opt_digits(n_seg) or not _digits(fields[1][1]):
        raise bad
    out = {"record_name": name, "n_seg": n_seg, "n_sig": fields[1][1], "fs": "", "counter_freq": "",
           "base_counter": "", "sig_len": "", "base_time": "", "base_date": ""}
    if len(fields) > 2:
        fs, _, counter = fields[2][1].partition("/")
        counter = counter.lstrip("/")
        freq, _, base = counter.partition("(")
        base = base[:-1] if base.endswith(")") else base
        if not (_decimal(fs) and _decimal(freq.removeprefix("-")) and _decimal(base.removeprefix("-"))):
            raise bad
        out.update(fs=fs, counter_freq=freq, base_counter=base)
    if len(fields) > 3:
        if not _digits(fields[3][1]):
            raise bad
        out["sig_len"] = fields[3][1]
    if len(fields) > 4:  # as wfdb's pattern: the longest prefix of the time form, then a date
        text = fields[4][1]
        out["base_time"] = _prefix(text, _TIME)
        rest = text[len(out["base_time"]):]
        if not rest and len(fields) > 5:
            rest = fields[5][1]
        out["base_date"] = _prefix(rest, _DATE)
    return out


#: One field each, matched with `fullmatch` on a field of at most HEADER_MAX_FIELD_CHARS
#: characters. Unambiguous (at each character at most one way on), so linear.
_FILE_FIELD = re.compile(r"~?[-\w]*(?:\.\w*)?")
_FMT_FIELD = re.compile(r"(\d+)(?:x(\d*))?(?::(\d*))?(?:\+(\d*))?")
_GAIN_FIELD = re.compile(r"([^(/]*)(?:\((-?\d*)\)?)?(?:/([\w^\-?%/]*))?")
_NUMERIC = (("adc_res", False), ("adc_zero", True), ("init_value", True), ("checksum", True),
            ("block_size", False))


def signal_fields(line: str, where: str = "") -> dict[str, str]:
    """The fields of a signal line, named and written as wfdb's `rx_signal` groups ("" when
    absent): file_name, fmt, samps_per_frame, skew, byte_offset, adc_gain, baseline, units,
    adc_res, adc_zero, init_value, checksum, block_size, sig_name.

    Raises:
        CorruptFileError: no file name and format, a malformed one, a gain that is not a
            number, a field over HEADER_MAX_FIELD_CHARS."""
    parts = line.split(None, 8)  # file, fmt, gain, 5 numeric fields, the description
    bad = CorruptFileError(f"WFDB header {where}: cannot read the signal line {line[:80]!r}.")
    if len(parts) < 2:
        raise bad
    for text in parts[:8]:
        _check_field(text, where, line)
    fmt = _FMT_FIELD.fullmatch(parts[1])
    if fmt is None or _FILE_FIELD.fullmatch(parts[0]) is None:
        raise bad
    out = {"file_name": parts[0], "fmt": fmt[1], "samps_per_frame": fmt[2] or "", "skew": fmt[3] or "",
           "byte_offset": fmt[4] or "", "adc_gain": "", "baseline": "", "units": "", "adc_res": "",
           "adc_zero": "", "init_value": "", "checksum": "", "block_size": "", "sig_name": ""}
    index = 2
    if len(parts) > 2 and parts[2][0] in "0123456789-.(":  # gain[(baseline)][/units]
        gain = _GAIN_FIELD.fullmatch(parts[2])
        if gain is None:
            raise bad
        if gain[1] and not _is_gain(gain[1]):
            raise CorruptFileError(f"WFDB header {where}: gain {gain[1]!r} is not a number "
                                   f"in line {line[:80]!r}.")
        out.update(adc_gain=gain[1], baseline=gain[2] or "", units=gain[3] or "")
        index = 3
    for key, signed in _NUMERIC:
        if index >= len(parts) or index == 8:
            break
        text = parts[index]
        digits = text[1:] if signed and text.startswith("-") else text
        if not (digits.isascii() and digits.isdigit() or signed and text == "-"):
            break
        out[key] = text
        index += 1
    if index < len(parts):  # the description: the rest of the line up to a tab (as wfdb's pattern)
        rest = parts[8] if index == 8 else line[_fields(line, index + 1)[index][0]:]
        out["sig_name"] = rest.split("\t", 1)[0]
    return out


def parse_header(text: str, where: str) -> WfdbHeader:
    """Parse the text of a .hea file; time linear in its length.

    Args:
        text: the header file's content.
        where: the header path, for messages.

    Raises:
        CorruptFileError: a malformed record or signal line, impossible values, a line,
            field or line count over the limits of `engine.io.limits`.
        UnsupportedFormatError: a multi-segment record.
    """
    comments: list[str] = []
    lines: list[str] = []
    raw_lines = text.splitlines()
    if len(raw_lines) > HEADER_MAX_LINES:
        raise CorruptFileError(f"The WFDB header {where} has {len(raw_lines)} lines; at most "
                               f"{HEADER_MAX_LINES} are read. The header is damaged.")
    for number, raw in enumerate(raw_lines, 1):
        if len(raw) > HEADER_MAX_LINE_CHARS:
            raise CorruptFileError(f"Line {number} of the WFDB header {where} has {len(raw)} "
                                   f"characters; at most {HEADER_MAX_LINE_CHARS} are read. The "
                                   f"header is damaged.")
        stripped = raw.strip()
        if stripped.startswith("#"):
            comments.append(stripped.lstrip("#").strip())
        elif stripped:
            lines.append(stripped.split("#", 1)[0].rstrip() if "#" in stripped else stripped)
    if not lines:
        raise CorruptFileError(f"The WFDB header {where} has no record line. Open the .hea "
                               f"file that came with the record.")
    rec = record_fields(lines[0], where)
    n_seg = _int(rec["n_seg"], 1, "segment count", lines[0])
    if n_seg > 1:
        raise UnsupportedFormatError(
            f"{where} is a multi-segment WFDB record ({n_seg} segments). Open one of its "
            f"segment headers instead, or convert it to a single-segment record (wfdb's "
            f"rdrecord + wrsamp).")
    n_sig = _int(rec["n_sig"], 0, "signal count", lines[0])
    if n_sig > MAX_SIGNALS:
        raise CorruptFileError(f"The WFDB header {where} claims {n_sig} signals; at most "
                               f"{MAX_SIGNALS} are supported. The header is probably damaged.")
    fs_text = rec["fs"]
    try:
        fs = float(fs_text) if fs_text and fs_text != "." else DEFAULT_FS_HZ
    except ValueError:
        raise CorruptFileError(f"WFDB header {where}: sampling rate {fs_text!r} is not a number.") from None
    if not (math.isfinite(fs) and 0 < fs <= MAX_FS_HZ):
        raise CorruptFileError(f"WFDB header {where}: sampling rate {fs_text!r} Hz is impossible.")
    n_samples = _int(rec["sig_len"], 0, "sample count", lines[0]) or None
    signal_lines = lines[1:]
    if len(signal_lines) < n_sig:
        raise CorruptFileError(f"The WFDB header {where} declares {n_sig} signals but has "
                               f"{len(signal_lines)} signal lines. The header is truncated.")
    signals = tuple(_parse_signal(line, where) for line in signal_lines[:n_sig])
    return WfdbHeader(record_name=rec["record_name"], n_segments=n_seg, fs=fs,
                      n_samples=n_samples, base_time=rec["base_time"],
                      base_date=rec["base_date"], signals=signals,
                      comments=tuple(comments))


def _parse_signal(line: str, where: str) -> WfdbSignal:
    g = signal_fields(line, where)
    gain_text = g["adc_gain"]
    gain = float(gain_text) if gain_text else 0.0
    if gain == 0.0:
        gain = DEFAULT_GAIN
    if not math.isfinite(gain):
        raise CorruptFileError(f"WFDB header {where}: gain {gain_text!r} is not finite.")
    adc_zero = _int(g["adc_zero"], 0, "ADC zero", line)
    return WfdbSignal(
        file_name=g["file_name"],
        fmt=g["fmt"],
        samps_per_frame=_int(g["samps_per_frame"], 1, "samples per frame", line),
        skew=_int(g["skew"], 0, "skew", line),
        byte_offset=_int(g["byte_offset"], 0, "byte offset", line),
        gain=gain,
        baseline=_int(g["baseline"], adc_zero, "baseline", line),
        units=g["units"] or "mV",
        adc_res=_int(g["adc_res"], 0, "ADC resolution", line),
        adc_zero=adc_zero,
        init_value=_int(g["init_value"], 0, "initial value", line) if g["init_value"] else None,
        checksum=_int(g["checksum"], 0, "checksum", line) if g["checksum"] else None,
        description=(g["sig_name"] or "").strip(),
    )
