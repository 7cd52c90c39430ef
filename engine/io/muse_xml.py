"""Read a GE MUSE XML resting ECG (root element `RestingECG`) into an `EcgRecord`.

Written here (no maintained Python library reads MUSE XML; `ecgdatakit` is used as
an oracle in the tests where installed). Layout read:
- `Waveform` elements, `WaveformType` "Rhythm" (the signal) and "Median" (median
  beats), sampling rate `SampleBase * 10**SampleExponent`;
- per lead `LeadData`: `LeadID`, `LeadSampleCountTotal`, `LeadAmplitudeUnitsPerBit`,
  `LeadAmplitudeUnits` (MICROVOLTS / MILLIVOLTS), `WaveFormData` (base64 of
  little-endian int16) checked against `LeadDataCRC32` when present. Carts store
  the 8 independent leads (I, II, V1-V6); III, aVR, aVL, aVF are derived
  (`engine.io.ecg_common.complete_limb_leads`) and named in `meta["derived_leads"]`;
- `RestingECGMeasurements` -> `device_measurements` and the raw `measurements`;
- `Diagnosis` statements (lines assembled from `StmtText` pieces up to each
  `ENDSLINE` flag), confirmed per `TestDemographics/Status`; `OriginalDiagnosis`
  (the cart's own reading) as `original_statements` when it differs;
- patient and acquisition fields (MUSE writes dates month first: MM-DD-YYYY).
"""

from __future__ import annotations

import logging
import zlib
from pathlib import Path
from typing import Any
from xml.etree.ElementTree import Element

import numpy as np

from engine.errors import CorruptFileError, LeadError
from engine.io.demographics import age_sex_meta
from engine.io.ecg_common import (
    check_signal_size, complete_limb_leads, device_measurements, iso_date, iso_datetime, lead_set_record,
    median_beats_meta, person_name, statement, to_float)
from engine.io.units import mv_factor
from engine.io.xml_common import child, children, decode_base64, decode_xml_file, text
from engine.records import EcgRecord

log = logging.getLogger(__name__)

WHAT = "GE MUSE XML file"

#: RestingECGMeasurements element -> (device measurement key or None, UCUM unit).
_MEASUREMENTS: dict[str, tuple[str | None, str]] = {
    "VentricularRate": ("hr_bpm", "{H.B.}/min"), "AtrialRate": (None, "{H.B.}/min"),
    "PRInterval": ("pr_ms", "ms"), "QRSDuration": ("qrs_ms", "ms"), "QTInterval": ("qt_ms", "ms"),
    "QTCorrected": ("qtc_ms", "ms"), "QTcFrederica": (None, "ms"), "PAxis": ("p_axis_deg", "deg"),
    "RAxis": ("qrs_axis_deg", "deg"), "TAxis": ("t_axis_deg", "deg"), "QRSCount": (None, "1"),
    "QOnset": (None, "{sample}"), "QOffset": (None, "{sample}"), "POnset": (None, "{sample}"),
    "POffset": (None, "{sample}"), "TOffset": (None, "{sample}"), "ECGSampleBase": (None, "Hz"),
    "ECGSampleExponent": (None, "1")}
_UNITS = {"MICROVOLTS": "uV", "MILLIVOLTS": "mV", "NANOVOLTS": "nV", "VOLTS": "V"}


def read_muse_xml(path: Path, annotations: bool = True) -> EcgRecord:
    """Read a GE MUSE XML file.

    Args:
        path: the .xml file (root element RestingECG).
        annotations: False skips decoding the median beats (batch scoring); device
            measurements and statements are read either way (they cost microseconds).

    Returns:
        EcgRecord: `signal` float32 `[12, n]` mV at the file's rate (500 Hz on the
        samples), `meta`: patient_id, patient_name, birth_date (YYYY-MM-DD), age, sex,
        acquired ("YYYY-MM-DD HH:MM:SS"), device, institution, device_measurements,
        measurements, statements, original_statements, median_beats ({"signal" float32
        `[12, m]` mV, "fs", "leads", "derived"}), derived_leads, original_lead_names.

    Raises:
        CorruptFileError: not well-formed, bad base64, CRC mismatch, truncated lead,
            impossible sizes. LeadError: no rhythm waveform with a standard lead.
    """
    return decode_xml_file(path, WHAT, _decode, annotations)


