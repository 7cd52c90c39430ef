"""The AI findings as text, shared by the AI panel and the PDF export (no Qt): the cells
of a finding (probability, threshold, call), how each call looks, and the flags and
reasons that go with it.

A call is `Prediction.call` (engine.calls): "positive", "negative", "borderline" (the
probability lies within the threshold's stated uncertainty) or "not_assessable" (the
input is flagged: signal quality, out of distribution, or refused by the chest X-ray
gate). Only a positive call is shown in bold red; a not-assessable finding never reads
as a result.
"""

from __future__ import annotations

from engine.records import Prediction

#: Text of each call in the table and on paper.
CALL_TEXT: dict[str, str] = {"positive": "POSITIVE", "negative": "negative",
                             "borderline": "borderline", "not_assessable": "not assessable"}
#: The call of a prediction clearly above / below its threshold.
POSITIVE, NEGATIVE = CALL_TEXT["positive"], CALL_TEXT["negative"]
#: Colour (RGB) of a positive call, on screen and on paper.
POSITIVE_RGB = (190, 30, 30)
#: Colour (RGB) of each call: red, green, amber, grey.
CALL_RGB: dict[str, tuple[int, int, int]] = {
    "positive": POSITIVE_RGB, "negative": (30, 120, 50), "borderline": (184, 120, 0),
    "not_assessable": (100, 100, 100)}
#: Calls drawn in bold (positive) and in italics (neither a result nor its absence).
BOLD_CALLS = frozenset({"positive"})
ITALIC_CALLS = frozenset({"borderline", "not_assessable"})


def prediction_cells(pred: Prediction | None, missing: str = "") -> tuple[str, str, str]:
    """(probability, threshold, call) of one model's prediction, e.g. ("0.812", "0.400",
    "POSITIVE"), ("0.210", "0.207", "borderline"), ("0.334", "0.207", "not assessable");
    `missing` in each cell when there is no prediction."""
    if pred is None:
        return missing, missing, missing
    return f"{pred.probability:.3f}", f"{pred.threshold:.3f}", CALL_TEXT[pred.call]


def calibration_note(preds: dict[str, Prediction], short: bool = False) -> str:
    """How the ECG probabilities shown were made: calibrated by temperature scaling (the bundle
    states a temperature per model, `engine.calibration`) or uncalibrated; "" without predictions.

    e.g. "ECG probabilities calibrated (temperature scaling: T = 1.70, 0.60, 2.50)" /
    "ECG probabilities uncalibrated (sigmoid of the model output)"; `short`: "ECG p calibrated
    (temperature scaling)" / "ECG p uncalibrated" (for the PDF footnote)."""
    temps = [pred.temperature for pred in preds.values()]
    if not temps:
        return ""
    if all(t is None for t in temps):
        return "ECG p uncalibrated" if short else \
            "ECG probabilities uncalibrated (sigmoid of the model output)"
    which = "" if all(t is not None for t in temps) else "partly "
    if short:
        return f"ECG p {which}calibrated (temperature scaling)"
    ts = ", ".join("uncalibrated" if t is None else f"{t:.2f}" for t in temps)
    return (f"ECG probabilities {which}calibrated (temperature scaling: T = {ts}); thresholds and "
            "borderline bands on the same scale, calls as the uncalibrated model's")


def prediction_flags(pred: Prediction) -> list[str]:
    """Short flags for one prediction: out-of-distribution and signal-quality findings."""
    flags: list[str] = []
    if pred.ood:
        flags.append(f"OOD (d={pred.ood_distance:.1f} > {pred.ood_cutoff:.1f})")
    q = pred.quality
    if q is not None:
        flags += [f"{name}: {','.join(leads)}" for name, leads in q.lead_problems(derived=True)]
        if q.short_record:
            flags.append("short record")
    return flags


def prediction_notes(pred: Prediction) -> list[str]:
    """What a reader must know about one prediction: the call's reason when it is
    borderline or not assessable (it names the flag), else the short flags."""
    flags = prediction_flags(pred)
    if pred.call in ITALIC_CALLS:
        return [pred.call_reason] + [f for f in flags if f.startswith("derived")]
    return flags


def finding_notes(ecg: Prediction | None, cxr: Prediction | None) -> list[str]:
    """The notes of one finding, each prefixed "ECG " or "CXR "; ["ok"] when there are
    predictions and nothing to note, [] without predictions."""
    notes = [f"{prefix} {n}" for prefix, pred in (("ECG", ecg), ("CXR", cxr)) if pred is not None
             for n in prediction_notes(pred)]
    return notes or (["ok"] if (ecg is not None or cxr is not None) else [])


def grouped_notes(ecg: dict[str, Prediction], cxr: dict[str, Prediction],
                  pathologies: tuple[str, ...],
                  names: dict[str, str]) -> list[tuple[str, list[str]]]:
    """The reason lines of a findings table, as (title, notes): a note shared by every
    finding (e.g. the chest X-ray is out of the teacher's range) once under "All
    findings", then each finding's own notes under its name; "ok" is left out."""
    per = {p: [n for n in finding_notes(ecg.get(p), cxr.get(p)) if n != "ok"] for p in pathologies}
    shared = [n for n in per[pathologies[0]] if all(n in per[p] for p in pathologies)] \
        if len(pathologies) > 1 else []
    out = [("All findings", shared)] if shared else []
    for p in pathologies:
        own = [n for n in per[p] if n not in shared]
        if own:
            out.append((names[p], own))
    return out
