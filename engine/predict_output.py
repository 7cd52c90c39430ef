"""Output records of `cromotex predict`: one JSON object (or CSV row) per input.

`FIELDS` documents every field; `cromotex predict --help` prints it. Non-finite
numbers are written as null. Probabilities are written with full float precision
(`repr`), so equal outputs give byte-identical lines.

File names of any bytes: on Linux a name that is not valid UTF-8 reaches Python as a
str with lone surrogates (`os.fsdecode`, surrogateescape: byte 0xE9 -> U+DCE9). The
output stays valid UTF-8 (`FILE_NAMES`): in JSON each such character is written as the
escape `\\udcXX` (so `os.fsencode(json.loads(line)["file"])` gives back the exact bytes);
in CSV each undecodable byte is written as the 4 characters `\\xXX`.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from typing import Any

from engine.batch import FileResult
from engine.constants import PATHOLOGIES
from engine.io.ecg_common import DEVICE_MEASUREMENT_KEYS
from engine.cxr_gate import CxrAssessment
from engine.pairing import Pairing, compare_patients
from engine.measure.result import GLOBAL_KEYS
from engine.records import Prediction, QualityFlags

#: How names that are not valid UTF-8 are written (`cromotex predict --help`).
FILE_NAMES = ("names that are not valid UTF-8 (Linux allows any bytes) are escaped so that the "
              "output stays valid UTF-8: in JSON each undecodable byte 0xXY is the escape \\udcXY "
              "(Python: os.fsencode(json.loads(line)['file']) gives back the bytes); in CSV it is the "
              "4 characters \\xXY")
_SURROGATE = re.compile("[\ud800-\udfff]")

#: (field, meaning): the JSON object of one input, in output order.
FIELDS: tuple[tuple[str, str], ...] = (
    ("file", "the input path, as given or as found in a folder / glob (see 'file names' below)"),
    ("ok", "true when the file was scored; false otherwise (see error)"),
    ("error", "why the file was not scored (the reader's or preprocessing's message); null if ok"),
    ("probabilities", "{cardiomegaly, edema, pleural_effusion}: ECG-model probability in [0, 1], "
                      "the mean of the probabilities of the record's 10 s windows; calibrated "
                      "(temperature scaling: sigmoid(logit / T), the record's mean mapped the same "
                      "way) when model.calibrated is true, else uncalibrated sigmoid(logit); "
                      "thresholds, call and window_probabilities are on the same scale"),
    ("thresholds", "{pathology: operating threshold chosen on validation data}"),
    ("positive", "{pathology: probability >= threshold} (kept for compatibility; read call)"),
    ("call", "{pathology: 'positive', 'negative', 'borderline' (probability within the band the "
             "bundle states around the threshold: the bootstrap 95% interval of the threshold "
             "chosen on validation data) or 'not_assessable' (signal quality not ok, or out of "
             "distribution)}"),
    ("call_reason", "{pathology: why that call, in words}"),
    ("window_probabilities", "{pathology: [probability of each 10 s window, in time order]}"),
    ("ood", "{pathology: {ood, distance, cutoff}}: out-of-distribution check; distance = "
            "Mahalanobis distance of the record's embedding (mean over windows) to the training "
            "statistics in the bundle; ood = distance > cutoff: treat the output with suspicion"),
    ("quality", "signal quality: flat_leads, saturated_leads, noisy_leads, derived_leads, "
                "missing_leads (lists of lead names), short_record (record < 10 s, padded), "
                "ok (none of flat/saturated/noisy/missing/short)"),
    ("preprocessing", "what preprocessing did: original_fs (Hz), original_seconds, leads_found, "
                      "leads_derived, leads_missing, padded_seconds, window_starts_s, "
                      "seconds_used, dropped_seconds, resample_up/down, rule"),
    ("model", "bundle_id, data ('phantom' = synthetic demo data, 'mimic'), demo (true: "
              "demonstration models, not for diagnosis), disclaimer, precision (fp32/int8), "
              "device, calibrated (true: the ECG probabilities are calibrated by temperature "
              "scaling, false: uncalibrated), temperature {pathology: T or null}, "
              "files {pathology: ONNX file}"),
    ("measurements", "computed by engine.measure from the median beats of all leads (null if the "
                     "file could not be read): hr_bpm, rr_ms, pr_ms, p_ms, qrs_ms, qt_ms, qtc_ms, "
                     "p_axis_deg, qrs_axis_deg, t_axis_deg (null where not measurable; reasons "
                     "{key: why}), qtc_formula, qtc_all, rr_sd_ms, rr_rmssd_ms, n_beats, n_dominant, "
                     "flags, fiducials_ms, amplitudes {lead: mV}, voltage (criteria)"),
    ("device_measurements", "the measurements the ECG cart wrote in the file (GE MUSE, Philips, "
                            "HL7 aECG ...), as {hr_bpm, rr_ms, pr_ms, p_ms, qrs_ms, qt_ms, qtc_ms, "
                            "p_axis_deg, qrs_axis_deg, t_axis_deg} (only those present; numbers); "
                            "null when the file has none or was not read"),
    ("statements", "the cart's / over-reader's interpretive statements, in file order, as "
                   "[{text, code (vendor or SNOMED CT code, or null), confirmed (true / false / "
                   "null when the file does not say)}]; null when none"),
    ("pairing", "null without --cxr; else {status, reason, matched, mismatched, "
                "acquired_gap_days}: do this ECG and the --cxr image belong to the same patient "
                "(patient ID, name, birth date, sex compared)? status 'same_patient', "
                "'different_patient' or 'unknown' (a file carries no identifiers)"),
    ("cxr", "null without --cxr; else {file, ok, error, gate, withheld, probabilities, "
            "thresholds, positive, call, call_reason, ood}: the chest X-ray teacher's predictions "
            "for the --cxr image. gate: {accepted, reason, checks}: is it a frontal chest "
            "radiograph (modality, body part, view, geometry, greyscale, teacher-embedding "
            "out-of-distribution check)? withheld: null, or why probabilities, thresholds, "
            "positive and ood are null: the gate refused the image, or pairing says it belongs "
            "to a different patient; call is then 'not_assessable' for every pathology"),
)


def _num(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


def quality_json(q: QualityFlags | None) -> dict[str, Any] | None:
    if q is None:
        return None
    return {"flat_leads": list(q.flat_leads), "saturated_leads": list(q.saturated_leads),
            "noisy_leads": list(q.noisy_leads), "derived_leads": list(q.derived_leads),
            "missing_leads": list(q.missing_leads), "short_record": bool(q.short_record),
            "ok": bool(q.ok)}


_WITHHELD_KEYS = ("probabilities", "thresholds", "positive", "ood")


def _calls(preds: dict[str, Prediction]) -> dict[str, Any]:
    return {"call": {p: v.call for p, v in preds.items()},
            "call_reason": {p: v.call_reason for p, v in preds.items()}}


def _ood(preds: dict[str, Prediction]) -> dict[str, Any]:
    return {p: {"ood": bool(v.ood), "distance": _num(v.ood_distance),
                "cutoff": _num(v.ood_cutoff)} for p, v in preds.items()}


def _withhold(obj: dict[str, Any], reason: str, pathologies) -> dict[str, Any]:
    """`obj` (a `cxr` field) with the teacher's numbers removed and every call not assessable."""
    out = {**obj, "withheld": reason, **{k: None for k in _WITHHELD_KEYS}}
    out["call"] = {p: "not_assessable" for p in pathologies}
    out["call_reason"] = {p: f"not assessable: {reason}" for p in pathologies}
    return out