def _decode(root: Element, path: Path, annotations: bool) -> EcgRecord:
    waveforms = {(text(w, "WaveformType") or "").upper(): w for w in children(root, "Waveform")}
    rhythm = waveforms.get("RHYTHM")
    if rhythm is None:
        raise LeadError(f"The {WHAT} {path} has no rhythm waveform (only "
                        f"{', '.join(waveforms) or 'no waveforms'}); it holds no full-length ECG. "
                        f"Export the ECG with its waveforms from MUSE.")
    fs, channels = _decode_waveform(rhythm, path, "rhythm")
    lead_set = complete_limb_leads(channels)
    if not lead_set.leads:
        raise LeadError(f"The {WHAT} {path} has none of the 12 standard ECG leads (leads: "
                        f"{', '.join(label for label, _ in channels)}).")
    meta: dict[str, Any] = {"derived_leads": lead_set.derived,
                            "original_lead_names": [n for n in lead_set.original_names if n]}
    meta.update(_patient_meta(root))
    meta.update(_measurement_meta(root))
    meta.update(_statement_meta(root))
    median = waveforms.get("MEDIAN")
    if annotations and median is not None:
        try:
            m_fs, m_channels = _decode_waveform(median, path, "median beat")
            median_beats = median_beats_meta(m_channels, m_fs)
            if median_beats is not None:
                meta["median_beats"] = median_beats
        except CorruptFileError as exc:  # the rhythm is still usable
            log.warning("median beats of %s not read: %s", path, exc)
            meta.setdefault("warnings", []).append(f"median beats not read: {exc}")
    return lead_set_record(lead_set, fs, meta, path, "muse-xml")


def _decode_waveform(waveform: Element, path: Path, kind: str) -> tuple[float, list[tuple[str, np.ndarray]]]:
    """(fs Hz, [(lead id, float64 samples in mV)]) of one Waveform element."""
    base = to_float(text(waveform, "SampleBase"))
    exponent = to_float(text(waveform, "SampleExponent")) or 0.0
    if base is None or not -3 <= exponent <= 3:
        raise CorruptFileError(f"The {kind} waveform of the {WHAT} {path} has no valid sampling rate "
                               f"(SampleBase {text(waveform, 'SampleBase')!r}). Export the ECG again.")
    fs = base * 10.0 ** exponent
    leads = children(waveform, "LeadData")
    channels: list[tuple[str, np.ndarray]] = []
    for lead in leads:
        label = text(lead, "LeadID") or f"lead {len(channels) + 1}"
        count = to_float(text(lead, "LeadSampleCountTotal"))
        n = int(count) if count is not None and count == int(count) else -1
        check_signal_size(len(leads), n, fs, f"The {kind} waveform of the {WHAT} {path} (lead {label})")
        size = int(to_float(text(lead, "LeadSampleSize")) or 2)
        if size != 2:
            raise CorruptFileError(f"Lead {label} of the {WHAT} {path} stores {size}-byte samples; "
                                   f"MUSE files store 2-byte samples. The file is damaged.")
        data = decode_base64(text(lead, "WaveFormData"), path, WHAT, f"lead {label} ({kind})")
        crc = text(lead, "LeadDataCRC32")
        if crc is not None and crc.isdigit() and zlib.crc32(data) != int(crc):
            raise CorruptFileError(f"The waveform data of lead {label} ({kind}) in the {WHAT} {path} "
                                   f"fails its checksum (CRC32); the file is damaged. Export the ECG "
                                   f"again.")
        if len(data) < 2 * n:
            raise CorruptFileError(f"Lead {label} ({kind}) of the {WHAT} {path} is truncated: "
                                   f"{n} samples need {2 * n} bytes, the file has {len(data)}.")
        per_bit = to_float(text(lead, "LeadAmplitudeUnitsPerBit"))
        units = (text(lead, "LeadAmplitudeUnits") or "MICROVOLTS").upper()
        factor = mv_factor(_UNITS.get(units, units))
        if per_bit is None or per_bit <= 0 or factor is None:
            raise CorruptFileError(f"Lead {label} ({kind}) of the {WHAT} {path} has no valid amplitude "
                                   f"scale ({text(lead, 'LeadAmplitudeUnitsPerBit')!r} "
                                   f"{units.lower()} per bit). Export the ECG again.")
        raw = np.frombuffer(data, dtype="<i2", count=n)
        channels.append((label, raw * (per_bit * factor)))
    if not channels:
        raise LeadError(f"The {kind} waveform of the {WHAT} {path} has no leads.")
    lengths = {c.shape[0] for _, c in channels}
    if len(lengths) > 1:
        n = min(lengths)
        log.warning("%s: %s leads differ in length %s; cut to %d", path, kind, sorted(lengths), n)
        channels = [(label, c[:n]) for label, c in channels]
    return fs, channels


