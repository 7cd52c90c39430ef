"""`python3 -m training.phantom.difficulty`: how hard is the phantom, before writing any file?

Draws `--subjects` subjects exactly as `cromotex-train phantom` plans them (same seed, same
latents), synthesises one ECG per ED stay (no CXR rendering, no files: ~20x faster than
generating the cohort), prepares it as the cohort does (100 Hz, baseline removed; per-lead
[-1, 1] for the scale-free features), draws an observed CheXpert label per stay with the
generator's label noise, splits 70:10:20 by subject, fits the `phantom-report` logistic
baselines on train and scores them on test (AUROC): ECG preprocessed features, ECG raw
(+ mV-only features), heart rate alone, and the X-ray latents (heart size, congestion, fluid).

The ECG and labels are statistically those of the cohort, not byte-identical (the cohort
renders studies in a different order of random draws).
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
from scipy.signal import medfilt, resample_poly

from engine.constants import PATHOLOGIES
from training.phantom.ecg import subject_geometry, synthesize_ecg
from training.phantom.latent import chexpert_value
from training.phantom.layout import plan_subject
from training.phantom.report import ECG_FEATURES, _fill_nan, ecg_features, ecg_mv_features, fit_auroc


def prepared(x500: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(float64 `[12, 1000]` mV at 100 Hz with the baseline removed (200 ms + 600 ms
    medians), the same min-max scaled to [-1, 1] per lead) of a 500 Hz `[12, 5000]` ECG."""
    x = resample_poly(x500, 1, 5, axis=1)
    x = x - np.stack([medfilt(medfilt(lead, 21), 61) for lead in x])
    lo, hi = x.min(axis=1, keepdims=True), x.max(axis=1, keepdims=True)
    return x, 2 * (x - lo) / np.maximum(hi - lo, 1e-9) - 1


def simulate(subjects: int, seed: int) -> dict[str, np.ndarray]:
    """Per stay: features, mV features, latents, observed labels, subject index."""
    feats, mv, lat, obs, subj = [], [], [], [], []
    for k in range(subjects):
        plan = plan_subject(seed, k)
        rng = np.random.default_rng([seed, k, 7])
        geo = subject_geometry(rng, plan.traits)
        for ep in plan.episodes[1:]:
            mv_x, scaled = prepared(synthesize_ecg(rng, plan.traits, ep, geo))
            feats.append(ecg_features(scaled))
            mv.append(ecg_mv_features(mv_x))
            lat.append([ep.heart_size_z, ep.congestion_z, ep.fluid_z])
            m = ep.margins
            obs.append([chexpert_value(rng, ep.labels[p], m[p]) == "1.0" for p in PATHOLOGIES])
            subj.append(k)
    return {"ecg": _fill_nan(np.array(feats)), "mv": _fill_nan(np.array(mv)), "latent": np.array(lat),
            "label": np.array(obs, dtype=np.int64), "subject": np.array(subj)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python3 -m training.phantom.difficulty", description=__doc__.splitlines()[0])
    p.add_argument("--subjects", type=int, default=4000)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--split-seed", type=int, default=0)
    args = p.parse_args(list(sys.argv[1:] if argv is None else argv))
    t0 = time.perf_counter()
    d = simulate(args.subjects, args.seed)
    u = np.random.default_rng(args.split_seed).random(args.subjects)[d["subject"]]
    train, test = u < 0.7, u >= 0.8
    hr = d["ecg"][:, [ECG_FEATURES.index("heart_rate_bpm")]]
    print(f"{len(d['label'])} stays of {args.subjects} subjects (train {train.sum()}, test {test.sum()}), "
          f"{time.perf_counter() - t0:.0f} s")
    print(f"{'':<18}{'prev':>6}{'ECG raw':>9}{'ECG prep':>10}{'HR alone':>10}{'CXR latents':>13}")
    for j, name in enumerate(PATHOLOGIES):
        y = d["label"][:, j]
        print(f"{name:<18}{y.mean():>6.3f}{fit_auroc(np.hstack([d['ecg'], d['mv']]), y, train, test, 0.3):>9.3f}"
              f"{fit_auroc(d['ecg'], y, train, test, 0.3):>10.3f}{fit_auroc(hr, y, train, test, 1.0):>10.3f}"
              f"{fit_auroc(d['latent'], y, train, test, 1.0):>13.3f}")
    print("(observed labels, uncertain/blank = negative; test AUROC of baselines fitted on train)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
