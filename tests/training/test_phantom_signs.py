"""Phantom v2: each condition moves the ECG feature the literature says, in its direction.

The signs are measured on the synthesised 12-lead ECG (downsampled to 100 Hz, baseline
removed, and -- for the scale-free features -- each lead min-max scaled to [-1, 1] as the
engine does), holding the subject fixed and changing one latent at a time
(docs/phantom.md lists each sign and its clinical source).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from scipy.signal import medfilt, resample_poly

from engine.constants import LEADS
from training.phantom.ecg import subject_geometry, synthesize_ecg
from training.phantom.latent import (CARDIOMEGALY_Z, EDEMA_Z, EFFUSION_Z, chexpert_value,
                                     draw_episode, draw_traits)
from training.phantom.report import ECG_FEATURES, ECG_MV_FEATURES, ecg_features, ecg_mv_features

F = {n: i for i, n in enumerate(ECG_FEATURES)}
M = {n: i for i, n in enumerate(ECG_MV_FEATURES)}


def _prepared(x500: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mV at 100 Hz baseline-removed, the same per-lead min-max scaled to [-1, 1])."""
    x = resample_poly(x500, 1, 5, axis=1)
    x = x - np.stack([medfilt(medfilt(lead, 21), 61) for lead in x])
    lo, hi = x.min(axis=1, keepdims=True), x.max(axis=1, keepdims=True)
    return x, 2 * (x - lo) / (hi - lo) - 1


def _subjects(n: int, seed: int = 3):
    """`n` (traits, baseline state, geometry seed) with sinus rhythm and no bundle branch block."""
    rng = np.random.default_rng(seed)
    out = []
    while len(out) < n:
        tr = draw_traits(rng)
        if tr.rbbb:
            continue
        st = draw_episode(rng, tr)
        st = dataclasses.replace(st, af=False, lbbb=False, alternans=False, heart_size_z=0.0,
                                 congestion_z=-0.5, fluid_z=-0.5, heart_rate_bpm=75.0, qrs_ms=90.0)
        out.append((tr, st, len(out)))
    return out


def _features(tr, st, k, **change) -> tuple[np.ndarray, np.ndarray]:
    """(scale-free features, mV features) of subject k's ECG with `change` applied to its state."""
    st = dataclasses.replace(st, **change)
    geo = subject_geometry(np.random.default_rng([k, 0]), tr)
    x = synthesize_ecg(np.random.default_rng([k, 1]), tr, st, geo)
    mv, scaled = _prepared(x)
    return ecg_features(scaled), ecg_mv_features(mv)


def _paired(change_lo: dict, change_hi: dict, n: int = 12):
    lo = [_features(*s, **change_lo) for s in _subjects(n)]
    hi = [_features(*s, **change_hi) for s in _subjects(n)]
    return (np.array([a for a, _ in lo]), np.array([b for _, b in lo]),
            np.array([a for a, _ in hi]), np.array([b for _, b in hi]))


def test_cardiomegaly_widens_qrs_turns_axis_left_and_strains_lateral_t():
    big = {"heart_size_z": 3.0, "qrs_ms": 90.0 + 6.0 * 3.0}
    f0, m0, f1, m1 = _paired({}, big)
    # QRS duration (measured on the ECG) up with LV enlargement
    assert np.median(f1[:, F["qrs_width_ms"]] - f0[:, F["qrs_width_ms"]]) > 5.0
    # leftward axis: lead II / aVF become less positive relative to I (QRS polarity, scale-free)
    d_avf = f1[:, F["qrs_polarity_aVF"]] - f0[:, F["qrs_polarity_aVF"]]
    assert np.mean(d_avf < 0) >= 0.75
    # lateral strain: T turns against the QRS in V5, V6 and I
    for lead in ("V5", "V6", "I"):
        d = f1[:, F[f"t_polarity_{lead}"]] - f0[:, F[f"t_polarity_{lead}"]]
        assert np.mean(d < 0) >= 0.75, lead
    # LV voltage: Sokolow-Lyon (mV) up
    assert np.mean(m1[:, M["sokolow_lyon_mv"]] > m0[:, M["sokolow_lyon_mv"]]) >= 0.75


def test_lbbb_gives_wide_qrs_and_discordant_lateral_t():
    f0, _, f1, _ = _paired({}, {"lbbb": True, "qrs_ms": 140.0, "heart_size_z": 1.5})
    assert np.median(f1[:, F["qrs_width_ms"]]) > np.median(f0[:, F["qrs_width_ms"]]) + 15
    assert np.mean(f1[:, F["t_polarity_V6"]] < 0) >= 0.75


