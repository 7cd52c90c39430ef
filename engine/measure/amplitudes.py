"""Per-lead amplitudes on the median beat and the voltage criteria derived from them.

Amplitudes are in mV relative to the isoelectric PR level (mean of the 20 ms
before the global QRS onset). QRS waves follow the usual naming: a wave is a
stretch of the QRS on one side of the isoelectric level reaching at least
MIN_WAVE_MV; Q is a first negative wave, R the first positive wave, S the first
negative wave after R, R' a second positive wave after S. Absent waves are 0
(a lead with no Q wave has Q = 0 mV, which is a measurement, not a guess).
ST is the level at J (QRS offset) and J + 60 ms; P and T are the extreme
deviation (signed) within the wave's span.

Voltage criteria (mV; QRS duration in ms):
- Sokolow-Lyon: S(V1) + max(R(V5), R(V6)); LVH when >= 3.5.
- Cornell voltage: R(aVL) + S(V3); LVH when > 2.8 (men) / 2.0 (women).
- Cornell product: (R(aVL) + S(V3) [+ 0.8 for women]) * QRS; LVH when >= 244 mV*ms
  (Molloy 1992: 2440 mm*ms with 1 mm = 0.1 mV).
- Low QRS voltage: every limb lead's QRS peak-to-peak < 0.5 mV; every chest lead's < 1.0 mV.
"""

from __future__ import annotations

import numpy as np

from engine.measure.prep import FS_HZ

#: Smallest deflection counted as a QRS wave (mV; Minnesota code uses 0.025-0.05).
MIN_WAVE_MV: float = 0.03

LIMB_LEADS: tuple[str, ...] = ("I", "II", "III", "aVR", "aVL", "aVF")
CHEST_LEADS: tuple[str, ...] = ("V1", "V2", "V3", "V4", "V5", "V6")


def qrs_waves(x: np.ndarray) -> dict[str, float]:
    """Q, R, S, R' (mV, Q and S <= 0) of one lead's QRS samples `x` (baseline 0)."""
    sign = np.sign(x)
    waves: list[float] = []
    i = 0
    n = x.size
    while i < n:
        j = i
        while j < n and sign[j] == sign[i]:
            j += 1
        seg = x[i:j]
        ext = float(seg.max() if sign[i] > 0 else seg.min())
        if sign[i] != 0 and abs(ext) >= MIN_WAVE_MV:
            if waves and np.sign(waves[-1]) == np.sign(ext):
                waves[-1] = ext if abs(ext) > abs(waves[-1]) else waves[-1]
            else:
                waves.append(ext)
        i = j
    q = r = s = r2 = 0.0
    k = 0
    if waves and waves[0] < 0:
        q = waves[0]
        k = 1
    rest = waves[k:]
    if rest:
        r = rest[0]
        if len(rest) > 1:
            s = rest[1]
        if len(rest) > 2:
            r2 = rest[2]
    # a QS complex (one negative wave) is reported as Q with R = S = 0
    return {"q_mv": round(q, 3), "r_mv": round(r, 3), "s_mv": round(s, 3), "r_prime_mv": round(r2, 3)}


def _extreme(x: np.ndarray) -> float:
    return float(x[int(np.argmax(np.abs(x)))]) if x.size else 0.0


def lead_amplitudes(beats: np.ndarray, leads: tuple[str, ...], base: np.ndarray, qrs_on: int, qrs_off: int,
                    p_span: tuple[int, int] | None, t_span: tuple[int, int] | None) -> dict[str, dict[str, float | None]]:
    """Per lead name: p_mv, q_mv, r_mv, s_mv, r_prime_mv, st_j_mv, st_j60_mv, t_mv, qrs_pp_mv.

    p_mv is None without a P wave, t_mv and st_j60_mv None without a T end."""
    y = beats - base[:, None]
    j60 = qrs_off + int(round(0.06 * FS_HZ))
    out: dict[str, dict[str, float | None]] = {}
    for r, name in enumerate(leads):
        qrs = y[r, qrs_on:qrs_off + 1]
        d: dict[str, float | None] = dict(qrs_waves(qrs))
        d["qrs_pp_mv"] = round(float(np.ptp(qrs)), 3)
        d["p_mv"] = round(_extreme(y[r, p_span[0]:p_span[1] + 1]), 3) if p_span else None
        d["st_j_mv"] = round(float(y[r, qrs_off]), 3)
        d["st_j60_mv"] = round(float(y[r, j60]), 3) if j60 < y.shape[1] else None
        d["t_mv"] = round(_extreme(y[r, t_span[0]:t_span[1] + 1]), 3) if t_span else None
        out[name] = d
    return out


def voltage_criteria(amp: dict[str, dict[str, float | None]], qrs_ms: float | None, sex: str | None) -> dict[str, object]:
    """Voltage criteria from `lead_amplitudes` output; a criterion whose leads are
    missing is None with a reason under "<name>_reason"."""
    def get(lead: str, key: str) -> float | None:
        v = amp.get(lead, {}).get(key)
        return None if v is None else float(v)

    out: dict[str, object] = {}
    s_v1, r_v5, r_v6 = get("V1", "s_mv"), get("V5", "r_mv"), get("V6", "r_mv")
    if s_v1 is None or (r_v5 is None and r_v6 is None):
        out["sokolow_lyon_mv"] = None
        out["sokolow_lyon_reason"] = "lead missing: V1, V5/V6"
    else:
        out["sokolow_lyon_mv"] = round(abs(s_v1) + max(v for v in (r_v5, r_v6) if v is not None), 2)
        out["sokolow_lyon_lvh"] = out["sokolow_lyon_mv"] >= 3.5
    r_avl, s_v3 = get("aVL", "r_mv"), get("V3", "s_mv")
    female = (sex or "").upper().startswith("F")
    known_sex = (sex or "").upper()[:1] in ("F", "M")
    if r_avl is None or s_v3 is None:
        out["cornell_mv"] = None
        out["cornell_reason"] = "lead missing: aVL, V3"
    else:
        cv = round(r_avl + abs(s_v3), 2)
        out["cornell_mv"] = cv
        out["cornell_lvh"] = (cv > (2.0 if female else 2.8)) if known_sex else None
        if not known_sex:
            out["cornell_reason"] = "sex unknown: threshold 2.0 mV (women) / 2.8 mV (men)"
        if qrs_ms is not None:
            out["cornell_product_mv_ms"] = round((cv + (0.8 if female else 0.0)) * qrs_ms, 0)
            out["cornell_product_lvh"] = out["cornell_product_mv_ms"] >= 244.0 if known_sex else None
        else:
            out["cornell_product_mv_ms"] = None
    limb = [get(l, "qrs_pp_mv") for l in LIMB_LEADS]
    chest = [get(l, "qrs_pp_mv") for l in CHEST_LEADS]
    out["low_voltage_limb"] = None if any(v is None for v in limb) else all(v < 0.5 for v in limb)
    out["low_voltage_chest"] = None if any(v is None for v in chest) else all(v < 1.0 for v in chest)
    return out
