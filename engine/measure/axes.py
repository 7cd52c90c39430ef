"""Frontal-plane electrical axes from the net areas of leads I and aVF.

axis = atan2(area_aVF, area_I) in degrees (-180, 180], the hexaxial
convention (0 deg towards lead I, +90 deg towards aVF). aVF is derived as
(II + III) / 2 or II - I / 2 when the record lacks it. Areas are taken on the
median beats, relative to the isoelectric PR level, over the wave's span.
"""

from __future__ import annotations

import math

import numpy as np


def frontal_axis(area_i: float, area_avf: float) -> float | None:
    """Axis in degrees, rounded to 1 deg; None when both areas are ~0."""
    if math.hypot(area_i, area_avf) < 1e-9:
        return None
    return float(round(math.degrees(math.atan2(area_avf, area_i))))


def lead_i_avf(beats: np.ndarray, leads: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray] | None:
    """Rows I and aVF of `beats` `[rows, L]` (aVF derived if absent); None without I/II."""
    idx = {name: i for i, name in enumerate(leads)}
    if "I" not in idx:
        return None
    lead_i = beats[idx["I"]]
    if "aVF" in idx:
        return lead_i, beats[idx["aVF"]]
    if "II" in idx and "III" in idx:
        return lead_i, (beats[idx["II"]] + beats[idx["III"]]) / 2.0
    if "II" in idx:
        return lead_i, beats[idx["II"]] - lead_i / 2.0
    return None


def wave_axis(beats: np.ndarray, leads: tuple[str, ...], base: np.ndarray, start: int, stop: int) -> float | None:
    """Axis of the wave between samples `start` and `stop` of `beats` `[rows, L]`,
    `base` `[rows]` the isoelectric level per row."""
    pair = lead_i_avf(beats - base[:, None], leads)
    if pair is None or stop <= start:
        return None
    a_i = float(pair[0][start:stop + 1].sum())
    a_f = float(pair[1][start:stop + 1].sum())
    return frontal_axis(a_i, a_f)