def test_effusion_lowers_limb_voltage_relative_to_chest_leads():
    f0, m0, f1, m1 = _paired({}, {"fluid_z": 3.0})
    ratio = M["limb_chest_p2p_log_ratio"]
    assert np.all(m1[:, ratio] < m0[:, ratio])
    assert np.median(m0[:, ratio] - m1[:, ratio]) > 0.4       # limb/chest falls by > 1/3
    # after per-lead scaling it survives as a worse signal-to-noise ratio in the limb leads
    assert np.mean(f1[:, F["limb_chest_noise_log_ratio"]] > f0[:, F["limb_chest_noise_log_ratio"]]) >= 0.75


def test_large_effusion_alternans_is_measurable():
    f0, _, f1, _ = _paired({"fluid_z": 2.5}, {"fluid_z": 2.5, "alternans": True})
    assert np.median(f1[:, F["qrs_alternans"]]) > 2 * np.median(f0[:, F["qrs_alternans"]])
    assert np.median(f1[:, F["qrs_alternans"]]) > 0.15


def test_congestion_flattens_t_waves():
    f0, _, f1, _ = _paired({}, {"congestion_z": 3.5})
    d = f1[:, F["t_polarity_V4"]] - f0[:, F["t_polarity_V4"]]
    assert np.mean(d < 0) >= 0.75


def _population(n: int = 1500, seed: int = 5):
    rng = np.random.default_rng(seed)
    return [draw_episode(rng, draw_traits(rng)) for _ in range(n)]


def test_heart_rate_rises_with_congestion_and_fluid_not_heart_size():
    eps = _population()
    hr = np.array([e.heart_rate_bpm for e in eps])
    for name in ("congestion_z", "fluid_z"):
        z = np.array([getattr(e, name) for e in eps])
        assert hr[z > 1.5].mean() > hr[z < 0].mean() + 6, name
    # v2: heart size on its own barely moves the rate (no shared heart-rate factor)
    r = [np.corrcoef(hr, [getattr(e, n) for e in eps])[0, 1]
         for n in ("heart_size_z", "congestion_z", "fluid_z")]
    assert r[0] < 0.5 * min(r[1], r[2])


def test_af_lbbb_and_qrs_follow_their_own_latents():
    eps = _population(4000)
    cong = np.array([e.congestion_z for e in eps])
    heart = np.array([e.heart_size_z for e in eps])
    af = np.array([e.af for e in eps])
    lbbb = np.array([e.lbbb for e in eps])
    qrs = np.array([e.qrs_ms for e in eps])
    assert af[cong > EDEMA_Z].mean() > 2 * af[cong <= EDEMA_Z].mean()
    assert lbbb[heart > 1.5].mean() > 3 * lbbb[heart < 0].mean()
    assert 0.005 < lbbb.mean() < 0.05
    assert qrs[heart > 2.0].mean() > qrs[heart < 0].mean() + 10
    alt = np.array([e.alternans for e in eps])
    fluid = np.array([e.fluid_z for e in eps])
    assert alt.any() and fluid[alt].min() > EFFUSION_Z + 1.0


def test_latents_share_less_than_v1():
    eps = _population(3000)
    z = np.array([[e.heart_size_z, e.congestion_z, e.fluid_z] for e in eps])
    c = np.corrcoef(z.T)[np.triu_indices(3, 1)]
    assert np.all((c > 0.1) & (c < 0.35))


def test_uncertain_labels_cluster_near_the_threshold():
    rng = np.random.default_rng(0)
    margins = rng.normal(0.0, 1.0, 20000)
    vals = np.array([chexpert_value(rng, int(m > 0), float(m)) for m in margins])
    near = np.abs(margins) < 0.3
    assert (vals[near] == "-1.0").mean() > 0.2
    assert (vals[~near & (np.abs(margins) > 1)] == "-1.0").mean() < 0.01
    # positives near the threshold are often not reported positive; far ones almost always are
    assert (vals[(margins > 0) & (margins < 0.2)] == "1.0").mean() < 0.6
    assert (vals[margins > 1.5] == "1.0").mean() > 0.95
    assert CARDIOMEGALY_Z > 0


def test_difficulty_simulation_matches_the_plan():
    """`training.phantom.difficulty` draws the planned stays' latents and labels of each stay."""
    from training.phantom.difficulty import simulate
    from training.phantom.layout import plan_subject

    d = simulate(6, seed=7)
    stays = [ep for k in range(6) for ep in plan_subject(7, k).episodes[1:]]
    assert len(d["label"]) == len(stays) == len(d["ecg"]) == len(d["mv"])
    np.testing.assert_allclose(d["latent"][:, 0], [e.heart_size_z for e in stays])
    assert np.isfinite(d["ecg"]).all() and d["ecg"].shape[1] == len(ECG_FEATURES)
    hr = d["ecg"][:, F["heart_rate_bpm"]]
    assert np.all((hr > 35) & (hr < 190))
