"""Parse a WFDB header (.hea) into plain values, without touching signal files.

The line grammar is wfdb-python's own (`wfdb.io.header.rx_record` /
`rx_signal`, copied verbatim from wfdb 4.3.1 so that reading a header does not import
wfdb and with it pandas, ~0.25 s on the first read; a test checks the copies still equal
wfdb's); this module applies the WFDB defaults (header(5)) and checks the
values, and is ~100x faster than `wfdb.rdheader`, which matters when thousands
of records are read. Every problem raises `CorruptFileError` or
`UnsupportedFormatError` with the line at fault.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from engine.errors import CorruptFileError, UnsupportedFormatError

#: wfdb.io.header.rx_record (wfdb 4.3.1), verbatim.
rx_record = re.compile('\n    [ \\t]* (?P<record_name>[-\\w]+)\n           /?(?P<n_seg>\\d*)\n    [ \\t]+ (?P<n_sig>\\d+)\n    [ \\t]* (?P<fs>\\d*\\.?\\d*)\n           /*(?P<counter_freq>-?\\d*\\.?\\d*)\n           \\(?(?P<base_counter>-?\\d*\\.?\\d*)\\)?\n    [ \\t]* (?P<sig_len>\\d*)\n    [ \\t]* (?P<base_time>\\d{,2}:?\\d{,2}:?\\d{,2}\\.?\\d{,6})\n    [ \\t]* (?P<base_date>\\d{,2}/?\\d{,2}/?\\d{,4})\n    ', re.VERBOSE)
#: wfdb.io.header.rx_signal (wfdb 4.3.1), verbatim.
rx_signal = re.compile('\n    [ \\t]* (?P<file_name>~?[-\\w]*\\.?[\\w]*)\n    [ \\t]+ (?P<fmt>\\d+)\n           x?(?P<samps_per_frame>\\d*)\n           :?(?P<skew>\\d*)\n           \\+?(?P<byte_offset>\\d*)\n    [ \\t]* (?P<adc_gain>-?\\d*\\.?\\d*e?[\\+-]?\\d*)\n           \\(?(?P<baseline>-?\\d*)\\)?\n           /?(?P<units>[\\w\\^\\-\\?%\\/]*)\n    [ \\t]* (?P<adc_res>\\d*)\n    [ \\t]* (?P<adc_zero>-?\\d*)\n    [ \\t]* (?P<init_value>-?\\d*)\n    [ \\t]* (?P<checksum>-?\\d*)\n    [ \\t]* (?P<block_size>\\d*)\n    [ \\t]* (?P<sig_name>[\\S]?[^\\t\\n\\r\\f\\v]*)\n    ', re.VERBOSE)

#: Most signals a header may declare (real databases have at most a few dozen).
MAX_SIGNALS = 1024
#: Highest plausible sampling rate in Hz.
MAX_FS_HZ = 1_000_000.0
#: WFDB default sampling rate and gain (header(5)).
DEFAULT_FS_HZ = 250.0
DEFAULT_GAIN = 200.0


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
                               f"in line {line!r}.") from None


def parse_header(text: str, where: str) -> WfdbHeader:
    """Parse the text of a .hea file.

    Args:
        text: the header file's content.
        where: the header path, for messages.

    Raises:
        CorruptFileError: a malformed record or signal line, impossible values.
        UnsupportedFormatError: a multi-segment record.
    """
    comments: list[str] = []
    lines: list[str] = []
    for raw in text.splitlines():
        stripped = raw.strip()
        if stripped.startswith("#"):
            comments.append(stripped.lstrip("#").strip())
        elif stripped:
            lines.append(stripped.split("#", 1)[0].rstrip() if "#" in stripped else stripped)
    if not lines:
        raise CorruptFileError(f"The WFDB header {where} has no record line. Open the .hea "
                               f"file that came with the record.")
    rec = rx_record.fullmatch(lines[0]) or rx_record.match(lines[0])
    if rec is None or not rec.group("n_sig"):
        raise CorruptFileError(f"The first line of the WFDB header {where} is not a record "
                               f"line ({lines[0][:80]!r}).")
    n_seg = _int(rec.group("n_seg"), 1, "segment count", lines[0])
    if n_seg > 1:
        raise UnsupportedFormatError(
            f"{where} is a multi-segment WFDB record ({n_seg} segments). Open one of its "
            f"segment headers instead, or convert it to a single-segment record (wfdb's "
            f"rdrecord + wrsamp).")
    n_sig = _int(rec.group("n_sig"), 0, "signal count", lines[0])
    if n_sig > MAX_SIGNALS:
        raise CorruptFileError(f"The WFDB header {where} claims {n_sig} signals; at most "
                               f"{MAX_SIGNALS} are supported. The header is probably damaged.")
    fs_text = rec.group("fs")
    try:
        fs = float(fs_text) if fs_text and fs_text != "." else DEFAULT_FS_HZ
    except ValueError:
        raise CorruptFileError(f"WFDB header {where}: sampling rate {fs_text!r} is not a number.") from None
    if not (math.isfinite(fs) and 0 < fs <= MAX_FS_HZ):
        raise CorruptFileError(f"WFDB header {where}: sampling rate {fs_text!r} Hz is impossible.")
    sig_len = rec.group("sig_len")
    n_samples = _int(sig_len, 0, "sample count", lines[0]) or None
    signal_lines = lines[1:]
    if len(signal_lines) < n_sig:
        raise CorruptFileError(f"The WFDB header {where} declares {n_sig} signals but has "
                               f"{len(signal_lines)} signal lines. The header is truncated.")
    signals = tuple(_parse_signal(line, where) for line in signal_lines[:n_sig])
    return WfdbHeader(record_name=rec.group("record_name"), n_segments=n_seg, fs=fs,
                      n_samples=n_samples, base_time=rec.group("base_time") or "",
                      base_date=rec.group("base_date") or "", signals=signals,
                      comments=tuple(comments))


_GAIN_RE = re.compile(r"^-?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$", re.IGNORECASE)


def _parse_signal(line: str, where: str) -> WfdbSignal:
    m = rx_signal.match(line)
    if m is None or not m.group("fmt"):
        raise CorruptFileError(f"WFDB header {where}: cannot read the signal line {line[:80]!r}.")
    g = m.groupdict()
    gain_text = g["adc_gain"]
    if gain_text and not _GAIN_RE.match(gain_text):
        raise CorruptFileError(f"WFDB header {where}: gain {gain_text!r} is not a number "
                               f"in line {line[:80]!r}.")
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
