"""Read an HL7 annotated ECG (FDA aECG, HL7 v3 `AnnotatedECG`) into an `EcgRecord`.

Written here: the FDA's `aecg` package pulls in pandas and reads into data frames,
and no other maintained reader exists; `ecgdatakit` is the tests' oracle where
installed. Read:
- the rhythm series (`series` coded RHYTHM, else the first series) and its first
  sequence set holding leads: the time sequence (GLIST_TS / GLIST_PQ `increment`,
  in s or ms) gives the sampling rate, any rate (100 Hz included); each lead
  sequence (SLIST_PQ) is `origin + scale * digits` in their units (µV, mV, V), with
  its own origin and scale, converted to mV. Lead codes are MDC (`MDC_ECG_LEAD_I`,
  `MDC_ECG_LEAD_AVR`, ...); leads the file lacks among III, aVR, aVL, aVF are derived
  from I and II (`meta["derived_leads"]`), non-standard leads kept as extra channels;
- the representative beat (`derivedSeries` coded REPRESENTATIVE_BEAT) as
  `median_beats`;
- global measurement annotations (MDC_ECG_HEART_RATE, MDC_ECG_TIME_PD_PR / P / QRS /
  QT / QTc / RR, MDC_ECG_ANGLE_P/QRS/T_FRONT, also with the `_GL` suffix), those
  without a lead in their region of interest, as `device_measurements`; all PQ-valued
  annotations as `measurements`; rhythm and interpretation annotations as statements;
- subject id, name, sex, birth time, reported age, effective time, device.
Ids are kept as written (roots need not be UUIDs).
"""

from __future__ import annotations

import logging
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
from engine.io.xml_common import child, children, decode_xml_file, local_name, text
from engine.records import EcgRecord

log = logging.getLogger(__name__)

WHAT = "HL7 aECG file"
_XSI_TYPE = "{http://www.w3.org/2001/XMLSchema-instance}type"
#: MDC measurement code (upper case, without a "_GL" suffix) -> device measurement key.
_CODES: dict[str, str] = {
    "MDC_ECG_HEART_RATE": "hr_bpm", "MDC_ECG_TIME_PD_RR": "rr_ms", "MDC_ECG_TIME_PD_PR": "pr_ms",
    "MDC_ECG_TIME_PD_P": "p_ms", "MDC_ECG_TIME_PD_QRS": "qrs_ms", "MDC_ECG_TIME_PD_QT": "qt_ms",
    "MDC_ECG_TIME_PD_QTC": "qtc_ms", "MDC_ECG_TIME_PD_QTCB": "qtc_ms",
    "MDC_ECG_ANGLE_P_FRONT": "p_axis_deg", "MDC_ECG_ANGLE_QRS_FRONT": "qrs_axis_deg",
    "MDC_ECG_ANGLE_T_FRONT": "t_axis_deg"}
_TIME_TO_MS = {"ms": 1.0, "s": 1000.0, "us": 1e-3}
_STATEMENT_CODES = ("MDC_ECG_RHY", "MDC_ECG_INTERPRETATION", "MDC_ECG_INTERPRETATION_STATEMENT",
                    "MDC_ECG_INTERPRETATION_SUMMARY")


def read_hl7_aecg(path: Path, annotations: bool = True) -> EcgRecord:
    """Read an HL7 aECG file.

    Args:
        path: the .xml file (root element AnnotatedECG).
        annotations: False skips the representative beat (batch scoring); device
            measurements and statements are read either way.

    Returns:
        EcgRecord: `signal` float32 `[12, n]` mV at the file's rate, `meta`: patient_id,
        patient_name, birth_date, age, sex, acquired, device, document_id,
        device_measurements, measurements, statements, median_beats, derived_leads.

    Raises:
        CorruptFileError: damaged XML, digits that are not numbers, leads of different
            lengths, impossible sizes or rates. LeadError: no rhythm series with a
            standard lead.
    """
    return decode_xml_file(path, WHAT, _decode, annotations)


def _code(elem: Element | None) -> str:
    node = child(elem, "code")
    return (node.get("code") or "") if node is not None else ""


