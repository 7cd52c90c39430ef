"""Dower and inverse Dower transforms between the vectorcardiogram (X, Y, Z) and
the 8 independent ECG leads, and re-derivation of the limb leads by name.

Matrices:
- Dower et al. 1980 (J Electrocardiol 13:189): leads = D @ vcg.
- Edenbrandt & Pahlm 1988 (J Electrocardiol 21:361), "inverse Dower": vcg = Dinv @ leads.
Both use the lead order of `DOWER_LEADS` (named, never positional elsewhere).

numpy-only so that the phantom generator can use it; the torch augmentations
convert these arrays to tensors.
"""

from __future__ import annotations

import numpy as np

from engine.constants import LEADS
from engine.leads import limb_leads_from_i_ii  # noqa: F401  (re-exported)

#: Lead order of the rows of DOWER and the columns of INVERSE_DOWER.
DOWER_LEADS: tuple[str, ...] = ("I", "II", "V1", "V2", "V3", "V4", "V5", "V6")

#: float64 [8, 3]: independent leads (DOWER_LEADS) from VCG (X, Y, Z).
DOWER = np.array([
    [0.632, -0.235, 0.059],   # I
    [0.235, 1.066, -0.132],   # II
    [-0.515, 0.157, -0.917],  # V1
    [0.044, 0.164, -1.387],   # V2
    [0.882, 0.098, -1.277],   # V3
    [1.213, 0.127, -0.601],   # V4
    [1.125, 0.127, -0.086],   # V5
    [0.831, 0.076, 0.230],    # V6
])

#: float64 [3, 8]: VCG (X, Y, Z) from independent leads (DOWER_LEADS).
INVERSE_DOWER = np.array([
    #  I       II      V1      V2      V3      V4      V5      V6
    [0.156, -0.010, -0.172, -0.074, 0.122, 0.231, 0.239, 0.194],   # X
    [-0.227, 0.887, 0.057, -0.019, -0.106, -0.022, 0.041, 0.048],  # Y
    [0.022, 0.102, -0.229, -0.310, -0.246, -0.063, 0.055, 0.108],  # Z
])

#: Row index of each DOWER_LEADS lead in the canonical 12-lead order.
INDEPENDENT_INDEX: tuple[int, ...] = tuple(LEADS.index(n) for n in DOWER_LEADS)


def twelve_leads_from_independent(eight: np.ndarray) -> np.ndarray:
    """8 independent leads float `[8, T]` (rows in DOWER_LEADS order, mV) -> 12 leads
    float `[12, T]` in canonical `LEADS` order, limb leads derived from I and II."""
    by_name = dict(zip(DOWER_LEADS, eight))
    by_name.update(limb_leads_from_i_ii(by_name["I"], by_name["II"]))
    return np.stack([by_name[name] for name in LEADS])


def twelve_leads_from_vcg(vcg: np.ndarray) -> np.ndarray:
    """VCG float `[3, T]` (mV) -> 12 leads float `[12, T]` in canonical `LEADS` order."""
    return twelve_leads_from_independent(DOWER @ vcg)
