"""The call a finding gets: positive, negative, borderline or not assessable.

A probability compared with a threshold reads as definite whether it is 0.21 or
0.9 against 0.207. `decide_call` states how sure the comparison is:

- "not_assessable": the input is flagged (ECG signal quality not ok, the embedding
  out of the training distribution, or, for the chest X-ray, refused by the gate
  `engine.cxr_gate`); the probability is not a result and must not be shown as one.
- "borderline": the probability lies inside the band the bundle states for the
  threshold of this pathology and model (`Prediction.band`, e.g. the bootstrap 95%
  interval of the threshold chosen on validation data; docs/bundle.md).
- "positive" / "negative": `Prediction.positive` (probability >= threshold; resp. not) and
  outside the band.

Calibrated probabilities (`Prediction.temperature` set, `engine.calibration`): probability,
threshold and band are all temperature-scaled and the reason says "calibrated probability";
positive / negative is `Prediction.positive`, which the engine sets from the raw probability
against the raw threshold, so a calibrated bundle makes exactly the uncalibrated model's
decisions even where rounding puts the two within 1e-6 of each other.

Order of precedence: not_assessable, borderline, positive/negative.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # records imports this module at run time; no cycle at import
    from engine.records import Prediction, QualityFlags

#: Every value `Prediction.call` takes.
CALLS = ("positive", "negative", "borderline", "not_assessable")

_WHAT = {"ecg": "the ECG", "cxr": "the chest X-ray"}
_TRAINED_ON = {"ecg": "the model's training ECGs", "cxr": "the teacher's training images"}


def quality_problems(q: "QualityFlags") -> list[str]:
    """Human-readable signal-quality problems of `q` (empty when `q.ok`)."""
    out = [f"{label} lead{'s' if len(leads) > 1 else ''} {', '.join(leads)}"
           for label, leads in q.lead_problems()]
    if q.short_record:
        out.append("record shorter than 10 s (padded)")
    return out


def _fmt(x: float) -> str:
    return f"{x:.3f}"


def decide_call(pred: "Prediction") -> tuple[str, str]:
    """(call, reason) of a prediction from its probability, threshold, band, quality and OOD
    fields (the gate's refusal is applied by `not_assessable`)."""
    what = _WHAT.get(pred.modality, "the input")
    if pred.quality is not None and not pred.quality.ok:
        return "not_assessable", (f"not assessable: signal quality of {what} "
                                  f"({'; '.join(quality_problems(pred.quality))})")
    if pred.ood:
        return "not_assessable", (
            f"not assessable: {what} lies outside {_TRAINED_ON.get(pred.modality, 'the training data')} "
            f"(Mahalanobis distance {pred.ood_distance:.1f} > cut-off {pred.ood_cutoff:.1f})")
    p, t = pred.probability, pred.threshold
    word = "probability" if pred.temperature is None else "calibrated probability"
    if pred.band is not None:
        low, high = pred.band
        if low <= p <= high:
            return "borderline", (f"borderline: {word} {_fmt(p)} lies within the threshold's "
                                  f"uncertainty band {_fmt(low)}-{_fmt(high)} (threshold {_fmt(t)})")
        tail = f", outside the uncertainty band {_fmt(low)}-{_fmt(high)}"
    else:
        tail = " (the bundle states no uncertainty band for this threshold)"
    if pred.positive:
        return "positive", f"{word} {_fmt(p)} >= threshold {_fmt(t)}{tail}"
    return "negative", f"{word} {_fmt(p)} < threshold {_fmt(t)}{tail}"


def not_assessable(pred: "Prediction", reason: str) -> "Prediction":
    """A copy of `pred` called "not_assessable" for `reason` (e.g. the gate refused the image)."""
    return dataclasses.replace(pred, call="not_assessable", call_reason=f"not assessable: {reason}")