def _decode(root: Element, path: Path, annotations: bool) -> EcgRecord:
    series_list = children(root, "component/series")
    rhythm = next((s for s in series_list if _code(s).upper() == "RHYTHM"),
                  series_list[0] if series_list else None)
    if rhythm is None:
        raise LeadError(f"The {WHAT} {path} holds no waveform series. Export the ECG with its "
                        f"waveforms.")
    fs, channels = _sequence_set(rhythm, path, "rhythm")
    lead_set = complete_limb_leads(channels)
    if not lead_set.leads:
        raise LeadError(f"The {WHAT} {path} has none of the 12 standard ECG leads (sequences: "
                        f"{', '.join(label for label, _ in channels)}).")
    meta: dict[str, Any] = {"derived_leads": lead_set.derived,
                            "original_lead_names": [x for x in lead_set.original_names if x]}
    document_id = child(root, "id")
    if document_id is not None and (document_id.get("root") or document_id.get("extension")):
        meta["document_id"] = ":".join(x for x in (document_id.get("root"), document_id.get("extension")) if x)
    meta.update(_patient_meta(root, rhythm))
    derived = [d for d in children(rhythm, "derivation/derivedSeries")]
    meta.update(_annotation_meta([rhythm] + derived))
    if annotations:
        beat = next((d for d in derived if "REPRESENTATIVE" in _code(d).upper()), None)
        if beat is not None:
            try:
                m_fs, m_channels = _sequence_set(beat, path, "representative beat")
                median_beats = median_beats_meta(m_channels, m_fs)
                if median_beats is not None:
                    meta["median_beats"] = median_beats
            except (CorruptFileError, LeadError) as exc:  # the rhythm is still usable
                log.warning("representative beat of %s not read: %s", path, exc)
                meta.setdefault("warnings", []).append(f"representative beat not read: {exc}")
    return lead_set_record(lead_set, fs, meta, path, "hl7-aecg")


def _sequence_set(series: Element, path: Path, kind: str) -> tuple[float, list[tuple[str, np.ndarray]]]:
    """(fs Hz, [(MDC lead code, float64 mV)]) of the first sequence set of `series` with leads."""
    where = f"The {kind} series of the {WHAT} {path}"
    for sequence_set in children(series, "component/sequenceSet"):
        fs: float | None = None
        leads: list[tuple[str, Element]] = []
        for sequence in children(sequence_set, "component/sequence"):
            code = _code(sequence)
            value = child(sequence, "value")
            if value is None:
                continue
            kind_of_value = (value.get(_XSI_TYPE) or "").upper()
            if code.upper().startswith("TIME_") or kind_of_value.startswith("GLIST"):
                increment = child(value, "increment")
                step = to_float(increment.get("value")) if increment is not None else None
                unit = (increment.get("unit") or "s").lower() if increment is not None else "s"
                if step is not None and step > 0 and unit in _TIME_TO_MS:
                    fs = 1000.0 / (step * _TIME_TO_MS[unit])
            elif kind_of_value == "SLIST_PQ" or child(value, "digits") is not None:
                leads.append((code, value))
        if not leads:
            continue
        if fs is None:
            raise CorruptFileError(f"{where} gives no valid sampling interval (time sequence "
                                   f"increment). Export the ECG again.")
        channels = [(code, _lead_mv(code, value, fs, len(leads), where)) for code, value in leads]
        lengths = {c.size for _, c in channels}
        if len(lengths) > 1:
            raise CorruptFileError(f"{where} has leads of different lengths ({sorted(lengths)} samples); "
                                   f"the file is damaged. Export the ECG again.")
        return fs, channels
    raise LeadError(f"{where} holds no lead sequences. Export the ECG with its waveforms.")


def _lead_mv(code: str, value: Element, fs: float, n_leads: int, where: str) -> np.ndarray:
    digits = text(value, "digits") or ""
    n_tokens = digits.count(" ") + 1 if digits else 0  # an upper bound before any array is made
    check_signal_size(n_leads, max(n_tokens, 1) if digits else 0, fs, f"{where} (lead {code})")
    try:
        numbers = np.fromstring(digits, dtype=np.int64, sep=" ").astype(np.float64)
    except ValueError:
        try:
            numbers = np.fromstring(digits, dtype=np.float64, sep=" ")
        except ValueError as exc:
            raise CorruptFileError(f"{where}: lead {code} holds digits that are not numbers; the file "
                                   f"is damaged. Export the ECG again.") from exc
    if numbers.size == 0 or not np.all(np.isfinite(numbers)):
        raise CorruptFileError(f"{where}: lead {code} holds no usable samples. Export the ECG again.")
    origin, origin_unit = _pq(child(value, "origin"), 0.0)
    scale, scale_unit = _pq(child(value, "scale"), 1.0)
    origin_mv, scale_mv = mv_factor(origin_unit or "uV"), mv_factor(scale_unit or "uV")
    if origin_mv is None or scale_mv is None or scale == 0:
        raise CorruptFileError(f"{where}: lead {code} has origin/scale in {origin_unit!r}/{scale_unit!r}, "
                               f"not a voltage. Export the ECG again.")
    return numbers * (scale * scale_mv) + origin * origin_mv


