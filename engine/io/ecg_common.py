"""What every vendor ECG reader (MUSE, Philips, HL7 aECG, SCP-ECG, EDF, DICOM) shares.

- `complete_limb_leads`: channels as the file names them -> the standard leads in
  `engine.constants.LEADS` order, with III, aVR, aVL, aVF derived from I and II
  (Einthoven / Goldberger, `engine.leads.limb_leads_from_i_ii`) where the file stores
  only the 8 independent leads; non-standard leads (V3R, V4R, V7, ...) stay extra
  channels under their own names, never mapped onto V3/V5.
- `DEVICE_MEASUREMENT_KEYS` / `device_measurements`: the measurements the cart wrote,
  in the vocabulary shared with the computed measurements, for
  `record.meta["device_measurements"]`.
- Statements, for `record.meta["statements"]`: a JSON-ready list of dicts
  `{"text": str, "code": str | None, "confirmed": bool | None}`, in file order:
  `text` the statement as a person reads it (never empty), `code` the vendor's or
  terminology's code for it when the file gives one (e.g. a GE statement code "SR",
  a SNOMED CT code "426783006"), `confirmed` True when the file says an over-reader
  confirmed the report, False when it says unconfirmed, None when it does not say.
  Build items with `statement(...)`; `statement_text` also accepts the plain strings
  older readers put there.
- Formatting for people: `person_name` (DICOM `Family^Given` -> "Family, Given"),
  `iso_date`, `iso_time`, `iso_datetime`, `unit_label` (UCUM `{H.B.}/min` -> "bpm").
- `check_signal_size`: refuse absurd declared sizes before any array is allocated.
- `median_beats_meta` / `lead_set_record`: the `meta["median_beats"]` entry and the
  `EcgRecord` a reader builds from its `LeadSet`s.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from engine.constants import DERIVABLE_LEADS, LEADS
from engine.errors import CorruptFileError
from engine.io.leadnames import canonical_lead
from engine.leads import limb_leads_from_i_ii
from engine.records import EcgRecord, Source

#: Keys of `record.meta["device_measurements"]` (shared with the computed measurements):
#: heart rate (beats/min), RR, PR, P duration, QRS duration, QT, QTc (ms), P, QRS, T frontal
#: axes (degrees). qtc_ms is the QTc the device reports as its main one (GE QTCorrected and
#: Philips qtcb: Bazett); other corrections stay in the raw `measurements` list.
DEVICE_MEASUREMENT_KEYS: tuple[str, ...] = (
    "hr_bpm", "rr_ms", "pr_ms", "p_ms", "qrs_ms", "qt_ms", "qtc_ms",
    "p_axis_deg", "qrs_axis_deg", "t_axis_deg")

#: How people read each device measurement: (label, unit).
DEVICE_MEASUREMENT_LABELS: dict[str, tuple[str, str]] = {
    "hr_bpm": ("HR", "bpm"), "rr_ms": ("RR", "ms"), "pr_ms": ("PR", "ms"), "p_ms": ("P", "ms"),
    "qrs_ms": ("QRS", "ms"), "qt_ms": ("QT", "ms"), "qtc_ms": ("QTc", "ms"),
    "p_axis_deg": ("P axis", "°"), "qrs_axis_deg": ("QRS axis", "°"), "t_axis_deg": ("T axis", "°")}

#: Most values (leads x samples) a reader may allocate for one record: 64 Mi float32
#: (256 MiB), e.g. 12 leads x 24 h at 60 Hz or 12 leads x 93 min at 1 kHz. A resting
#: ECG holds about 60 000.
MAX_VALUES: int = 64 * 1024 * 1024
#: Highest sampling rate a reader accepts (Hz).
MAX_FS_HZ: float = 100_000.0


@dataclass(frozen=True)
class LeadSet:
    """Result of `complete_limb_leads`.

    Attributes:
        signal: float32 `[n_leads, n_samples]`: the standard leads in `LEADS` order
            (stored and derived), in the input's units (mV for the readers).
        leads: canonical names of the rows of `signal`.
        derived: names of the rows computed from I and II (for `meta["derived_leads"]`).
        original_names: the file's label of each stored row of `signal`, in row order
            ("" for a derived row).
        extra_signal: float32 `[n_extra, n_samples]` or None: channels that are not one
            of the 12 standard leads (V3R, V7, ...), in file order.
        extra_names: a readable name of each extra row ("V3R", not "MDC_ECG_LEAD_V3R").
    """

    signal: np.ndarray
    leads: tuple[str, ...]
    derived: tuple[str, ...]
    original_names: tuple[str, ...]
    extra_signal: np.ndarray | None
    extra_names: tuple[str, ...]


_EXTRA_PREFIX_RE = re.compile(r"^(?:MDC_ECG_LEAD_|ECG_LEAD_|LEAD[_ ]?|ECG[_ ])", re.IGNORECASE)


def extra_lead_name(label: str) -> str:
    """Readable name of a non-standard channel label: "MDC_ECG_LEAD_V3R" -> "V3R",
    "Lead V7" -> "V7"; other labels stripped as they are."""
    text = _EXTRA_PREFIX_RE.sub("", str(label).strip()).strip()
    return text or str(label).strip() or "?"


def complete_limb_leads(channels: Iterable[tuple[str, np.ndarray]]) -> LeadSet:
    """The standard 12 leads from a file's channels, deriving the limb leads it lacks.

    Args:
        channels: (label as the file writes it, samples float `[n_samples]`) per channel,
            in file order, all of the same length and units. Labels are matched with
            `engine.io.leadnames.canonical_lead` ("I", "Lead II", "MDC_ECG_LEAD_V1", "C2").

    Returns:
        LeadSet: when I and II are present, each of III, aVR, aVL, aVF the file lacks is
        derived (III = II - I, aVR = -(I + II)/2, aVL = I - II/2, aVF = II - I/2);
        leads stored in the file are kept as stored. A second channel claiming a lead
        already taken and every non-standard channel go to `extra_signal`.
        `signal` is empty `[0, n]` when no standard lead is present (the caller
        raises `LeadError`).

    Raises:
        ValueError: channels of different lengths (readers check lengths first and
            raise `CorruptFileError` with the file's name).
    """
    stored: dict[str, np.ndarray] = {}
    names: dict[str, str] = {}
    extras: list[np.ndarray] = []
    extra_names: list[str] = []
    n_samples = 0
    for label, samples in channels:
        samples = np.asarray(samples)
        n_samples = max(n_samples, samples.shape[-1])
        lead = canonical_lead(label)
        if lead is not None and lead not in stored:
            stored[lead] = samples
            names[lead] = str(label)
        else:
            extras.append(samples)
            extra_names.append(extra_lead_name(label))
    lengths = {x.shape[-1] for x in stored.values()} | {x.shape[-1] for x in extras}
    if len(lengths) > 1:
        raise ValueError(f"channels of different lengths: {sorted(lengths)} samples")
    derived: list[str] = []
    if "I" in stored and "II" in stored and any(lead not in stored for lead in DERIVABLE_LEADS):
        limb = limb_leads_from_i_ii(stored["I"].astype(np.float64), stored["II"].astype(np.float64))
        for lead in DERIVABLE_LEADS:
            if lead not in stored:
                stored[lead] = limb[lead]
                derived.append(lead)
    order = tuple(lead for lead in LEADS if lead in stored)
    signal = (np.stack([stored[lead] for lead in order]).astype(np.float32, copy=False) if order
              else np.zeros((0, n_samples), dtype=np.float32))
    return LeadSet(
        signal=np.ascontiguousarray(signal, dtype=np.float32), leads=order,
        derived=tuple(lead for lead in order if lead in derived),
        original_names=tuple(names.get(lead, "") for lead in order),
        extra_signal=np.stack(extras).astype(np.float32) if extras else None,
        extra_names=tuple(extra_names))


def to_float(value: Any) -> float | None:
    """`value` (number or text such as " 72 ", "1.5e2") as a finite float, else None."""
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(str(value).strip()) if isinstance(value, (str, bytes)) else float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def device_measurements(values: Mapping[str, Any]) -> dict[str, float]:
    """`record.meta["device_measurements"]` from {key: value}: floats, in
    `DEVICE_MEASUREMENT_KEYS` order, only the keys of that vocabulary whose value is a
    finite number (vendors write "", "-", 0xFFFF-style sentinels are the caller's to drop)."""
    out: dict[str, float] = {}
    for key in DEVICE_MEASUREMENT_KEYS:
        number = to_float(values.get(key))
        if number is not None:
            out[key] = number
    return out


def format_device_measurements(values: Mapping[str, Any]) -> list[str]:
    """Readable items, e.g. ["HR 72 bpm", "QRS 96 ms", "QRS axis 45°"], in vocabulary order."""
    items = []
    for key in DEVICE_MEASUREMENT_KEYS:
        number = to_float(values.get(key)) if isinstance(values, Mapping) else None
        if number is None:
            continue
        label, unit = DEVICE_MEASUREMENT_LABELS[key]
        text = f"{number:.0f}" if abs(number - round(number)) < 0.05 else f"{number:.1f}"
        items.append(f"{label} {text}{unit}" if unit == "°" else f"{label} {text} {unit}")
    return items


def statement(text: str, code: str | None = None, confirmed: bool | None = None) -> dict[str, Any]:
    """One item of `record.meta["statements"]` (see the module docstring)."""
    code_text = str(code).strip() if code is not None else ""
    return {"text": " ".join(str(text).split()), "code": code_text or None,
            "confirmed": None if confirmed is None else bool(confirmed)}


def statement_text(item: Any) -> str:
    """The text of a statements item: a `statement(...)` dict or a plain string."""
    if isinstance(item, Mapping):
        return str(item.get("text") or item.get("code") or "").strip()
    return str(item).strip()


def statement_texts(items: Any) -> list[str]:
    """The non-empty texts of `record.meta["statements"]` (dicts or strings), in order."""
    if not items or isinstance(items, (str, bytes, Mapping)):
        items = [items] if items else []
    return [text for item in items if (text := statement_text(item))]


def statements_confirmed(items: Any) -> bool | None:
    """True / False when every statement that says so agrees; None when none says or they differ."""
    flags = {item.get("confirmed") for item in items or [] if isinstance(item, Mapping)} - {None}
    return flags.pop() if len(flags) == 1 else None


def person_name(value: Any) -> str | None:
    """A person's name for people: DICOM / HL7 `Family^Given^Middle^Prefix^Suffix` ->
    "Family, Given Middle" (prefix and suffix around it); other text stripped; None when blank."""
    text = str(value).strip() if value is not None else ""
    if not text:
        return None
    if "^" not in text:
        return " ".join(text.split())
    parts = [p.strip() for p in text.split("=")[0].split("^")] + [""] * 5
    family, given, middle, prefix, suffix = parts[:5]
    first = " ".join(x for x in (prefix, given, middle) if x)
    name = ", ".join(x for x in (family, first) if x)
    return (f"{name} {suffix}" if suffix else name).strip() or None


_DATE_PATTERNS = (
    (re.compile(r"^(\d{4})(\d{2})(\d{2})"), (1, 2, 3)),            # DICOM / HL7 YYYYMMDD...
    (re.compile(r"^(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})"), (1, 2, 3)),  # ISO 2003-12-01
    (re.compile(r"^(\d{1,2})[-/](\d{1,2})[-/](\d{4})$"), (3, 1, 2)),   # GE MUSE MM-DD-YYYY
    (re.compile(r"^(\d{1,2})\.(\d{1,2})\.(\d{4})$"), (3, 2, 1)),       # DD.MM.YYYY
)


def iso_date(value: Any) -> str | None:
    """"YYYY-MM-DD" from "20021122", "2002-11-22", "11-22-2002" (GE MUSE: month first),
    "22.11.2002"; None when blank or not a valid date (the text is kept by callers)."""
    text = str(value).strip() if value is not None else ""
    for pattern, (y, m, d) in _DATE_PATTERNS:
        match = pattern.match(text)
        if match:
            year, month, day = (int(match.group(i)) for i in (y, m, d))
            if 1 <= month <= 12 and 1 <= day <= 31 and 1800 <= year <= 2200:
                return f"{year:04d}-{month:02d}-{day:02d}"
    return None


_TIME_RE = re.compile(r"^(\d{1,2}):?(\d{2})(?::?(\d{2}))?")


def iso_time(value: Any) -> str | None:
    """"HH:MM:SS" (or "HH:MM") from "091000", "091000.123", "09:10:00", "9:10"; None when not a time."""
    text = str(value).strip() if value is not None else ""
    match = _TIME_RE.match(text)
    if not match:
        return None
    hour, minute = int(match.group(1)), int(match.group(2))
    second = int(match.group(3)) if match.group(3) is not None else None
    if hour > 23 or minute > 59 or (second is not None and second > 60):
        return None
    return f"{hour:02d}:{minute:02d}" + (f":{second:02d}" if second is not None else "")


def iso_datetime(date: Any, time: Any = None) -> str | None:
    """"YYYY-MM-DD HH:MM:SS" from a date and a time in any form `iso_date` / `iso_time`
    read, or from one HL7 / DICOM timestamp "YYYYMMDDHHMMSS[.fff][+zzzz]" given as `date`.
    Parts that do not parse are left out; None when neither does."""
    date_text = str(date).strip() if date is not None else ""
    if time is None and re.match(r"^\d{12}", date_text):
        time = date_text[8:]
        date_text = date_text[:8]
    parts = [x for x in (iso_date(date_text), iso_time(time) if time is not None else None) if x]
    return " ".join(parts) or None


_UNIT_LABELS: dict[str, str] = {
    "{h.b.}/min": "bpm", "{beats}/min": "bpm", "/min": "bpm", "bpm": "bpm", "1/min": "bpm",
    "beats/min": "bpm", "{beat}/min": "bpm",
    "ms": "ms", "msec": "ms", "s": "s", "sec": "s",
    "deg": "°", "degree": "°", "degrees": "°", "°": "°",
    "uv": "µV", "µv": "µV", "μv": "µV", "mv": "mV", "v": "V", "nv": "nV",
    "mm[hg]": "mmHg", "mmhg": "mmHg", "hz": "Hz", "a": "years", "{years}": "years",
}


def unit_label(unit: Any) -> str:
    """How people write a UCUM (or vendor) unit: "{H.B.}/min" -> "bpm", "deg" -> "°",
    "uV" -> "µV", "mm[Hg]" -> "mmHg"; unknown units returned as written ("" for None)."""
    text = str(unit).strip() if unit is not None else ""
    return _UNIT_LABELS.get(text.lower(), text)


def check_signal_size(n_leads: int, n_samples: int, fs: float, what: str, *,
                      max_values: int = MAX_VALUES) -> None:
    """Refuse declared sizes no ECG has before allocating `[n_leads, n_samples]`.

    Raises:
        CorruptFileError: n_leads or n_samples not positive, their product above
            `max_values`, or fs not a finite rate in (0, MAX_FS_HZ]. `what` names the file
            in the message (e.g. "The GE MUSE XML file /x/y.xml").
    """
    if not (isinstance(fs, (int, float)) and math.isfinite(fs) and 0 < fs <= MAX_FS_HZ):
        raise CorruptFileError(f"{what} declares an impossible sampling rate ({fs} Hz). The file is "
                               f"damaged; export the ECG again.")
    if n_leads <= 0 or n_samples <= 0 or n_leads * n_samples > max_values:
        raise CorruptFileError(f"{what} declares {n_leads} leads x {n_samples} samples, which no ECG "
                               f"this program reads holds (at most {max_values} values). The file is "
                               f"damaged; export the ECG again.")


def median_beats_meta(channels: Iterable[tuple[str, np.ndarray]], fs: float) -> dict[str, Any] | None:
    """`meta["median_beats"]` from median-beat channels (label, float mV `[m]`) at `fs` Hz.

    Returns:
        {"signal" float32 `[k, m]` mV, "fs", "leads", "derived"} as `complete_limb_leads`
        completes them, or None when no channel is a standard lead.
    """
    beats = complete_limb_leads(channels)
    if not beats.leads:
        return None
    return {"signal": beats.signal, "fs": fs, "leads": beats.leads, "derived": beats.derived}


def lead_set_record(lead_set: LeadSet, fs: float, meta: dict[str, Any], path: Any, fmt: str) -> EcgRecord:
    """The `EcgRecord` of a reader's rhythm `lead_set` at `fs` Hz: its standard leads as
    `signal`, its extra channels (in mV) as `extra_signal`, `source` (str(path), fmt)."""
    return EcgRecord(signal=lead_set.signal, fs=fs, leads=lead_set.leads, meta=meta,
                     source=Source(path=str(path), format=fmt),
                     extra_signal=lead_set.extra_signal, extra_names=lead_set.extra_names,
                     extra_units=("mV",) * len(lead_set.extra_names))
