"""12-lead ECG from a cardiac-dipole (vectorcardiogram) model.

Each beat is a sum of Gaussian-shaped 3-D dipole waves (ECGSYN's Gaussian kernels,
McSharry et al. 2003, extended to a vector per wave): two atrial P components, septal q,
main R, terminal S, and an asymmetric T (two kernels). A wave's contribution is
``vec * exp(-(t - c)^2 / (2 s^2))`` in Frank coordinates (X right->left, Y head->feet,
Z front->back, mV). The VCG ``[3, T]`` is projected to the 8 independent leads with the
Dower matrix (`training.dower.DOWER`, precordial rows perturbed per subject for electrode
placement), electrode-level noise is added, and III, aVR, aVL, aVF are derived from I and II
(`training.dower.limb_leads_from_i_ii`), so Einthoven's and Goldberger's laws hold exactly.

Signs of each condition (v2: graded in the continuous latents the X-ray shows, and made of
ratios, morphology and timing so they survive the paper's per-lead [-1, 1] normalisation;
docs/phantom.md gives the clinical source of each):
- heart size (``heart_size_z``, LV enlargement): graded QRS widening (``qrs_ms``, ~6 ms per
  s.d.; intraventricular conduction delay when large), leftward frontal axis (~7 degrees per
  s.d.), a larger and more posterior QRS vector (taller R in I/aVL/V5-V6, deeper S in V1-V2,
  so QRS/T ratios and R/S balance change within each lead), from ~1.5-2 s.d. a lateral
  "strain" pattern (ST depression and T turned against the QRS in I, aVL, V5-V6), left atrial
  abnormality (wider P, deeper terminal P in V1), and LBBB in a fraction (`EpisodeState.lbbb`:
  no septal q, broad notched R leftward/posterior, QRS >= 125 ms, discordant ST-T);
- pleural fluid (``fluid_z``): sinus tachycardia, QRS attenuation that is stronger in the limb
  leads than in the chest leads (`limb_attenuation`; after normalisation it shows as a worse
  limb-lead signal-to-noise ratio, noise staying in mV), electrical alternans in a fraction of
  the largest effusions (`EpisodeState.alternans`: QRS size alternating beat to beat);
- congestion (``congestion_z``): tachycardia, ectopic beats (PVCs, PACs), atrial fibrillation
  (irregular RR, no P, fibrillatory waves), repolarisation changes (flatter T, longer QT),
  broader P (left atrial pressure), slight limb-lead attenuation (peripheral oedema).
Population variation: age, sex, BMI, personal axis, heart rotation, electrode placement,
right bundle branch block (5%, label-independent wide QRS), mains 50/60 Hz, baseline
wander, muscle noise.
"""

from __future__ import annotations

import numpy as np

from engine.constants import LEADS
from training.dower import DOWER, DOWER_LEADS, twelve_leads_from_independent
from training.phantom.latent import EpisodeState, SubjectTraits

#: Sampling rate (Hz) and length (samples) of a MIMIC-IV-ECG record.
FS_HZ: int = 500
N_SAMPLES: int = 5000
#: Lead order of a MIMIC-IV-ECG file (aVF before aVL).
MIMIC_LEADS: tuple[str, ...] = ("I", "II", "III", "aVR", "aVF", "aVL",
                                "V1", "V2", "V3", "V4", "V5", "V6")
_PRECORDIAL_ROWS = [DOWER_LEADS.index(f"V{i}") for i in range(1, 7)]
_LIMB_ROWS = [DOWER_LEADS.index("I"), DOWER_LEADS.index("II")]


def limb_attenuation(state: EpisodeState) -> float:
    """Extra factor (<= 1) on the limb leads' cardiac signal: pleural fluid (and, less,
    the peripheral oedema of congestion) lowers limb-lead QRS voltage more than the
    chest leads' (Madias 2003-2008). All six limb leads follow, being derived from I, II."""
    return float(np.exp(-0.25 * max(state.fluid_z - 0.3, 0.0) - 0.05 * max(state.congestion_z, 0.0)))


def _rot(axis: int, deg: float) -> np.ndarray:
    """3x3 rotation about Frank axis `axis` (0=X, 1=Y, 2=Z) by `deg` degrees."""
    a = np.deg2rad(deg)
    c, s = np.cos(a), np.sin(a)
    i, j = [k for k in range(3) if k != axis]
    r = np.eye(3)
    r[i, i], r[i, j], r[j, i], r[j, j] = c, -s, s, c
    return r


