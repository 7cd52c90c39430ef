"""Patient identity across the two panes: behaviour behind `app.views.banner`.

The controller asks this module, each time an ECG or a chest X-ray is shown:

- `replaces_other(new_meta, other_meta, keep)`: does the new file belong to another
  patient than the one in the other pane (`engine.pairing.compare_patients` says
  "different_patient"), so that the other pane must be cleared? Not when the user keeps
  it on purpose (View > "Keep X-ray when opening another ECG" / "Keep ECG when opening
  another X-ray"); an "unknown" pairing (a file without identifiers) never clears.
- `PairingGuard.update(record, cxr)`: the pairing of what is on screen now, shown in the
  banner (different patient: red, with the reason; unknown: said so; same: quiet).
- `teacher_note(pairing, gate)`: why the chest X-ray teacher's calls are withheld ("" when
  they may be shown): the X-ray is of a different patient, or the gate
  (`engine.cxr_gate`) refused the image before the teacher ran.

The PDF follows the screen: with a different patient's X-ray open, the export leaves that
X-ray and its teacher calls out and prints a red line saying so (chosen over refusing the
export, so that the ECG review can still be printed; `app.export_pdf`).
"""

from __future__ import annotations

import logging
from typing import Any

from app.views.banner import PairingBanner
from engine.pairing import Pairing, compare_patients
from engine.records import CxrImage, EcgRecord

log = logging.getLogger(__name__)

#: Banner headline of each pairing status, and the prefix of the engine's reason it
#: replaces (the reason says it in lower case: "different patients: the patient ID ...").
HEADLINES: dict[str, tuple[str, str]] = {
    "different_patient": ("DIFFERENT PATIENTS:", "different patients:"),
    "unknown": ("Patient identity not verified:", "patient unknown:"),
    "same_patient": ("Same patient:", "same patient:"),
}
GATE_PREFIX = "not a frontal chest radiograph:"


def strip_prefix(text: str, prefix: str) -> str:
    """`text` without a leading `prefix` (case-insensitive) and the spaces after it."""
    return text[len(prefix):].lstrip() if text.lower().startswith(prefix) else text


def banner_text(pairing: Pairing) -> str:
    """The banner's text for `pairing`: its headline and its reason (for a different
    patient, that the teacher comparison is withheld)."""
    headline, prefix = HEADLINES[pairing.status]
    text = f"{headline} {strip_prefix(pairing.reason, prefix)}"
    if pairing.status == "different_patient":
        text += " Chest X-ray teacher comparison withheld."
    return text


def replaces_other(new_meta: dict[str, Any], other_meta: dict[str, Any], keep: bool) -> bool:
    """Whether a newly opened file (its `meta`) must clear the other pane (`other_meta`):
    it is of a different patient and the user did not ask to keep the other pane."""
    if keep:
        return False
    pairing = compare_patients(new_meta, other_meta)
    if pairing.status == "different_patient":
        log.info("new file is of another patient (%s): clearing the other pane", pairing.reason)
        return True
    return False


def teacher_note(pairing: Pairing | None, gate: Any | None) -> str:
    """Why the teacher's calls must not be shown beside this ECG ("" when they may be):
    a different patient's X-ray, or a `GateDecision` that refused the image before the
    teacher ran (an image refused on the teacher's embedding keeps its calls, each
    "not assessable" with the reason)."""
    if pairing is not None and pairing.status == "different_patient":
        return "Chest X-ray teacher withheld: the X-ray is of a different patient."
    if gate is not None and not gate.accepted and not refused_on_embedding(gate):
        return ("Chest X-ray teacher not run: the image is not a frontal chest radiograph "
                f"({strip_prefix(gate.reason, GATE_PREFIX)}).")
    return ""


def gate_text(gate: Any) -> str:
    """The CXR pane's line for a `GateDecision`."""
    if gate.accepted:
        return f"Gate: {gate.reason}"
    if refused_on_embedding(gate):
        return f"Teacher calls not assessable: {gate.reason}"
    return f"Not a frontal chest radiograph: {strip_prefix(gate.reason, GATE_PREFIX)}"


def refused_on_embedding(gate: Any) -> bool:
    """Whether a `GateDecision` refused the image on the teacher's embedding (after the
    teacher ran), rather than on its tags or geometry."""
    check = gate.checks.get("embedding_ood")
    return check is not None and check.get("ok") is False


class PairingGuard:
    """Keeps the banner in step with what both panes show."""

    def __init__(self, banner: PairingBanner) -> None:
        self.banner = banner
        self.pairing: Pairing | None = None

    def update(self, record: EcgRecord | None, cxr: CxrImage | None) -> Pairing | None:
        """Compare the patient of `record` and `cxr` (None when either is missing) and
        show the verdict in the banner."""
        if record is None or cxr is None:
            self.pairing = None
            self.banner.show_pairing(None, "")
            return None
        self.pairing = compare_patients(record.meta, cxr.meta)
        self.banner.show_pairing(self.pairing.status, banner_text(self.pairing))
        return self.pairing

    @property
    def different(self) -> bool:
        return self.pairing is not None and self.pairing.status == "different_patient"
