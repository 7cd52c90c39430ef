"""Read an EDF, EDF+ (continuous) or BDF file holding ECG leads into an `EcgRecord`.

Library: `edfio` (Apache-2.0, pure Python on numpy, ~0.3 MB) decodes the data records,
EDF+ annotation channels ("EDF Annotations", parsed into `meta["annotations"]`) and
24-bit BDF. On the sample files it equals `pyedflib` (BSD, C extension; the test
oracle in the `dev` extra) exactly, and reads the 12 x 10 s EDF in a few ms. `wfdb`'s
EDF converter fails on EDF+ files with an annotation channel, so it is not used.

Before edfio sees the file, its fixed header is checked here against the file size and
the engine's limits (signal count, record count, samples per record), so a damaged
header cannot make any reader allocate what the file does not hold. EDF+D
(discontinuous) is refused: its records have gaps the samples do not show.

ECG leads are found by label: "I", "ECG I", "EKG V1", "ECG II-REF", "Lead aVR" (a
reference-electrode suffix such as "-REF", "-AVG" is dropped; any other "A-B" label is
a different derivation and stays an extra channel). Values go to mV from the channel's
physical dimension (uV, mV, V; an empty dimension is taken as mV and noted). The leads
must share one sampling rate: the rate of most ECG leads wins; leads and other
channels at another rate are dropped and named in `meta["warnings"]`; channels at the
lead rate that are not standard leads become extra channels in their own units.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

import numpy as np

from engine.errors import CorruptFileError, LeadError, UnsupportedFormatError
from engine.io.ecg_common import MAX_VALUES, check_signal_size, complete_limb_leads, iso_date, person_name
from engine.io.files import file_size, read_bytes
from engine.io.guard import corrupt_file_errors
from engine.io.leadnames import canonical_lead
from engine.io.units import mv_factor
from engine.records import EcgRecord, Source

log = logging.getLogger(__name__)

_MAX_SIGNALS = 512
_MAX_ANNOTATIONS = 10_000
_ANNOTATION_LABEL = "EDF Annotations"
_BDF_ANNOTATION_LABEL = "BDF Annotations"
_REFERENCE_SUFFIX = re.compile(r"\s*-\s*(REF|AVG|AV|CMS|COM|GND|M1|M2|A1|A2|WCT)\s*$", re.IGNORECASE)
_ECG_PREFIX = re.compile(r"^\s*(EKG|ECG)[\s_.:-]*", re.IGNORECASE)


def ecg_lead_of_label(label: str) -> str | None:
    """Canonical lead of an EDF channel label ("EKG V1" -> "V1", "ECG II-REF" -> "II"), else None."""
    text = _REFERENCE_SUFFIX.sub("", _ECG_PREFIX.sub("", str(label)))
    return canonical_lead(text) if text.strip() else None


def _field(header: bytes, start: int, size: int) -> str:
    return header[start:start + size].decode("latin-1").strip()


def _check_header(path: Path, head: bytes, size: int,
                  max_values: int = MAX_VALUES) -> tuple[bool, int]:
    """(is_bdf, number of signals) after checking the fixed header against the file size.

    `max_values`: most values (all signals) the file may declare; a windowed read
    (`engine.io.windowed`) raises it, since it never holds the whole file.

    Raises CorruptFileError / UnsupportedFormatError before any sample is read."""
    what = f"The EDF file {path}"
    if len(head) < 256:
        raise CorruptFileError(f"{what} is shorter than an EDF header ({len(head)} bytes).")
    bdf = head[:8] == b"\xffBIOSEMI"
    try:
        n_signals = int(_field(head, 252, 4))
        n_records = int(_field(head, 236, 8))
        header_bytes = int(_field(head, 184, 8))
        record_s = float(_field(head, 244, 8))
    except ValueError as exc:
        raise CorruptFileError(f"{what} has an unreadable header ({exc}). Export the ECG again.") from exc
    if _field(head, 192, 44).startswith("EDF+D") or _field(head, 192, 44).startswith("BDF+D"):
        raise UnsupportedFormatError(f"{what} is a discontinuous EDF+ recording (EDF+D), whose data "
                                     f"records have gaps; export it as continuous EDF/EDF+C.")
    if not 0 < n_signals <= _MAX_SIGNALS or header_bytes != 256 * (n_signals + 1):
        raise CorruptFileError(f"{what} declares {n_signals} signals in a {header_bytes}-byte header; "
                               f"the header is damaged.")
    if not (np.isfinite(record_s) and record_s >= 0):
        raise CorruptFileError(f"{what} declares data records of {record_s} s; the header is damaged.")
    if len(head) < header_bytes:
        raise CorruptFileError(f"{what} is truncated inside its header.")
    base = 256 + 216 * n_signals
    try:
        per_record = [int(_field(head, base + 8 * i, 8)) for i in range(n_signals)]
    except ValueError as exc:
        raise CorruptFileError(f"{what} has unreadable samples-per-record fields ({exc}).") from exc
    if any(not 0 < k <= MAX_VALUES for k in per_record):
        raise CorruptFileError(f"{what} declares impossible samples per data record; the header is damaged.")
    record_bytes = sum(per_record) * (3 if bdf else 2)
    available = (size - header_bytes) // record_bytes
    if n_records == -1:  # allowed while recording: the size says
        n_records = available
    if n_records <= 0 or n_records * sum(per_record) > max_values:
        raise CorruptFileError(f"{what} declares {n_records} data records of {sum(per_record)} values, "
                               f"which no ECG this program reads holds; the header is damaged.")
    if n_records > available:
        raise CorruptFileError(f"{what} is truncated: its header declares {n_records} data records, the "
                               f"file holds {available}. Copy or export the ECG again.")
    return bdf, n_signals


def read_edf(path: Path, annotations: bool = True) -> EcgRecord:
    """Read an EDF / EDF+C / BDF file.

    Returns:
        EcgRecord: `signal` float32 `[n_leads, n_samples]` in mV at the leads' native
        rate, standard leads in `LEADS` order (limb leads derived from I and II where
        the file lacks them, named in `meta["derived_leads"]`); `meta`: "patient_id",
        "patient_name", "sex", "birth_date", "acquired", "annotations" (list of
        {"onset_s", "duration_s", "text"}), "edf" (version, record duration), "warnings".

    Raises:
        CorruptFileError: header inconsistent with the file, truncated data.
        UnsupportedFormatError: EDF+D. LeadError: no ECG lead found by label.
    """
    size = file_size(path, "EDF file")
    head = read_bytes(path, 256 * (_MAX_SIGNALS + 1), "EDF file")
    bdf, _ = _check_header(path, head, size)
    with corrupt_file_errors(
            path, lambda error: f"The {'BDF' if bdf else 'EDF'} file {path} is damaged ({error}). "
                                f"Export the ECG again.",
            f"The EDF file {path} claims more data than can be read."):
        import edfio
        edf = (edfio.read_bdf if bdf else edfio.read_edf)(path, header_encoding="latin-1")
        return _record(edf, path, bdf, annotations)


def _record(edf, path: Path, bdf: bool, annotations: bool) -> EcgRecord:
    what = f"The {'BDF' if bdf else 'EDF'} file {path}"
    warnings: list[str] = []
    signals = [s for s in edf.signals if s.label not in (_ANNOTATION_LABEL, _BDF_ANNOTATION_LABEL)]
    leads = [(i, ecg_lead_of_label(s.label)) for i, s in enumerate(signals)]
    leads = [(i, lead) for i, lead in leads if lead is not None
             and mv_factor(signals[i].physical_dimension) is not None]
    if not leads:
        raise LeadError(f"{what} has no channel labelled as one of the 12 standard ECG leads (channels: "
                        f"{', '.join(s.label for s in signals) or 'none'}). Open a 12-lead ECG recording.")
    rates = [float(signals[i].sampling_frequency) for i, _ in leads]
    fs = max(set(rates), key=lambda r: (rates.count(r), r))
    check_signal_size(len(signals), max(1, int(round(edf.duration * fs))), fs, what)
    channels, extras, extra_names, extra_units = [], [], [], []
    for i, s in enumerate(signals):
        at_rate = float(s.sampling_frequency) == fs
        if any(i == j for j, _ in leads):
            if not at_rate:
                warnings.append(f"lead {s.label} dropped: sampled at {s.sampling_frequency:g} Hz, "
                                f"the other leads at {fs:g} Hz")
                continue
            unit = s.physical_dimension.strip()
            if not unit:
                warnings.append(f"lead {s.label} gives no unit; read as mV")
            channels.append((ecg_lead_of_label(s.label), s.data * mv_factor(unit)))
        elif at_rate:
            extras.append(s.data)
            extra_names.append(s.label)
            extra_units.append(s.physical_dimension.strip())
        else:
            warnings.append(f"channel {s.label} dropped: sampled at {s.sampling_frequency:g} Hz, "
                            f"the leads at {fs:g} Hz")
    lead_set = complete_limb_leads(channels)
    extra_signal = lead_set.extra_signal  # a second channel of a lead already taken
    names, units = list(lead_set.extra_names), ["mV"] * len(lead_set.extra_names)
    if extras:
        stacked = np.stack(extras).astype(np.float32)
        extra_signal = stacked if extra_signal is None else np.concatenate((extra_signal, stacked))
        names += extra_names
        units += extra_units
    meta: dict[str, Any] = {
        "original_lead_names": [signals[i].label for i, _ in leads
                                if float(signals[i].sampling_frequency) == fs],
        "derived_leads": list(lead_set.derived),
        "edf": {"format": "BDF" if bdf else ("EDF+" if str(edf.reserved).startswith("EDF+") else "EDF"),
                "record_duration_s": float(edf.data_record_duration)}}
    meta.update(_patient_meta(edf))
    if annotations:
        try:
            found = _annotations(edf)
        except Exception as exc:  # a damaged annotation channel costs only the annotations, so that
            found = []            # the signal-only read (annotations=False) accepts the same files
            warnings.append(f"annotations not read ({type(exc).__name__}: {exc})")
        if found:
            meta["annotations"] = found
    if warnings:
        for w in warnings:
            log.info("%s: %s", path, w)
        meta["warnings"] = warnings
    return EcgRecord(signal=lead_set.signal, fs=fs, leads=lead_set.leads, meta=meta,
                     source=Source(path=str(path), format="bdf" if bdf else "edf"),
                     extra_signal=extra_signal, extra_names=tuple(names), extra_units=tuple(units))


def _patient_meta(edf) -> dict[str, Any]:
    """EDF+ patient subfields (code, sex, birth date, name; "X" = unknown) and the start
    date and time; plain EDF's free-text identification kept as `patient_text`."""
    meta: dict[str, Any] = {}
    try:
        patient = edf.patient
        fields = {"patient_id": patient.code, "sex": patient.sex, "name": patient.name}
        if fields["patient_id"] not in ("", "X"):
            meta["patient_id"] = fields["patient_id"]
        if fields["sex"] in ("M", "F"):
            meta["sex"] = fields["sex"]
        if fields["name"] not in ("", "X") and (name := person_name(fields["name"].replace("_", " "))):
            meta["patient_name"] = name
        try:
            birth = patient.birthdate
            if birth is not None:
                meta["birth_date"] = iso_date(birth.isoformat())
        except Exception:  # "X" or an anonymised date
            pass
    except Exception:  # not EDF+-structured: the free text only
        text = str(getattr(edf, "local_patient_identification", "") or "").strip()
        if text:
            meta["patient_text"] = text
    try:
        meta["acquired"] = f"{edf.startdate.isoformat()} {edf.starttime.strftime('%H:%M:%S')}"
    except Exception:  # an anonymised or unreadable start date
        pass
    return meta


def _annotations(edf) -> list[dict[str, Any]]:
    out = []
    for a in list(edf.annotations)[:_MAX_ANNOTATIONS]:
        text = str(a.text).strip()
        if text:
            out.append({"onset_s": float(a.onset),
                        "duration_s": None if a.duration is None else float(a.duration), "text": text})
    return out