def cxr_json(file: str, assessment: CxrAssessment | None, error: str | None,
             pathologies: tuple[str, ...] = PATHOLOGIES) -> dict[str, Any]:
    """The `cxr` field for the image `file`: the gate's decision and the teacher's predictions
    (`Predictor.assess_cxr`), or the error; numbers withheld when the gate refused."""
    if assessment is None:
        return {"file": file, "ok": False, "error": error, "gate": None, "withheld": error,
                **{k: None for k in _WITHHELD_KEYS}, "call": None, "call_reason": None}
    preds = assessment.predictions
    obj = {"file": file, "ok": True, "error": None, "gate": assessment.gate.to_dict(),
           "withheld": None}
    if not assessment.gate.accepted:
        return _withhold(obj, f"the teacher's output is withheld: {assessment.gate.reason}",
                         tuple(preds) or pathologies)
    return {**obj, "probabilities": {p: v.probability for p, v in preds.items()},
            "thresholds": {p: v.threshold for p, v in preds.items()},
            "positive": {p: bool(v.positive) for p, v in preds.items()}, **_calls(preds),
            "ood": _ood(preds)}


def model_json(predictor: Any) -> dict[str, Any]:
    """The `model` field: the Predictor's description and its ECG model file per pathology."""
    return {**predictor.describe(), "files": dict(predictor.ecg_files)}