def subject_geometry(rng: np.random.Generator, traits: SubjectTraits) -> dict:
    """Per-subject fixed geometry: heart orientation and perturbed Dower matrix.

    Returns {"rotation": float [3,3], "dower": float [8,3] (DOWER_LEADS rows), "gain": float}.
    """
    rot = _rot(0, rng.normal(0, 10)) @ _rot(1, rng.normal(0, 12))
    dower = DOWER.copy()
    # electrode placement: precordial electrodes up/down one interspace or sideways
    shift = rng.normal(0.0, 0.25)
    rows = dower[_PRECORDIAL_ROWS]
    mixed = rows.copy()
    if shift > 0:
        mixed[:-1] = (1 - shift) * rows[:-1] + shift * rows[1:]
    else:
        mixed[1:] = (1 + shift) * rows[1:] - shift * rows[:-1]
    dower[_PRECORDIAL_ROWS] = mixed * (1.0 + rng.normal(0.0, 0.06, size=(6, 1)))
    gain = np.exp(-0.028 * (traits.bmi - 27.0)) * (0.86 if traits.sex == "F" else 1.0)
    gain *= np.exp(rng.normal(0.0, 0.18))
    return {"rotation": rot, "dower": dower, "gain": float(gain)}


def _beat_times(rng: np.random.Generator, state: EpisodeState, duration: float
                ) -> tuple[np.ndarray, np.ndarray]:
    """R-peak times (s) and beat kinds (0 sinus, 1 PVC, 2 PAC) covering [-1, duration + 1]."""
    rr = 60.0 / state.heart_rate_bpm
    p_pvc = 0.008 + 0.10 / (1.0 + np.exp(-2.0 * (state.congestion_z - 1.2)))
    p_pac = 0.01 + 0.05 / (1.0 + np.exp(-2.0 * (state.congestion_z - 1.0)))
    f_resp = rng.uniform(0.18, 0.35)
    ph_resp, ph_lf = rng.uniform(0, 2 * np.pi, 2)
    times, kinds = [], []
    t = -rng.uniform(0.0, rr) - 0.6
    pending_pause = 0.0
    while t < duration + 1.0:
        times.append(t)
        u = rng.random()
        kind = 1 if u < p_pvc else (2 if u < p_pvc + p_pac else 0)
        if kinds and kinds[-1] != 0:
            kind = 0
        kinds.append(kind)
        if state.af:
            step = rr * rng.gamma(12.0, 1.0 / 12.0)
        else:
            hrv = 1.0 + 0.035 * np.sin(2 * np.pi * f_resp * t + ph_resp) \
                + 0.025 * np.sin(2 * np.pi * 0.1 * t + ph_lf) + rng.normal(0.0, 0.012)
            step = rr * hrv
        if pending_pause:
            step, pending_pause = pending_pause, 0.0
        nxt_kind_premature = rng.random()
        # premature beats: next beat early, then compensatory pause
        if nxt_kind_premature < p_pvc + p_pac and len(times) > 1 and kinds[-1] == 0:
            coupling = rng.uniform(0.55, 0.75)
            pending_pause = step * (2.0 - coupling) if nxt_kind_premature < p_pvc else step * 1.1
            step *= coupling
            t += step
            times.append(t)
            kinds.append(1 if nxt_kind_premature < p_pvc else 2)
            continue
        t += step
    return np.asarray(times), np.asarray(kinds)