def _patient_meta(root: Element) -> dict[str, Any]:
    patient = child(root, "PatientDemographics")
    test = child(root, "TestDemographics")
    meta: dict[str, Any] = {}
    if (pid := text(patient, "PatientID")) is not None:
        meta["patient_id"] = pid
    last, first = text(patient, "PatientLastName"), text(patient, "PatientFirstName")
    if last or first:
        meta["patient_name"] = person_name(f"{last or ''}^{first or ''}")
    birth = text(patient, "DateofBirth")
    if birth:
        meta["birth_date"] = iso_date(birth) or birth
    units = (text(patient, "AgeUnits") or "YEARS").upper()
    meta.update(age_sex_meta(text(patient, "PatientAge") if units == "YEARS" else None,
                             text(patient, "Gender")))
    acquired = iso_datetime(text(test, "AcquisitionDate"), text(test, "AcquisitionTime"))
    if acquired:
        meta["acquired"] = acquired
    muse = text(root, "MuseInfo/MuseVersion")
    device = {key: value for key, value in (
        ("model", text(test, "AcquisitionDevice")), ("software", text(test, "AcquisitionSoftwareVersion")),
        ("cart", text(test, "CartNumber")), ("system", f"MUSE {muse}" if muse else None)) if value}
    if device:
        meta["device"] = device
    if (site := text(test, "SiteName")) is not None:
        meta["institution"] = site
    return meta


def _measurement_meta(root: Element) -> dict[str, Any]:
    block = child(root, "RestingECGMeasurements")
    if block is None:
        return {}
    raw: list[dict[str, Any]] = []
    values: dict[str, float] = {}
    for item in block:
        number = to_float(item.text)
        if number is None:
            continue
        key, unit = _MEASUREMENTS.get(item.tag, (None, ""))
        raw.append({"name": item.tag, "value": number, "units": unit, "group": None})
        if key is not None:
            values[key] = number
    on, off, base = (to_float(text(block, tag)) for tag in ("POnset", "POffset", "ECGSampleBase"))
    if on is not None and off is not None and base and off > on:  # P duration from its fiducials
        values["p_ms"] = (off - on) * 1000.0 / base
    out: dict[str, Any] = {}
    measurements = device_measurements(values)
    if measurements:
        out["device_measurements"] = measurements
    if raw:
        out["measurements"] = raw
    return out


def _statement_lines(block: Element | None, confirmed: bool | None) -> list[dict[str, Any]]:
    """Statements of a Diagnosis block: StmtText pieces joined up to each ENDSLINE flag."""
    lines: list[dict[str, Any]] = []
    pieces: list[str] = []
    for item in children(block, "DiagnosisStatement"):
        piece = text(item, "StmtText")
        if piece:
            pieces.append(piece)
        flags = {(f.text or "").strip().upper() for f in children(item, "StmtFlag")}
        if "ENDSLINE" in flags and pieces:
            lines.append(statement(_join(pieces), None, confirmed))
            pieces = []
    if pieces:
        lines.append(statement(_join(pieces), None, confirmed))
    return lines


def _join(pieces: list[str]) -> str:
    out = pieces[0]
    for piece in pieces[1:]:
        out += piece if piece[:1] in ",.;:)" else " " + piece
    return out


def _statement_meta(root: Element) -> dict[str, Any]:
    status = (text(root, "TestDemographics/Status") or "").upper()
    confirmed = True if status == "CONFIRMED" else False if status == "UNCONFIRMED" else None
    current = _statement_lines(child(root, "Diagnosis"), confirmed)
    original = _statement_lines(child(root, "OriginalDiagnosis"), None)
    out: dict[str, Any] = {}
    if current:
        out["statements"] = current
    if original and [s["text"] for s in original] != [s["text"] for s in current]:
        out["original_statements"] = original
    return out