def paired_cxr_json(cxr: dict[str, Any], pairing: Pairing) -> dict[str, Any]:
    """The `cxr` field beside one ECG: withheld when the pairing says another patient."""
    if not pairing.withhold_teacher or not cxr["ok"] or cxr["withheld"]:
        return cxr
    return _withhold(cxr, f"the chest X-ray is withheld: {pairing.reason}",
                     tuple(cxr["call"] or PATHOLOGIES))


def result_json(r: FileResult, model: dict[str, Any], cxr: dict[str, Any] | None,
                cxr_meta: dict[str, Any] | None = None) -> dict:
    """The JSON object of one input (see FIELDS); `cxr_meta`: the --cxr image's meta, for the
    pairing (None: the image could not be read; pairing from no identifiers)."""
    preds = r.predictions or {}
    obj: dict[str, Any] = {"file": r.file, "ok": r.ok, "error": r.error}
    if r.ok:
        obj["probabilities"] = {p: v.probability for p, v in preds.items()}
        obj["thresholds"] = {p: v.threshold for p, v in preds.items()}
        obj["positive"] = {p: bool(v.positive) for p, v in preds.items()}
        obj.update(_calls(preds))
        obj["window_probabilities"] = {p: list(v.window_probabilities) for p, v in preds.items()}
        obj["ood"] = _ood(preds)
    else:
        for key in ("probabilities", "thresholds", "positive", "call", "call_reason",
                    "window_probabilities", "ood"):
            obj[key] = None
    obj["quality"] = quality_json(r.quality)
    obj["preprocessing"] = r.preprocessing
    obj["model"] = model
    obj["measurements"] = r.measurements
    obj["device_measurements"] = r.device_measurements
    obj["statements"] = r.statements
    if cxr is None:
        obj["pairing"] = None
        obj["cxr"] = None
    else:
        pairing = compare_patients(r.identity, cxr_meta)
        obj["pairing"] = pairing.to_dict()
        obj["cxr"] = paired_cxr_json(cxr, pairing)
    return obj


def dumps(obj: dict) -> str:
    """One JSON line; lone surrogates (undecodable file-name bytes) written as `\\udcXX`
    escapes, so the line encodes to valid UTF-8 (other characters are written as they are)."""
    text = json.dumps(obj, ensure_ascii=False, allow_nan=False)
    return _SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def csv_text(value: Any) -> Any:
    """A CSV cell: in a str, an undecodable file-name byte 0xXY (U+DCXY) is written as `\\xXY`
    (any other lone surrogate as `\\uXXXX`), so the cell encodes to valid UTF-8."""
    if isinstance(value, str):
        return _SURROGATE.sub(lambda m: _byte_escape(ord(m.group())), value)
    return value


def _byte_escape(code: int) -> str:
    return f"\\x{code - 0xdc00:02x}" if 0xdc80 <= code <= 0xdcff else f"\\u{code:04x}"


#: CSV column stems repeated for every pathology, as f"{stem}_{pathology}".
_PATHOLOGY_STEMS = ("probability", "threshold", "positive", "call", "ood", "ood_distance")
#: Quality lead lists, one column each (lead names joined with ';').
_QUALITY_LISTS = ("flat_leads", "saturated_leads", "noisy_leads", "derived_leads", "missing_leads")
#: Preprocessing facts, one column each.
_PREPROCESSING_COLUMNS = ("original_fs", "original_seconds", "seconds_used", "padded_seconds")

#: Computed measurements, one column each as f"measured_{key}".
MEASURED_KEYS: tuple[str, ...] = GLOBAL_KEYS

#: The CSV header, in column order.
CSV_COLUMNS: tuple[str, ...] = (
    ("file", "ok", "error")
    + tuple(f"{k}_{p}" for p in PATHOLOGIES for k in _PATHOLOGY_STEMS)
    + ("n_windows", "window_probabilities", "quality_ok") + _QUALITY_LISTS + ("short_record",)
    + _PREPROCESSING_COLUMNS
    + tuple(f"device_{k}" for k in DEVICE_MEASUREMENT_KEYS) + ("statements",)
    + ("bundle_id", "data", "demo", "precision", "calibrated", "cxr_file", "cxr_ok", "cxr_error")
    + tuple(f"cxr_probability_{p}" for p in PATHOLOGIES)
    + ("pairing", "pairing_reason", "cxr_gate_accepted", "cxr_gate_reason", "cxr_withheld")
    + tuple(f"cxr_call_{p}" for p in PATHOLOGIES)
    + tuple(f"measured_{k}" for k in MEASURED_KEYS) + ("measured_qtc_formula", "measured_reasons")
)
_PER_PATHOLOGY = re.compile(r"_(%s)$" % "|".join(map(re.escape, PATHOLOGIES)))