def synthesize_vcg(rng: np.random.Generator, traits: SubjectTraits, state: EpisodeState,
                   geometry: dict, n_samples: int = N_SAMPLES, fs: int = FS_HZ) -> np.ndarray:
    """VCG float64 `[3, n_samples]` in mV (Frank X, Y, Z) for one 10-s record."""
    duration = n_samples / fs
    t = np.arange(n_samples) / fs
    beat_t, kinds = _beat_times(rng, state, duration)
    rr = 60.0 / state.heart_rate_bpm

    hz = state.heart_size_z
    hzp = max(hz, 0.0)
    cong = max(state.congestion_z, 0.0)
    age_z = (traits.age - 62.0) / 17.0
    wscale = state.qrs_ms / 92.0
    # LV enlargement turns the frontal axis leftward, ~7 degrees per s.d. of heart size
    axis = traits.axis_deg - 7.0 * hzp - 6.0 * age_z - 0.25 * (traits.bmi - 27.0)
    frontal = _rot(2, axis)  # rotation in the frontal (X-Y) plane; negative = leftward/superior
    rot = geometry["rotation"] @ frontal
    volt = geometry["gain"] * np.exp(-0.10 * max(state.fluid_z, 0.0))

    # LV hypertrophy/dilatation: larger, more posterior QRS vector (tall R in V5-6 / I /
    # aVL, deep S in V1-V2) relative to an unchanged T (Sokolow-Lyon, Cornell)
    q_vec = rot @ np.array([-0.12, -0.02, -0.15])
    r_vec = rot @ (np.array([1.25, 0.70, 0.25]) * (1.0 + 0.05 * hzp) + np.array([0.0, 0.0, 0.05 * hzp]))
    s_vec = rot @ np.array([-0.25, -0.25, 0.55]) * (1.0 + 0.10 * hzp)
    r_dir = r_vec / np.linalg.norm(r_vec)
    # "strain": ST depression and T inversion opposite the QRS in the lateral leads, graded,
    # appearing from about 1.5-2 s.d. of heart size
    strain = 0.6 / (1.0 + np.exp(-2.5 * (hz - 2.2)))
    # acute congestion: flatter T waves and a longer QT (repolarisation changes)
    t_flat = float(np.clip(1.0 - 0.10 * max(state.congestion_z - 0.3, 0.0), 0.6, 1.0))
    t_base = np.array([0.26, 0.18, -0.10]) * t_flat
    t_vec = rot @ ((1.0 - strain) * t_base) - strain * 0.28 * r_dir
    st_vec = -strain * 0.10 * r_dir
    if state.lbbb:  # LBBB: no septal q, broad notched R leftward/posterior, discordant ST-T
        r_lb = rot @ np.array([1.05, 0.25, 0.75]) * (1.0 + 0.08 * hzp)
        t_vec = -0.30 * r_lb / np.linalg.norm(r_lb)
        st_vec = -0.10 * r_lb / np.linalg.norm(r_lb)
    # left atrial abnormality: wider P, deeper terminal P in V1 (posterior P2)
    la = 0.10 * cong + 0.06 * hzp
    p_width = 1.0 + la + rng.normal(0.0, 0.04)
    p1 = np.array([0.02, 0.10, -0.04])
    p2 = np.array([0.07, 0.06, 0.05 + 0.3 * la])

    qt = ((0.39 + 0.006 * hzp + 0.012 * cong) * np.sqrt(np.clip(rr, 0.4, 1.5))
          + (state.qrs_ms - 92) / 2000)
    pr = 0.155 + 0.01 * age_z + rng.normal(0.0, 0.012)
    t_peak = qt - 0.10
    half_qrs = state.qrs_ms / 2000.0

    centers, widths, vecs = [], [], []
    for n_beat, (bt, kind) in enumerate(zip(beat_t, kinds)):
        jitter = rng.normal(1.0, 0.03)
        # electrical alternans: QRS amplitude alternates beat to beat (swinging heart)
        alt = (1.0 if n_beat % 2 else 0.72) if state.alternans else 1.0
        if kind == 1:  # PVC: wide, bizarre QRS, opposite T, no P
            pv = rot @ _rot(2, rng.uniform(-120, 120)) @ np.array([1.3, 0.6, 0.4])
            waves = [(bt - 0.03, 0.022, 0.8 * pv), (bt + 0.03, 0.025, -0.5 * pv),
                     (bt + t_peak + 0.06, 0.06, -0.25 * pv / np.linalg.norm(pv))]
        else:
            if state.lbbb:
                w = state.qrs_ms / 1000.0
                waves = [(bt - 0.18 * w, 0.11 * w, 0.75 * r_lb * jitter * alt),
                         (bt + 0.16 * w, 0.12 * w, 0.85 * r_lb * jitter * alt)]
            else:
                waves = [(bt - 0.022 * wscale, 0.008 * wscale, q_vec * alt),
                         (bt, 0.011 * wscale, r_vec * jitter * alt),
                         (bt + 0.026 * wscale, 0.010 * wscale, s_vec * alt)]
            if traits.rbbb:
                waves.append((bt + 0.065, 0.014, rot @ np.array([-0.35, 0.0, -0.45])))
            waves += [(bt + t_peak - 0.03, 0.045, 0.6 * t_vec), (bt + t_peak + 0.015, 0.03, 0.55 * t_vec)]
            if np.any(st_vec):
                waves.append((bt + half_qrs + 0.07, 0.035, st_vec))
            if not state.af:
                pr_b = pr * (0.8 if kind == 2 else 1.0)
                pvec = (p1 + p2) * (-0.6 if kind == 2 else 1.0)
                if kind == 2:
                    waves += [(bt - pr_b, 0.02, pvec)]
                else:
                    waves += [(bt - pr_b - 0.02 * p_width, 0.018 * p_width, p1),
                              (bt - pr_b + 0.012 * p_width, 0.02 * p_width, p2)]
        for c, s, v in waves:
            centers.append(c)
            widths.append(s)
            vecs.append(v)
    vcg = np.zeros((3, n_samples))
    for c, s, v in zip(centers, widths, vecs):  # each kernel only over +-5 s (cheap, exact to 4e-6)
        lo, hi = max(0, int((c - 5 * s) * fs)), min(n_samples, int((c + 5 * s) * fs) + 2)
        if hi <= lo:
            continue
        g = np.exp(-0.5 * ((t[lo:hi] - c) / s) ** 2)
        vcg[:, lo:hi] += np.outer(v, g)
    if state.af:  # fibrillatory waves, mainly along the V1 axis
        f = rng.uniform(5.0, 8.0)
        phase = 2 * np.pi * f * t + np.cumsum(rng.normal(0.0, 0.05, n_samples))
        amp = rng.uniform(0.03, 0.08) * (1.0 + 0.3 * np.sin(2 * np.pi * 0.3 * t))
        vcg += np.outer(np.array([-0.4, 0.3, -0.85]), amp * np.sin(phase))
    return vcg * volt


