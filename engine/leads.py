"""Lead relations: the limb leads that follow from leads I and II.

Einthoven (III = II - I) and Goldberger (augmented leads), written once and used by
preprocessing (deriving missing limb leads), the VCG augmentation (re-deriving them
after rotation) and the phantom generator.
"""

from __future__ import annotations

import numpy as np


def limb_leads_from_i_ii(lead_i: np.ndarray, lead_ii: np.ndarray) -> dict[str, np.ndarray]:
    """Derive III, aVR, aVL, aVF from I and II (any shape, same units; returns new arrays)."""
    return {
        "III": lead_ii - lead_i,
        "aVR": -(lead_i + lead_ii) / 2.0,
        "aVL": lead_i - lead_ii / 2.0,
        "aVF": lead_ii - lead_i / 2.0,
    }
