"""The AI findings cells as text, shared by the AI panel and the PDF export (no Qt)."""

from __future__ import annotations

from engine.records import Prediction

#: The call of a prediction above / below its threshold.
POSITIVE, NEGATIVE = "POSITIVE", "negative"
#: Colour (RGB) of a positive call, on screen and on paper.
POSITIVE_RGB = (190, 30, 30)


def prediction_cells(pred: Prediction | None, missing: str = "") -> tuple[str, str, str]:
    """(probability, threshold, call) of one model's prediction, e.g. ("0.812", "0.400",
    "POSITIVE"); `missing` in each cell when there is no prediction."""
    if pred is None:
        return missing, missing, missing
    call = POSITIVE if pred.positive else NEGATIVE
    return f"{pred.probability:.3f}", f"{pred.threshold:.3f}", call
