"""The gate before the chest X-ray teacher: is this a frontal chest radiograph?

The teacher was trained on frontal chest films only; on anything else (a leg, a lateral
view, a photograph) its probabilities mean nothing, yet it gives some. `gate_cxr(image)`
checks what the file says and what the pixels look like, before the teacher runs:

- DICOM Modality: CR, DX or DR accepted; any other (CT, MR, US, OT, ...) refused; absent:
  not verified.
- DICOM BodyPartExamined: CHEST (or THORAX, or absent) accepted; anything else refused.
- View: ViewPosition PA/AP accepted; lateral (LL, RL, LATERAL, ...) and oblique views
  refused, and so is any other stated view; ViewCodeSequence meanings containing
  "lateral" or "oblique" refused; without either, a series description / protocol naming a
  lateral view is refused. PNG and JPEG carry no tags: their view cannot be verified
  (accepted, with that said).
- Geometry: both sides >= MIN_SIDE pixels, width / height within ASPECT_RANGE (a chest
  film is 35 x 43 cm portrait or landscape; long-bone films are much narrower), and, when
  the file gives a pixel spacing, a field of view whose shorter side is >= MIN_FIELD_MM.
- Greyscale: a colour image (`meta["chroma"]` > MAX_CHROMA: a photograph, a coloured
  screenshot) is refused.

The image-based check comes after the teacher has run: `with_embedding_check` refuses an
image whose teacher embedding is out of the distribution of the teacher's training images
(Mahalanobis distance above the bundle's cut-off; statistics in the bundle,
docs/bundle.md). `engine.inference.Predictor.assess_cxr` runs both.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Any

from engine.records import CxrImage, Prediction

#: DICOM Modality values of projection radiographs.
MODALITIES = frozenset({"CR", "DX", "DR"})
#: BodyPartExamined values accepted (absent is accepted too).
BODY_PARTS = frozenset({"CHEST", "THORAX", "LUNG", "CHEST_PA", "CHEST_AP"})
#: ViewPosition values of a frontal view.
FRONTAL_VIEWS = frozenset({"PA", "AP"})
#: ViewPosition words of lateral / oblique / decubitus views (refused).
NON_FRONTAL_WORDS = frozenset({"LL", "RL", "LAT", "LATERAL", "XTABLE", "LLD", "RLD", "LAO",
                               "RAO", "LPO", "RPO", "OBL", "OBLIQUE", "SWIMMERS"})
#: Smallest side accepted, pixels (the teacher's input is 224 x 224).
MIN_SIDE = 128
#: Accepted width / height ratios.
ASPECT_RANGE = (0.6, 1.67)
#: Smallest shorter side of the field of view, mm, when the file gives a pixel spacing
#: (a neonatal chest film is ~18 x 24 cm).
MIN_FIELD_MM = 150.0
#: Largest `cxr_pixels.chroma` of a grey image saved in colour (JPEG chroma noise ~0.01).
MAX_CHROMA = 0.05


@dataclass(frozen=True)
class GateDecision:
    """Whether the teacher may be run (and shown) on an image.

    Attributes:
        accepted: True when every check passed.
        reason: the first refusal, in words a clinician can act on; when accepted, what
            was verified and what could not be (e.g. the view of a PNG).
        checks: check name -> {"ok": bool | None (None: could not be verified), "value",
            "detail"}; names: modality, body_part, view, geometry, greyscale, and
            embedding_ood once `with_embedding_check` ran.
    """

    accepted: bool
    reason: str
    checks: dict[str, dict[str, Any]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: accepted, reason, checks."""
        return {"accepted": self.accepted, "reason": self.reason, "checks": self.checks}


def _check(ok: bool | None, value: Any, detail: str) -> dict[str, Any]:
    return {"ok": ok, "value": value, "detail": detail}


def _upper(value: Any) -> str:
    return str(value or "").strip().upper()


def check_modality(meta: dict[str, Any]) -> dict[str, Any]:
    modality = _upper(meta.get("modality"))
    if not modality:
        return _check(None, None, "the file states no modality")
    if modality in MODALITIES:
        return _check(True, modality, f"modality {modality} (projection radiograph)")
    return _check(False, modality, f"the DICOM modality is {modality}, not a projection "
                                   f"radiograph (CR, DX or DR)")


def check_body_part(meta: dict[str, Any]) -> dict[str, Any]:
    part = _upper(meta.get("body_part"))
    if not part:
        return _check(None, None, "the file states no body part")
    if part in BODY_PARTS:
        return _check(True, part, f"body part {part}")
    return _check(False, part, f"the body part examined is {part}, not the chest")


def _words(text: Any) -> set[str]:
    return {w for w in re.split(r"[^A-Z]+", _upper(text)) if w}


def check_view(image: CxrImage) -> dict[str, Any]:
    meta = image.meta
    position = _upper(image.view_position or meta.get("view_position"))
    code = str(meta.get("view_code") or "").strip().lower()
    if position:
        words = _words(position)
        if words & NON_FRONTAL_WORDS:
            return _check(False, position, f"the view is {position} (a lateral or oblique view); "
                                           "the teacher reads frontal (PA/AP) views only")
        if not (words & FRONTAL_VIEWS):
            return _check(False, position, f"the view {position} is not a frontal (PA/AP) view")
    if code and ("lateral" in code or "oblique" in code):
        return _check(False, code, f"the view code says {code!r}; the teacher reads frontal "
                                   "(PA/AP) views only")
    if position:
        return _check(True, position, f"view {position}")
    if code and ("postero-anterior" in code or "antero-posterior" in code):
        return _check(True, code, f"view code {code!r}")
    for key in ("series_description", "protocol_name"):
        words = _words(meta.get(key))
        if words & {"LAT", "LATERAL", "LL", "RL"} and not words & FRONTAL_VIEWS:
            return _check(False, meta.get(key), f"the {key.replace('_', ' ')} "
                                                f"{meta.get(key)!r} names a lateral view")
    if image.source is not None and image.source.format in ("png", "jpeg"):
        return _check(None, None, "the view could not be verified: PNG and JPEG files carry no "
                                  "view; make sure this is a frontal (PA/AP) film")
    return _check(None, None, "the view could not be verified: the file states no view position")