def _noise8(rng: np.random.Generator, traits: SubjectTraits, n: int, fs: int) -> np.ndarray:
    """Electrode-level noise mapped to the 8 independent leads, float64 `[8, n]` (mV)."""
    t = np.arange(n) / fs
    n_el = 9  # RA, LA, LL, V1..V6
    # baseline wander: respiration + slow drift, per electrode
    wander = np.zeros((n_el, n))
    for _ in range(2):
        f = rng.uniform(0.05, 0.4, size=(n_el, 1))
        wander += rng.uniform(0.0, 0.12, size=(n_el, 1)) * np.sin(2 * np.pi * f * t + rng.uniform(0, 6.3, (n_el, 1)))
    # muscle (EMG): white noise smoothed to ~20-150 Hz band, limb electrodes noisier
    emg_level = rng.uniform(0.004, 0.03)
    white = rng.normal(0.0, 1.0, size=(n_el, n))
    emg = 0.7 * (white + np.roll(white, 1, axis=1))  # mild low-pass
    scale = np.array([1.6, 1.6, 1.4, 1, 1, 1, 1, 1, 1])[:, None]
    emg *= emg_level * scale
    # mains hum
    hum = rng.uniform(0.0, 0.02, size=(n_el, 1)) * np.sin(
        2 * np.pi * traits.mains_hz * t + rng.uniform(0, 6.3, (n_el, 1)))
    el = wander + emg + hum
    ra, la, ll = el[0], el[1], el[2]
    wct = (ra + la + ll) / 3.0
    return np.vstack([la - ra, ll - ra, el[3:] - wct])


def synthesize_ecg(rng: np.random.Generator, traits: SubjectTraits, state: EpisodeState,
                   geometry: dict, n_samples: int = N_SAMPLES, fs: int = FS_HZ) -> np.ndarray:
    """12-lead ECG float64 `[12, n_samples]` in mV, rows in canonical `engine.constants.LEADS` order."""
    vcg = synthesize_vcg(rng, traits, state, geometry, n_samples, fs)
    cardiac = geometry["dower"] @ vcg
    cardiac[_LIMB_ROWS] *= limb_attenuation(state)
    eight = cardiac + _noise8(rng, traits, n_samples, fs)
    return twelve_leads_from_independent(eight)


def to_mimic_order(leads: np.ndarray) -> np.ndarray:
    """Reorder `[12, T]` from canonical `LEADS` to MIMIC file order (`MIMIC_LEADS`), by name."""
    return leads[[LEADS.index(n) for n in MIMIC_LEADS]]
