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
                      "the mean of the probabilities of the record's 10 s windows"),
    ("thresholds", "{pathology: operating threshold chosen on validation data}"),
    ("positive", "{pathology: probability >= threshold}"),
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
              "device, files {pathology: ONNX file}"),
    ("device_measurements", "the measurements the ECG cart wrote in the file (GE MUSE, Philips, "
                            "HL7 aECG ...), as {hr_bpm, rr_ms, pr_ms, p_ms, qrs_ms, qt_ms, qtc_ms, "
                            "p_axis_deg, qrs_axis_deg, t_axis_deg} (only those present; numbers); "
                            "null when the file has none or was not read"),
    ("statements", "the cart's / over-reader's interpretive statements, in file order, as "
                   "[{text, code (vendor or SNOMED CT code, or null), confirmed (true / false / "
                   "null when the file does not say)}]; null when none"),
    ("cxr", "null without --cxr; else {file, ok, error, probabilities, thresholds, positive}: "
            "the chest X-ray teacher's predictions for the --cxr image"),
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


def cxr_json(file: str, preds: dict[str, Prediction] | None, error: str | None) -> dict[str, Any]:
    """The `cxr` field for the image `file` (teacher predictions or the error)."""
    if preds is None:
        return {"file": file, "ok": False, "error": error, "probabilities": None,
                "thresholds": None, "positive": None}
    return {"file": file, "ok": True, "error": None,
            "probabilities": {p: v.probability for p, v in preds.items()},
            "thresholds": {p: v.threshold for p, v in preds.items()},
            "positive": {p: bool(v.positive) for p, v in preds.items()}}


def model_json(predictor: Any) -> dict[str, Any]:
    """The `model` field: the Predictor's description and its ECG model file per pathology."""
    return {**predictor.describe(), "files": dict(predictor.ecg_files)}


def result_json(r: FileResult, model: dict[str, Any], cxr: dict[str, Any] | None) -> dict:
    """The JSON object of one input (see FIELDS)."""
    preds = r.predictions or {}
    obj: dict[str, Any] = {"file": r.file, "ok": r.ok, "error": r.error}
    if r.ok:
        obj["probabilities"] = {p: v.probability for p, v in preds.items()}
        obj["thresholds"] = {p: v.threshold for p, v in preds.items()}
        obj["positive"] = {p: bool(v.positive) for p, v in preds.items()}
        obj["window_probabilities"] = {p: list(v.window_probabilities) for p, v in preds.items()}
        obj["ood"] = {p: {"ood": bool(v.ood), "distance": _num(v.ood_distance),
                          "cutoff": _num(v.ood_cutoff)} for p, v in preds.items()}
    else:
        for key in ("probabilities", "thresholds", "positive", "window_probabilities", "ood"):
            obj[key] = None
    obj["quality"] = quality_json(r.quality)
    obj["preprocessing"] = r.preprocessing
    obj["model"] = model
    obj["device_measurements"] = r.device_measurements
    obj["statements"] = r.statements
    obj["cxr"] = cxr
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
_PATHOLOGY_STEMS = ("probability", "threshold", "positive", "ood", "ood_distance")
#: Quality lead lists, one column each (lead names joined with ';').
_QUALITY_LISTS = ("flat_leads", "saturated_leads", "noisy_leads", "derived_leads", "missing_leads")
#: Preprocessing facts, one column each.
_PREPROCESSING_COLUMNS = ("original_fs", "original_seconds", "seconds_used", "padded_seconds")

#: The CSV header, in column order.
CSV_COLUMNS: tuple[str, ...] = (
    ("file", "ok", "error")
    + tuple(f"{k}_{p}" for p in PATHOLOGIES for k in _PATHOLOGY_STEMS)
    + ("n_windows", "window_probabilities", "quality_ok") + _QUALITY_LISTS + ("short_record",)
    + _PREPROCESSING_COLUMNS
    + tuple(f"device_{k}" for k in DEVICE_MEASUREMENT_KEYS) + ("statements",)
    + ("bundle_id", "data", "demo", "precision", "cxr_file", "cxr_ok", "cxr_error")
    + tuple(f"cxr_probability_{p}" for p in PATHOLOGIES)
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
    row.update(bundle_id=m["bundle_id"], data=m["data"], demo=m["demo"], precision=m["precision"])
    c = obj["cxr"]
    if c:
        row.update(cxr_file=c["file"], cxr_ok=c["ok"], cxr_error=c["error"] or "")
        for p, v in (c["probabilities"] or {}).items():
            row[f"cxr_probability_{p}"] = repr(v)
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
