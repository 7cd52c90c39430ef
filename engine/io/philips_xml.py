"""Read a Philips XML resting ECG (root `restingecgdata`: SierraECG 1.03, PhilipsECG
1.04 / 1.04.01 / 1.04.02, UTF-8 or UTF-16) into an `EcgRecord`.

Waveform: `parsedwaveforms`, base64; XLI-compressed (`compressmethod` / `compression`
"XLI", decoded by `engine.io.xli`, which gives the same int16 counts as the
`sierraecg` package, 30x faster) or uncompressed int16. Philips stores III, aVR, aVL,
aVF as residuals against I and II; they are rebuilt exactly (`philips_limb_leads`),
so the 12 leads are all stored, none derived. Counts x `resolution` (µV per count;
`signalresolution` in 1.03) -> mV. The carts append a calibration segment after the
ECG (about 0.5 s where all 12 leads hold one identical value, 0 then a 1 mV pulse);
those trailing samples are cut off (`meta["calibration_samples_removed"]`): they are
not ECG and would read as a 1 mV step in every lead.

Also read: `repbeats` (representative beats, 1.04: per-lead base64 int16 with their
own rate and resolution; the buffer is filled with 32767 after the beat, cut off) as
`median_beats`; interpretation statements (left and
right statement, statement code; confirmed per `mdsignatureline` /
`confirmingclinician`) and the severity line; the interpretation's global
measurements (falling back to the cart's measurement block) as `device_measurements`
and `measurements`; patient, acquisition time, machine.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any
from xml.etree.ElementTree import Element

import numpy as np

from engine.constants import LEADS
from engine.errors import CorruptFileError, LeadError, UnsupportedFormatError
from engine.io.demographics import age_sex_meta
from engine.io.ecg_common import (
    check_signal_size, complete_limb_leads, device_measurements, iso_date, iso_datetime, lead_set_record,
    person_name, statement, to_float)
from engine.io.xli import philips_limb_leads, xli_decode
from engine.io.xml_common import child, children, decode_base64, decode_xml_file, text
from engine.records import EcgRecord

log = logging.getLogger(__name__)

WHAT = "Philips XML file"
_VERSIONS = ("1.03", "1.04", "1.04.01", "1.04.02")
_STANDARD_SETS = ("STD-12", "10-WIRE", "12-LEAD", "STD")
#: Measurement element -> device measurement key, first found wins (interpretation block
#: of 1.04, then of 1.03, then the cart's cross-lead / global measurements).
_KEYS: tuple[tuple[str, str], ...] = (
    ("heartrate", "hr_bpm"), ("meanventrate", "hr_bpm"), ("rrint", "rr_ms"),
    ("print", "pr_ms"), ("meanprint", "pr_ms"), ("pdur", "p_ms"),
    ("qrsdur", "qrs_ms"), ("meanqrsdur", "qrs_ms"), ("qtint", "qt_ms"), ("meanqtint", "qt_ms"),
    ("qtcb", "qtc_ms"), ("meanqtc", "qtc_ms"), ("pfrontaxis", "p_axis_deg"),
    ("qrsfrontaxis", "qrs_axis_deg"), ("tfrontaxis", "t_axis_deg"))
_UNIT_BY_SUFFIX = (("axis", "deg"), ("rate", "{H.B.}/min"), ("int", "ms"), ("dur", "ms"),
                   ("qtc", "ms"), ("qtcb", "ms"), ("qtcf", "ms"), ("seg", "ms"))
_BLANKS = {"---", "--", "-", "none", "unknown"}
#: Shortest trailing run (seconds) of identical values in all leads taken as the calibration segment.
_CALIBRATION_MIN_S = 0.1
#: Value filling a representative-beat buffer after the beat.
_REPBEAT_PAD = 32767


def read_philips_xml(path: Path, annotations: bool = True) -> EcgRecord:
    """Read a Philips SierraECG / PhilipsECG XML file.

    Args:
        path: the .xml file (root element restingecgdata).
        annotations: False skips decoding the representative beats (batch scoring);
            device measurements and statements are read either way.

    Returns:
        EcgRecord: `signal` float32 `[12, n]` mV at the file's rate, `meta`: patient_id,
        patient_name, birth_date, age, sex, acquired, device, institution,
        device_measurements, measurements, statements, median_beats ({"signal" float32
        `[12, m]` mV, "fs", "leads"}), derived_leads (empty: all 12 are stored),
        document ("PhilipsECG 1.04"), calibration_samples_removed.

    Raises:
        UnsupportedFormatError: another document type or version, or an unknown
            compression. CorruptFileError: damaged XML, base64 or XLI stream, or
            impossible sizes. LeadError: no standard lead.
    """
    return decode_xml_file(path, WHAT, _decode, annotations)


def _decode(root: Element, path: Path, annotations: bool) -> EcgRecord:
    doc_type = text(root, "documentinfo/documenttype") or "?"
    version = text(root, "documentinfo/documentversion") or "?"
    if doc_type not in ("SierraECG", "PhilipsECG") or version not in _VERSIONS:
        raise UnsupportedFormatError(
            f"{path} is a Philips XML document of type {doc_type} version {version}; this program "
            f"reads SierraECG 1.03 and PhilipsECG 1.04 to 1.04.02. Export the ECG in one of those.")
    signal_info = child(root, "dataacquisition/signalcharacteristics")
    waves = child(root, "waveforms/parsedwaveforms")
    if waves is None:
        raise LeadError(f"The {WHAT} {path} holds no waveform (no parsedwaveforms element). Export "
                        f"the ECG with its waveforms.")
    fs = to_float(waves.get("samplespersecond")) or to_float(text(signal_info, "samplingrate"))
    resolution = (to_float(waves.get("resolution")) or to_float(text(signal_info, "resolution"))
                  or to_float(text(signal_info, "signalresolution")))
    duration_ms = to_float(waves.get("durationperchannel"))
    labels = _labels(waves, signal_info)
    n = int(round(duration_ms * fs / 1000.0)) if duration_ms and fs else -1
    where = f"The {WHAT} {path}"
    check_signal_size(len(labels), n, fs if fs is not None else float("nan"), where)
    if resolution is None or resolution <= 0:
        raise CorruptFileError(f"{where} gives no valid signal resolution (µV per count). Export "
                               f"the ECG again.")
    counts = _waveform_counts(waves, labels, n, path)
    offset = to_float(waves.get("signaloffset")) or to_float(text(signal_info, "signaloffset")) or 0.0
    mv = (counts - offset) * (resolution / 1000.0)
    cut = _calibration_start(counts, int(_CALIBRATION_MIN_S * fs))
    lead_set = complete_limb_leads(zip(labels, mv[:, :cut]))
    if not lead_set.leads:
        raise LeadError(f"{where} has none of the 12 standard ECG leads (leads: {', '.join(labels)}).")
    meta: dict[str, Any] = {"derived_leads": lead_set.derived, "document": f"{doc_type} {version}",
                            "original_lead_names": [x for x in lead_set.original_names if x]}
    if cut < n:
        meta["calibration_samples_removed"] = n - cut
    meta.update(_patient_meta(root))
    meta.update(_measurement_meta(root))
    meta.update(_statement_meta(root))
    if annotations:
        try:
            median = _repbeats(root, path)
            if median is not None:
                meta["median_beats"] = median
        except CorruptFileError as exc:  # the rhythm is still usable
            log.warning("representative beats of %s not read: %s", path, exc)
            meta.setdefault("warnings", []).append(f"representative beats not read: {exc}")
    return lead_set_record(lead_set, float(fs), meta, path, "philips-xml")


def _labels(waves: Element, signal_info: Element | None) -> list[str]:
    declared = (waves.get("leadlabels") or "").split()
    count = to_float(waves.get("numberofleads"))
    if declared:
        return declared[:int(count)] if count else declared
    lead_set = (text(signal_info, "acquisitiontype") or text(signal_info, "leadset") or "").upper()
    n = int(to_float(text(signal_info, "numberchannelsallocated")) or 12)
    if lead_set in _STANDARD_SETS or n == 12:
        return list(LEADS)[:n] + [f"channel {k + 1}" for k in range(12, n)]
    return [f"channel {k + 1}" for k in range(n)]


def _waveform_counts(waves: Element, labels: list[str], n: int, path: Path) -> np.ndarray:
    """float64 `[n_leads, n]` raw counts (limb residuals rebuilt)."""
    encoding = (waves.get("dataencoding") or "Base64").lower()
    if encoding != "base64":
        raise UnsupportedFormatError(f"The {WHAT} {path} encodes its waveform as {encoding!r}; only "
                                     f"Base64 is read. Export the ECG again with default settings.")
    method = (waves.get("compressmethod") or waves.get("compression") or "Uncompressed").upper()
    data = decode_base64(waves.text, path, WHAT, "the rhythm waveform")
    where = f"The {WHAT} {path}"
    if method == "XLI":
        leads = xli_decode(data, len(labels), n, where)
        if labels[:6] == list(LEADS[:6]):  # III, aVR, aVL, aVF stored as residuals
            leads = philips_limb_leads(leads)
    elif method in ("UNCOMPRESSED", "NONE"):
        if len(data) < 2 * n * len(labels):
            raise CorruptFileError(f"{where} is truncated: {len(labels)} leads x {n} samples need "
                                   f"{2 * n * len(labels)} bytes, the file has {len(data)}.")
        leads = list(np.frombuffer(data, dtype="<i2", count=n * len(labels)).reshape(len(labels), n))
    else:
        raise UnsupportedFormatError(f"{where} compresses its waveform with {method!r}; only XLI and "
                                     f"uncompressed waveforms are read.")
    short = min(x.size for x in leads)
    if short < n:
        raise CorruptFileError(f"{where} is truncated: a lead holds {short} of the {n} samples the "
                               f"file declares. Export the ECG again.")
    return np.stack([x[:n] for x in leads]).astype(np.float64)


def _calibration_start(counts: np.ndarray, min_run: int) -> int:
    """Index where a trailing run (>= min_run samples) of identical values in every lead begins,
    else the signal length."""
    n = counts.shape[1]
    same = np.all(counts == counts[:1], axis=0)
    if n == 0 or not same[-1]:
        return n
    different = np.flatnonzero(~same)
    start = int(different[-1]) + 1 if different.size else 0
    return start if n - start >= max(min_run, 1) and start > 0 else n


def _repbeats(root: Element, path: Path) -> dict[str, Any] | None:
    block = child(root, "waveforms/repbeats")
    if block is None:
        return None
    fs = to_float(block.get("samplespersec"))
    resolution = to_float(block.get("resolution"))
    if (block.get("dataencoding") or "Base64").lower() != "base64" or not fs or not resolution:
        return None
    channels: list[tuple[str, np.ndarray]] = []
    for beat in children(block, "repbeat"):
        label = beat.get("leadname") or "?"
        wave = child(beat, "waveform")
        node = wave if wave is not None else beat
        data = decode_base64(node.text, path, WHAT, f"the representative beat of lead {label}")
        duration = to_float(node.get("duration") or beat.get("duration"))
        n = int(round(duration * fs / 1000.0)) if duration else len(data) // 2
        check_signal_size(1, n, fs, f"The representative beat of lead {label} in the {WHAT} {path}")
        if len(data) < 2 * n:
            raise CorruptFileError(f"The representative beat of lead {label} in the {WHAT} {path} "
                                   f"is truncated ({len(data)} bytes for {n} samples).")
        channels.append((label, np.frombuffer(data, dtype="<i2", count=n)))
    if not channels or len({c.size for _, c in channels}) != 1:
        return None
    counts = np.stack([c for _, c in channels])
    padded = np.all(counts == _REPBEAT_PAD, axis=0)  # 32767 fills the buffer after the beat
    end = counts.shape[1] - int(np.argmin(padded[::-1])) if not padded.all() else 0
    if end == 0:
        return None
    lead_set = complete_limb_leads((label, counts[k, :end] * (resolution / 1000.0))
                                   for k, (label, _) in enumerate(channels))
    if not lead_set.leads:
        return None
    return {"signal": lead_set.signal, "fs": fs, "leads": lead_set.leads, "derived": lead_set.derived}


def _clean(value: str | None) -> str | None:
    return None if value is None or value.strip().lower() in _BLANKS else value.strip()


def _patient_meta(root: Element) -> dict[str, Any]:
    patient = child(root, "patient/generalpatientdata")
    meta: dict[str, Any] = {}
    if (pid := _clean(text(patient, "patientid"))) is not None:
        meta["patient_id"] = pid
    last, first = _clean(text(patient, "name/lastname")), _clean(text(patient, "name/firstname"))
    if last or first:
        meta["patient_name"] = person_name(f"{last or ''}^{first or ''}")
    birth = _clean(text(patient, "age/dateofbirth"))
    if birth:
        meta["birth_date"] = iso_date(birth) or birth
    meta.update(age_sex_meta(_clean(text(patient, "age/years")), _clean(text(patient, "sex"))))
    acquisition = child(root, "dataacquisition")
    if acquisition is not None:
        acquired = iso_datetime(acquisition.get("date"), acquisition.get("time"))
        if acquired:
            meta["acquired"] = acquired
    machine = child(root, "dataacquisition/machine")
    device: dict[str, str] = {}
    if machine is not None:
        description = (machine.get("detaildescription") or "").split(":")
        if description[0].strip():
            device["manufacturer"] = description[0].strip()
        if text(machine):
            device["model"] = text(machine)
        if len(description) > 2 and description[-1].strip():
            device["software"] = description[-1].strip()
        if _clean(machine.get("machineid")):
            device["serial"] = machine.get("machineid").strip()
    if device:
        meta["device"] = device
    if (site := _clean(text(root, "dataacquisition/acquirer/institutionname"))) is not None:
        meta["institution"] = site
    return meta


def _unit(name: str) -> str:
    for suffix, unit in _UNIT_BY_SUFFIX:
        if name.endswith(suffix):
            return unit
    return ""


def _measurement_meta(root: Element) -> dict[str, Any]:
    blocks = [child(root, "interpretations/interpretation/globalmeasurements"),
              child(root, "interpretations/interpretation/interpretationmeasurements"),
              child(root, "internalmeasurements/crossleadmeasurements"),
              child(root, "measurements/globalmeasurements")]
    raw: list[dict[str, Any]] = []
    values: dict[str, float] = {}
    for block in blocks:
        if block is None:
            continue
        found = {item.tag.rsplit("}", 1)[-1]: to_float(item.text) for item in block}
        for name, value in found.items():
            if value is not None:
                raw.append({"name": name, "value": value, "units": _unit(name), "group": None})
        for name, key in _KEYS:
            if key not in values and found.get(name) is not None:
                values[key] = found[name]
        break  # the first block present is the device's reading; the others repeat it
    # a P duration longer than the PR interval is not a P duration (1.04 writes P onset there)
    if "p_ms" in values and not (0 < values["p_ms"] < values.get("pr_ms", float("inf"))):
        del values["p_ms"]
    out: dict[str, Any] = {}
    if measurements := device_measurements(values):
        out["device_measurements"] = measurements
    if raw:
        out["measurements"] = raw
    return out


def _statement_meta(root: Element) -> dict[str, Any]:
    interpretation = child(root, "interpretations/interpretation")
    if interpretation is None:
        return {}
    signature = text(interpretation, "mdsignatureline") or ""
    if child(interpretation, "confirmingclinician") is not None or signature.lower().startswith("confirmed"):
        confirmed: bool | None = True
    elif "unconfirmed" in signature.lower():
        confirmed = False
    else:
        confirmed = None
    items: list[dict[str, Any]] = []
    for node in children(interpretation, "statement"):
        left, right = text(node, "leftstatement"), text(node, "rightstatement")
        if not left and not right:
            continue
        line = f"{left} ({right})" if left and right else (left or right)
        items.append(statement(line, text(node, "statementcode"), confirmed))
    severity = child(interpretation, "severity")
    if severity is not None and text(severity):
        line = text(severity).strip(" -")
        items.append(statement(line, severity.get("code"), confirmed))
    out: dict[str, Any] = {"statements": items} if items else {}
    if signature:
        out["confirmation"] = signature
    return out