def check_geometry(image: CxrImage) -> dict[str, Any]:
    h, w = (int(v) for v in image.pixels.shape[:2])
    value = {"width": w, "height": h}
    if min(h, w) < MIN_SIDE:
        return _check(False, value, f"the image is {w} x {h} pixels, smaller than a chest "
                                    f"radiograph ({MIN_SIDE} pixels or more a side)")
    aspect = w / h
    value["aspect"] = round(aspect, 3)
    lo, hi = ASPECT_RANGE
    if not lo <= aspect <= hi:
        return _check(False, value, f"the image is {w} x {h} pixels (width / height {aspect:.2f}); "
                                    f"a chest radiograph is between {lo} and {hi}")
    if image.pixel_spacing_mm is not None:
        field_mm = min(h * image.pixel_spacing_mm[0], w * image.pixel_spacing_mm[1])
        value["field_mm"] = round(field_mm, 1)
        if field_mm < MIN_FIELD_MM:
            return _check(False, value, f"the field of view is only {field_mm:.0f} mm across; a "
                                        f"chest radiograph covers at least {MIN_FIELD_MM:.0f} mm")
    return _check(True, value, f"{w} x {h} pixels, width / height {aspect:.2f}")


def check_greyscale(meta: dict[str, Any]) -> dict[str, Any]:
    c = meta.get("chroma")
    if c is None:
        return _check(True, None, "grey image")
    if c > MAX_CHROMA:
        return _check(False, round(float(c), 3), "the image is in colour (a photograph or a "
                                                 "screenshot), not a radiograph")
    return _check(True, round(float(c), 3), "colour file holding a grey image")


def gate_cxr(image: CxrImage) -> GateDecision:
    """Tag and geometry checks of an image before the teacher runs (see module docstring).

    Returns:
        GateDecision: refused at the first failed check (every check is still reported in
        `checks`); accepted otherwise, the reason saying what could not be verified.
    """
    checks = {"modality": check_modality(image.meta), "body_part": check_body_part(image.meta),
              "view": check_view(image), "geometry": check_geometry(image),
              "greyscale": check_greyscale(image.meta)}
    failed = [c["detail"] for c in checks.values() if c["ok"] is False]
    if failed:
        return GateDecision(False, f"not a frontal chest radiograph: {failed[0]}", checks)
    unverified = [c["detail"] for c in checks.values() if c["ok"] is None]
    if image.source is not None and image.source.format in ("png", "jpeg"):
        unverified = ["a PNG or JPEG file carries no modality, body part or view: the view could "
                      "not be verified; make sure this is a frontal (PA/AP) chest film"]
    reason = "accepted as a frontal chest radiograph"
    if unverified:
        reason += " (" + "; ".join(unverified) + ")"
    return GateDecision(True, reason, checks)


def with_embedding_check(decision: GateDecision, preds: dict[str, Prediction]) -> GateDecision:
    """`decision` with the teacher-embedding OOD check added (from the teacher's predictions,
    whose `ood` fields `engine.inference.ood_fields` set from the bundle's statistics).

    All of one teacher's predictions share one embedding, hence one distance; the first
    with a finite distance is reported. No statistics in the bundle: check not verified."""
    if not preds:
        return decision
    with_stats = [p for p in preds.values() if p.ood_distance == p.ood_distance]
    if not with_stats:
        check = _check(None, None, "the model bundle has no statistics of the teacher's training "
                                   "images: out-of-distribution check not done")
        return replace(decision, checks={**decision.checks, "embedding_ood": check})
    p = with_stats[0]
    value = {"distance": round(float(p.ood_distance), 2), "cutoff": round(float(p.ood_cutoff), 2)}
    if any(q.ood for q in with_stats):
        check = _check(False, value, f"the image is unlike the teacher's training images "
                                     f"(Mahalanobis distance {p.ood_distance:.1f} > cut-off "
                                     f"{p.ood_cutoff:.1f}): the teacher's output has no validity "
                                     f"on it")
        reason = decision.reason if not decision.accepted else f"out of distribution: {check['detail']}"
        return GateDecision(False, reason, {**decision.checks, "embedding_ood": check})
    check = _check(True, value, f"within the teacher's training images (distance "
                                f"{p.ood_distance:.1f} <= cut-off {p.ood_cutoff:.1f})")
    return replace(decision, checks={**decision.checks, "embedding_ood": check})


@dataclass(frozen=True)
class CxrAssessment:
    """The gate's decision on an image and the teacher's predictions.

    Attributes:
        gate: the final decision (tags, geometry and, when the teacher ran, the embedding).
        predictions: pathology -> Prediction; empty when the gate refused before the teacher
            ran; every call "not_assessable" (with the gate's reason) when it refused after.
    """

    gate: GateDecision
    predictions: dict[str, Prediction]