def _pq(elem: Element | None, default: float) -> tuple[float, str]:
    if elem is None:
        return default, ""
    number = to_float(elem.get("value"))
    return (default if number is None else number), (elem.get("unit") or "")


def _patient_meta(root: Element, rhythm: Element) -> dict[str, Any]:
    meta: dict[str, Any] = {}
    subject = child(root, ".//trialSubject")
    person = child(subject, "subjectDemographicPerson")
    subject_id = child(subject, "id")
    if subject_id is not None and (subject_id.get("extension") or subject_id.get("root")):
        meta["patient_id"] = subject_id.get("extension") or subject_id.get("root")
    name = child(person, "name")
    if name is not None:
        family, given = text(name, "family"), text(name, "given")
        full = person_name(f"{family}^{given or ''}") if family else None
        meta_name = full or person_name(" ".join(name.itertext()))
        if meta_name:
            meta["patient_name"] = meta_name
    birth = child(person, "birthTime")
    if birth is not None and birth.get("value"):
        meta["birth_date"] = iso_date(birth.get("value")) or birth.get("value")
    gender = child(person, "administrativeGenderCode")
    age = None
    for observation in children(root, "controlVariable/relatedObservation"):
        if _code(observation) == "21612-7":  # LOINC reported age
            value = child(observation, "value")
            if value is not None and (value.get("unit") or "a") in ("a", "yr", "years"):
                age = value.get("value")
    meta.update(age_sex_meta(age, gender.get("code") if gender is not None else None))
    effective = child(root, "effectiveTime")
    moment = child(effective, "center") if child(effective, "center") is not None else child(effective, "low")
    if moment is not None and moment.get("value"):
        acquired = iso_datetime(moment.get("value"))
        if acquired:
            meta["acquired"] = acquired
    device_node = child(rhythm, "author/seriesAuthor")
    device = {key: value for key, value in (
        ("manufacturer", text(device_node, "manufacturerOrganization/name")),
        ("model", text(device_node, "manufacturedSeriesDevice/manufacturerModelName")),
        ("software", text(device_node, "manufacturedSeriesDevice/softwareName"))) if value}
    if device:
        meta["device"] = device
    return meta


def _has_lead(annotation: Element) -> bool:
    """Whether the annotation's region of interest names a lead (a per-lead measurement)."""
    for boundary in annotation.iterfind("{*}support/{*}supportingROI/{*}component/{*}boundary"):
        if _code(boundary).upper().startswith("MDC_ECG_LEAD"):
            return True
    return False


def _annotation_meta(series: list[Element]) -> dict[str, Any]:
    raw: list[dict[str, Any]] = []
    values: dict[str, float] = {}
    statements: list[dict[str, Any]] = []
    for one in series:
        for annotation_set in children(one, "subjectOf/annotationSet"):
            for annotation in annotation_set.iter():
                if local_name(annotation.tag) != "annotation":
                    continue
                code = _code(annotation)
                value = child(annotation, "value")
                if value is None or not code:
                    continue
                kind = (value.get(_XSI_TYPE) or "").upper()
                if kind == "PQ":
                    number, unit = to_float(value.get("value")), value.get("unit") or ""
                    if number is None:
                        continue
                    raw.append({"name": code, "value": number, "units": unit, "group": None})
                    key = _CODES.get(code.upper().removesuffix("_GL"))
                    if key is not None and key not in values and not _has_lead(annotation):
                        converted = _convert(key, number, unit)
                        if converted is not None:
                            values[key] = converted
                elif code.upper() in _STATEMENT_CODES:
                    line = value.get("displayName") or (value.text or "").strip() or value.get("code")
                    if line and not _has_lead(annotation):
                        statements.append(statement(line, value.get("code"), None))
    out: dict[str, Any] = {}
    if measurements := device_measurements(values):
        out["device_measurements"] = measurements
    if raw:
        out["measurements"] = raw
    if statements:
        out["statements"] = statements
    return out


def _convert(key: str, number: float, unit: str) -> float | None:
    unit = unit.strip()
    if key.endswith("_ms"):
        factor = _TIME_TO_MS.get(unit.lower() or "ms")
        return None if factor is None else number * factor
    if key.endswith("_deg"):
        return number if unit.lower() in ("deg", "", "degree", "degrees") else None
    return number if unit.lower() in ("/min", "{beats}/min", "bpm", "{h.b.}/min", "1/min", "") else None
