"""Patient, acquisition and annotation fields of a DICOM ECG, for `EcgRecord.meta`."""

from __future__ import annotations

import logging
from typing import Any

from engine.io.demographics import age_sex_meta
from engine.io.ecg_common import device_measurements, iso_date, iso_datetime, person_name
from engine.io.dicom_common import text_fields, text_value
from engine.errors import ReadError
from engine.io.guard import corrupt_file_errors

#: Every top-level keyword `patient_meta` reads (a signal-only read parses just these and the waveform).
PATIENT_KEYWORDS: tuple[str, ...] = (
    "PatientID", "PatientName", "PatientBirthDate", "InstitutionName", "StudyDescription", "PatientAge",
    "PatientSex", "AcquisitionDateTime", "AcquisitionDate", "ContentDate", "StudyDate", "AcquisitionTime",
    "ContentTime", "StudyTime", "Manufacturer", "ManufacturerModelName", "SoftwareVersions",
    "DeviceSerialNumber")


def patient_meta(ds) -> dict[str, Any]:
    """patient_id, patient_name ("Family, Given" from `Family^Given`), age (int years),
    sex ("M"/"F"), birth_date ("YYYY-MM-DD"), acquired ("YYYY-MM-DD HH:MM:SS"; a value
    that does not parse as a DICOM date / time is kept as written), device {manufacturer,
    model, software, serial}, institution: only the fields the file has."""
    meta: dict[str, Any] = text_fields(ds, (
        ("patient_id", "PatientID"), ("patient_name", "PatientName"), ("birth_date", "PatientBirthDate"),
        ("institution", "InstitutionName"), ("study_description", "StudyDescription")))
    if meta.get("patient_name"):
        meta["patient_name"] = person_name(meta["patient_name"]) or meta["patient_name"]
    if meta.get("birth_date"):
        meta["birth_date"] = iso_date(meta["birth_date"]) or meta["birth_date"]
    meta.update(age_sex_meta(text_value(ds, "PatientAge"), text_value(ds, "PatientSex")))
    acquired = text_value(ds, "AcquisitionDateTime")
    if acquired:
        acquired = iso_datetime(acquired) or acquired
    else:
        date = (text_value(ds, "AcquisitionDate") or text_value(ds, "ContentDate")
                or text_value(ds, "StudyDate"))
        time = (text_value(ds, "AcquisitionTime") or text_value(ds, "ContentTime")
                or text_value(ds, "StudyTime"))
        acquired = ((iso_datetime(date, time) if date else None)
                    or " ".join(x for x in (date, time) if x) or None)
    if acquired:
        meta["acquired"] = acquired
    device = text_fields(ds, (("manufacturer", "Manufacturer"), ("model", "ManufacturerModelName"),
                              ("software", "SoftwareVersions"), ("serial", "DeviceSerialNumber")))
    if device:
        meta["device"] = device
    return meta


log = logging.getLogger(__name__)


def _code_meaning(item, keyword: str) -> str | None:
    seq = item.get(keyword, None)
    if seq:
        return text_value(seq[0], "CodeMeaning") or text_value(seq[0], "CodeValue")
    return None


def _unit_code(item) -> str:
    """UCUM code of a measurement's unit ("ms", "deg", "uV"), else its meaning, else ""."""
    seq = item.get("MeasurementUnitsCodeSequence", None)
    if seq:
        return text_value(seq[0], "CodeValue") or text_value(seq[0], "CodeMeaning") or ""
    return ""


def annotations_meta(ds) -> dict[str, Any]:
    """`_annotations_meta(ds)`; a damaged annotation sequence gives only
    {"warnings": [what was not read]}: the annotations never decide whether a file is read,
    so the app's read and the signal-only read (`annotations=False`) of `cromotex predict`
    accept and refuse the same files (issue 15)."""
    try:
        with corrupt_file_errors("the DICOM ECG", lambda error: f"damaged ({error})", "too large"):
            return _annotations_meta(ds)
    except ReadError as exc:
        log.warning("annotations not read: %s", exc)
        return {"warnings": [f"statements and measurements not read: {exc}"]}


def _annotations_meta(ds) -> dict[str, Any]:
    """From the Waveform Annotation Sequence: `statements` (free-text and coded
    interpretation statements, in file order), `measurements` (list of
    {"name", "value" float, "units" (UCUM code, e.g. "ms"), "group"}), `fiducials` (list of
    {"name", "sample", "group"}: sample positions, 1-based as DICOM writes them)."""
    statements: list[str] = []
    measurements: list[dict[str, Any]] = []
    fiducials: list[dict[str, Any]] = []
    for item in ds.get("WaveformAnnotationSequence", None) or []:
        group = item.get("AnnotationGroupNumber", None)
        group = int(group) if group is not None else None
        text = text_value(item, "UnformattedTextValue")
        name = _code_meaning(item, "ConceptNameCodeSequence")
        if text:
            statements.append(text)
        elif item.get("NumericValue", None) is not None and name:
            value = item.NumericValue
            if not isinstance(value, (str, bytes)) and hasattr(value, "__getitem__"):
                value = value[0]  # a multi-valued DS: the first value is the measurement
            measurements.append({"name": name, "value": float(value),
                                 "units": _unit_code(item), "group": group})
        elif item.get("ReferencedSamplePositions", None) is not None and name:
            positions = item.ReferencedSamplePositions
            first = positions[0] if hasattr(positions, "__getitem__") else positions
            fiducials.append({"name": name, "sample": int(first), "group": group})
        elif _code_meaning(item, "ConceptCodeSequence"):
            statements.append(_code_meaning(item, "ConceptCodeSequence"))
    out: dict[str, Any] = {}
    if statements:
        out["statements"] = statements
    if measurements:
        out["measurements"] = measurements
    if fiducials:
        out["fiducials"] = fiducials
    return out


#: DICOM measurement concept names (CID 3230-3240 code meanings as carts write them,
#: lower case) -> `record.meta["device_measurements"]` keys.
_DEVICE_KEYS: dict[str, str] = {
    "rr interval": "rr_ms", "pr interval": "pr_ms", "p duration": "p_ms", "qrs duration": "qrs_ms",
    "qt interval": "qt_ms", "qtc interval": "qtc_ms", "p axis": "p_axis_deg", "qrs axis": "qrs_axis_deg",
    "t axis": "t_axis_deg", "heart rate": "hr_bpm", "ventricular heart rate": "hr_bpm",
    "ventricular rate": "hr_bpm"}


def device_measurements_of(measurements: list[dict[str, Any]]) -> dict[str, float]:
    """`meta["device_measurements"]` from the annotation measurements (first of each kind;
    a 0 ms interval is a cart's "not measured" and is left out)."""
    values: dict[str, float] = {}
    for m in measurements:
        key = _DEVICE_KEYS.get(str(m.get("name", "")).strip().lower())
        if key and key not in values and not (key.endswith("_ms") and m["value"] == 0):
            values[key] = m["value"]
    return device_measurements(values)