def csv_row(obj: dict) -> dict[str, Any]:
    """Flatten a `result_json` object into CSV_COLUMNS (lists joined with ';')."""
    row: dict[str, Any] = {"file": obj["file"], "ok": obj["ok"], "error": obj["error"] or ""}
    for p in PATHOLOGIES:
        if obj["ok"] and p in obj["probabilities"]:
            row[f"probability_{p}"] = repr(obj["probabilities"][p])
            row[f"threshold_{p}"] = obj["thresholds"][p]
            row[f"positive_{p}"] = obj["positive"][p]
            row[f"call_{p}"] = obj["call"][p]
            row[f"ood_{p}"] = obj["ood"][p]["ood"]
            row[f"ood_distance_{p}"] = obj["ood"][p]["distance"]
    if obj["ok"]:
        wp = obj["window_probabilities"]
        row["n_windows"] = len(next(iter(wp.values())))
        row["window_probabilities"] = " ".join(
            f"{p}:" + ";".join(repr(v) for v in wp[p]) for p in wp)
    q = obj["quality"]
    if q:
        row["quality_ok"] = q["ok"]
        for k in _QUALITY_LISTS:
            row[k] = ";".join(q[k])
        row["short_record"] = q["short_record"]
    pre = obj["preprocessing"]
    if pre:
        for k in _PREPROCESSING_COLUMNS:
            row[k] = pre.get(k)
    for k, v in (obj.get("device_measurements") or {}).items():
        row[f"device_{k}"] = v
    if obj.get("statements"):
        row["statements"] = "; ".join(s["text"] for s in obj["statements"])
    m = obj["model"]
    row.update(bundle_id=m["bundle_id"], data=m["data"], demo=m["demo"], precision=m["precision"],
               calibrated=m.get("calibrated", False))
    c = obj["cxr"]
    if c:
        row.update(cxr_file=c["file"], cxr_ok=c["ok"], cxr_error=c["error"] or "")
        for p, v in (c["probabilities"] or {}).items():
            row[f"cxr_probability_{p}"] = repr(v)
        for p, v in (c["call"] or {}).items():
            row[f"cxr_call_{p}"] = v
        if c["gate"]:
            row.update(cxr_gate_accepted=c["gate"]["accepted"], cxr_gate_reason=c["gate"]["reason"])
        row["cxr_withheld"] = c["withheld"] or ""
    if obj["pairing"]:
        row.update(pairing=obj["pairing"]["status"], pairing_reason=obj["pairing"]["reason"])
    meas = obj.get("measurements")
    if meas:
        for k in MEASURED_KEYS:
            row[f"measured_{k}"] = meas.get(k)
        row["measured_qtc_formula"] = meas.get("qtc_formula")
        row["measured_reasons"] = "; ".join(f"{k}: {v}" for k, v in meas.get("reasons", {}).items())
    return row


class CsvWriter:
    """Writes CSV_COLUMNS rows to a text stream, header first."""

    def __init__(self, stream):
        self._w = csv.DictWriter(stream, fieldnames=list(CSV_COLUMNS), extrasaction="ignore")
        self._w.writeheader()

    def write(self, obj: dict) -> None:
        self._w.writerow({k: csv_text(v) for k, v in csv_row(obj).items()})


def csv_column_names() -> list[str]:
    """CSV_COLUMNS as the help shows them: the per-pathology columns once each, as
    `<stem>_<pathology>` (e.g. `probability_<pathology>`), in column order."""
    return list(dict.fromkeys(_PER_PATHOLOGY.sub("_<pathology>", c) for c in CSV_COLUMNS))


def help_text() -> str:
    """The output-field documentation shown by `cromotex predict --help`."""
    buf = io.StringIO()
    buf.write("output (JSON lines: one object per input, written and flushed as it is scored):\n")
    for name, text in FIELDS:
        buf.write(f"  {name}: {text}\n")
    buf.write("\nCSV (--format csv): the same facts flattened into columns:\n  "
              + ", ".join(csv_column_names()) + "\n"
              f"  <pathology>: one column for each of {', '.join(PATHOLOGIES)}; lead lists are "
              "joined by ';'; device_<key>: the device measurements (see device_measurements); "
              "statements: their texts joined by '; '; window_probabilities: '<pathology>:p;p;...' per pathology, "
              "separated by spaces\n")
    buf.write(f"\nfile names: {FILE_NAMES}.\n")
    buf.write("\nexit status: 0 when every input (and the --cxr image) was scored; 1 when any "
              "was not; 2 when nothing could be run (bad arguments, unusable model bundle).\n")
    return buf.getvalue()
