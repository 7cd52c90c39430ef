"""`cromotex-train phantom-report COHORT`: how hard is this cohort?

Fits simple baselines on the train split and scores them on the test split:
logistic regression on handcrafted features of the *preprocessed* ECG (what the
model sees: 100 Hz, per-lead [-1, 1]), on the same features plus millivolt-only
ones (`ECG_MV_FEATURES`) of the *raw* source ECG (read again from the MIMIC
folder, see `training.phantom.raw_ecg`; skipped with a note when it is gone),
on CXR pixel statistics, on the heart rate alone (one feature of the preprocessed
ECG), and -- for a phantom, whose `phantom_truth.csv` sits beside the MIMIC-IV-ECG
folder -- on the X-ray's continuous latents (heart size, congestion, fluid of the
pair's ED stay: what a perfect CXR reader could use, so an upper bound for the
teacher). Prints per-label AUROCs and prevalences per split; writes report.json, a
contact sheet of CXRs per class and a 12-lead plot of ECGs per class.

Difficulty targets of the phantom (issue 18, the paper's range): ECG-only baselines
AUROC ~0.72-0.80, CXR teacher ~0.86-0.95.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import numpy as np
from scipy.signal import find_peaks

from engine.constants import ECG_FS_HZ, LEADS, PATHOLOGIES, PATHOLOGY_NAMES
from engine.errors import CromotexError
from training.data import SPLITS, Cohort, load_cohort
from training.jsonio import write_json
from training.phantom.raw_ecg import RAW_RULE, read_raw_ecgs

ECG_FEATURES: tuple[str, ...] = (
    "heart_rate_bpm", "rr_cv", "rr_rmssd_rel", "qrs_width_ms", "n_beats", "hf_noise",
    *(f"qrs_t_log_ratio_{n}" for n in LEADS), *(f"qrs_polarity_{n}" for n in LEADS),
    *(f"t_polarity_{n}" for n in LEADS), "qrs_alternans", "limb_chest_noise_log_ratio")
#: The scale-free features added for phantom v2 (T polarity per lead, alternans, limb/chest noise).
_V2_START = 6 + 2 * len(LEADS)
#: Features that exist only while the signal is in millivolts (all in mV).
ECG_MV_FEATURES: tuple[str, ...] = (
    *(f"qrs_p2p_mv_{n}" for n in LEADS), "sokolow_lyon_mv", "cornell_mv",
    "limb_qrs_p2p_mean_mv", "chest_qrs_p2p_mean_mv", "rms_mv", "limb_chest_p2p_log_ratio")
_CXR_BLOCK = 14  # 224 / 14 = 16 x 16 block means


def ecg_features(x: np.ndarray, fs: float = ECG_FS_HZ,
                 qrs: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """Handcrafted features of one preprocessed ECG.

    Args:
        x: float32 `[12, T]`, leads in `LEADS` order, baseline removed, each lead
            min-max scaled to [-1, 1] (the output of `engine.preprocess.preprocess_ecg`).
        fs: sampling rate in Hz.
        qrs: `qrs_peaks(x, fs)` when the caller already has it (detected here otherwise).

    Returns:
        float64 `[len(ECG_FEATURES)]`: heart rate (bpm) and RR irregularity from QRS
        detection on the polarity-free slope envelope of all leads (sum of |dx/dt|,
        50 ms smoothing), QRS width proxy (ms above half the envelope peak), beat
        count, high-frequency noise relative to QRS slope, per lead the log ratio
        of QRS to T amplitude and the QRS polarity ((max + min) / (max - min) around R);
        then (phantom v2 signs, all scale-free so they survive the per-lead scaling)
        per lead the T polarity (mean level 120-400 ms after R over the QRS
        peak-to-peak: strain / discordant T < 0, flat T ~ 0), the QRS alternans
        (|mean size of even beats - odd beats| / mean size, 0 without alternans) and
        the log ratio of the limb leads' to the chest leads' noise floor relative to
        their QRS slope (low limb voltage -> higher).
    """
    x = np.asarray(x, dtype=np.float64)
    n_leads, n = x.shape
    peaks, env = qrs_peaks(x, fs) if qrs is None else qrs
    feats = np.full(len(ECG_FEATURES), np.nan)
    if len(peaks) >= 2:
        rr = np.diff(peaks) / fs
        feats[0] = 60.0 / np.median(rr)
        feats[1] = rr.std() / rr.mean()
        feats[2] = np.sqrt(np.mean(np.diff(rr) ** 2)) / rr.mean() if len(rr) > 1 else 0.0
    widths = []
    for p in peaks:
        half = env[p] / 2
        lo = p
        while lo > 0 and env[lo - 1] > half:
            lo -= 1
        hi = p
        while hi < n - 2 and env[hi + 1] > half:
            hi += 1
        widths.append((hi - lo + 1) * 1000.0 / fs)
    feats[3] = np.median(widths) if widths else np.nan
    feats[4] = len(peaks)
    second = np.abs(np.diff(x, 2, axis=1)).mean()
    feats[5] = second / (np.abs(np.diff(x, axis=1)).max(axis=1).mean() + 1e-9)
    q = int(0.06 * fs)
    t0, t1 = int(0.12 * fs), int(0.40 * fs)
    inner = [p for p in peaks if p - q >= 0 and p + t1 < n]
    if inner:
        qrs = np.stack([x[:, p - q:p + q + 1] for p in inner])  # [beats, 12, 2q+1]
        tw = np.stack([x[:, p + t0:p + t1] for p in inner])
        base = np.median(x, axis=1)[None, :, None]
        qrs_amp = np.abs(qrs - base).max(axis=2)
        t_amp = np.abs(tw - base).max(axis=2)
        feats[6:6 + n_leads] = np.median(np.log((qrs_amp + 1e-3) / (t_amp + 1e-3)), axis=0)
        hi_, lo_ = (qrs - base).max(axis=2), (qrs - base).min(axis=2)
        feats[6 + n_leads:6 + 2 * n_leads] = np.median((hi_ + lo_) / (hi_ - lo_ + 1e-6), axis=0)
        # T polarity: mean level of the T window relative to the QRS peak-to-peak (lead-local)
        p2p = hi_ - lo_ + 1e-6
        feats[_V2_START:_V2_START + n_leads] = np.median((tw - base).mean(axis=2) / p2p, axis=0)
        if len(inner) >= 4:  # beat-to-beat alternation of the QRS size
            size = p2p.mean(axis=1)
            feats[_V2_START + n_leads] = abs(size[0::2].mean() - size[1::2].mean()) / size.mean()
        # noise relative to QRS slope, limb leads vs chest leads (low limb voltage -> worse SNR)
        d1 = np.abs(np.diff(x, axis=1)).max(axis=1) + 1e-9
        d2 = np.abs(np.diff(x, 2, axis=1))
        quiet = np.median(d2, axis=1) / d1   # median second difference ~ noise floor
        feats[_V2_START + n_leads + 1] = np.log(quiet[:6].mean() + 1e-9) - np.log(quiet[6:].mean() + 1e-9)
    return feats


def qrs_peaks(x: np.ndarray, fs: float = ECG_FS_HZ) -> tuple[np.ndarray, np.ndarray]:
    """QRS detection on float64 `[12, T]` (any units): returns (int peak sample
    indices, float64 `[T-1]` slope envelope = sum over leads of |dx/dt|, 50 ms mean)."""
    env = np.convolve(np.abs(np.diff(x, axis=1)).sum(0), np.ones(5) / 5, mode="same")
    top = np.percentile(env, 99)
    peaks, _ = find_peaks(env, distance=max(1, int(0.25 * fs)), height=0.35 * top)
    return peaks, env


def ecg_mv_features(x: np.ndarray, fs: float = ECG_FS_HZ, peaks: np.ndarray | None = None) -> np.ndarray:
    """Millivolt-only features of one raw ECG (`ECG_MV_FEATURES`).

    Args:
        x: float `[12, T]` in mV, `LEADS` order, baseline removed, NOT scaled
            (`training.phantom.raw_ecg.raw_window`).
        fs: sampling rate in Hz.
        peaks: int QRS sample indices, `qrs_peaks(x, fs)[0]`, when the caller already
            has them (detected here otherwise).

    Returns:
        float64 `[len(ECG_MV_FEATURES)]`, all mV: per lead the median over beats of
        the QRS peak-to-peak amplitude (max - min within +-60 ms of each detected
        QRS); Sokolow-Lyon S(V1) + max(R(V5), R(V6)); Cornell R(aVL) + S(V3) (R, S:
        median height above / depth below the lead's median level); the mean QRS
        peak-to-peak of the six limb and of the six chest leads; RMS of the whole
        signal; log(limb mean / chest mean QRS peak-to-peak). NaN (except RMS) where
        fewer than one complete beat is found.
    """
    x = np.asarray(x, dtype=np.float64)
    n = x.shape[1]
    feats = np.full(len(ECG_MV_FEATURES), np.nan)
    feats[len(LEADS) + 4] = np.sqrt(np.mean(x ** 2))
    if peaks is None:
        peaks, _ = qrs_peaks(x, fs)
    q = int(0.06 * fs)
    inner = [p for p in peaks if p - q >= 0 and p + q < n]
    if not inner:
        return feats
    qrs = np.stack([x[:, p - q:p + q + 1] for p in inner])  # [beats, 12, 2q+1]
    base = np.median(x, axis=1)[None, :, None]
    r = np.median((qrs - base).max(axis=2), axis=0)   # [12]
    s = np.median(-(qrs - base).min(axis=2), axis=0)  # [12]
    p2p = np.median(np.ptp(qrs, axis=2), axis=0)      # [12]
    li = {name: i for i, name in enumerate(LEADS)}
    feats[:len(LEADS)] = p2p
    feats[len(LEADS)] = s[li["V1"]] + max(r[li["V5"]], r[li["V6"]])
    feats[len(LEADS) + 1] = r[li["aVL"]] + s[li["V3"]]
    feats[len(LEADS) + 2] = p2p[:6].mean()
    feats[len(LEADS) + 3] = p2p[6:].mean()
    feats[len(LEADS) + 5] = np.log(p2p[:6].mean() + 1e-6) - np.log(p2p[6:].mean() + 1e-6)
    return feats


def raw_ecg_features(x: np.ndarray, fs: float = ECG_FS_HZ) -> np.ndarray:
    """float64 `[len(ECG_FEATURES) + len(ECG_MV_FEATURES)]`: `ecg_features` then
    `ecg_mv_features` of one raw mV ECG `[12, T]`, sharing one QRS detection."""
    x = np.asarray(x, dtype=np.float64)
    qrs = qrs_peaks(x, fs)
    return np.concatenate([ecg_features(x, fs, qrs=qrs), ecg_mv_features(x, fs, peaks=qrs[0])])


def raw_ecg_feature_matrix(raw: np.ndarray) -> np.ndarray:
    """float64 `[N, len(ECG_FEATURES) + len(ECG_MV_FEATURES)]`: `raw_ecg_features` of
    raw mV ECGs `[N, 12, 1000]` (NaN -> column median)."""
    f = np.stack([raw_ecg_features(r) for r in raw]) \
        if len(raw) else np.zeros((0, len(ECG_FEATURES) + len(ECG_MV_FEATURES)))
    return _fill_nan(f)


def ecg_feature_matrix(ecg: np.ndarray) -> np.ndarray:
    """float64 `[N, F]` features of float32 ECGs `[N, 12, 1000]` (NaN -> column median)."""
    f = np.stack([ecg_features(np.asarray(row)) for row in ecg]) if len(ecg) else \
        np.zeros((0, len(ECG_FEATURES)))
    return _fill_nan(f)


def _fill_nan(f: np.ndarray) -> np.ndarray:
    """NaN entries of float64 `[N, F]` replaced by their column median (0 if all NaN)."""
    med = np.nanmedian(f, axis=0) if len(f) else np.zeros(f.shape[1])
    med = np.where(np.isnan(med), 0.0, med)
    return np.where(np.isnan(f), med, f)


def cxr_feature_matrix(cxr: np.ndarray, chunk: int = 256) -> np.ndarray:
    """float64 `[N, 16*16 + 2]` CXR features: 14x14-pixel block means of the
    int16 `[N, 1, 224, 224]` images (scaled to [-1, 1]), plus global mean and s.d."""
    out = []
    for s in range(0, len(cxr), chunk):
        x = np.asarray(cxr[s:s + chunk], dtype=np.float32)[:, 0] / 1024.0
        b = x.reshape(len(x), 224 // _CXR_BLOCK, _CXR_BLOCK, 224 // _CXR_BLOCK, _CXR_BLOCK)
        blocks = b.mean(axis=(2, 4)).reshape(len(x), -1)
        out.append(np.concatenate([blocks, x.mean(axis=(1, 2))[:, None],
                                   x.std(axis=(1, 2))[:, None]], axis=1))
    return np.concatenate(out).astype(np.float64) if out else np.zeros((0, 258))


def fit_auroc(features: np.ndarray, y: np.ndarray, train: np.ndarray, test: np.ndarray,
              c: float) -> float:
    """Standardise + L2 logistic regression (strength `c`) fitted on `train`
    rows, AUROC on `test` rows; NaN when either side has a single class."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if len(set(y[train])) < 2 or len(set(y[test])) < 2:
        return float("nan")
    model = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=2000))
    model.fit(features[train], y[train])
    return float(roc_auc_score(y[test], model.predict_proba(features[test])[:, 1]))


def _examples(cohort: Cohort, name: str, positive: bool, k: int) -> np.ndarray:
    idx = np.flatnonzero(cohort.labels[name] == int(positive))
    return idx[np.linspace(0, len(idx) - 1, min(k, len(idx))).astype(int)] if len(idx) else idx


def plot_contact_sheet(cohort: Cohort, path: Path, per_row: int = 6) -> None:
    """PNG: for each pathology a row of positive and a row of negative CXRs."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [(n, pos) for n in PATHOLOGIES for pos in (True, False)]
    fig, axes = plt.subplots(len(rows), per_row, figsize=(1.6 * per_row, 1.75 * len(rows)))
    for r, (name, pos) in enumerate(rows):
        idx = _examples(cohort, name, pos, per_row)
        for c in range(per_row):
            ax = axes[r, c]
            ax.axis("off")
            if c < len(idx):
                ax.imshow(cohort.cxr[idx[c], 0], cmap="gray", vmin=-1024, vmax=1024)
                ax.set_title(f"#{idx[c]} {cohort.pairs[idx[c]]['view_position']}", fontsize=6)
        axes[r, 0].text(-0.1, 0.5, f"{PATHOLOGY_NAMES[name]}\n{'positive' if pos else 'negative'}",
                        transform=axes[r, 0].transAxes, ha="right", va="center", fontsize=7)
    fig.suptitle("CXRs per class (preprocessed, 224 x 224)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_ecgs(cohort: Cohort, name: str, path: Path) -> None:
    """PNG: 12-lead plots (preprocessed, 100 Hz) of one negative and one positive
    ECG for pathology `name`, with the detected heart rate and QRS width."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(13, 8), sharey=True)
    t = np.arange(cohort.ecg.shape[2]) / ECG_FS_HZ
    for ax, pos in zip(axes, (False, True)):
        idx = _examples(cohort, name, pos, 1)
        ax.set_title(f"{PATHOLOGY_NAMES[name]} {'positive' if pos else 'negative'}", fontsize=10)
        ax.set_yticks([-2.2 * k for k in range(len(LEADS))], LEADS)
        ax.set_xlabel("s")
        if not len(idx):
            continue
        x = np.asarray(cohort.ecg[idx[0]])
        for k in range(len(LEADS)):
            ax.plot(t, x[k] - 2.2 * k, lw=0.6, color="k")
        f = ecg_features(x)
        ax.set_title(f"{ax.get_title()} (pair {idx[0]}): HR {f[0]:.0f}/min, "
                     f"QRS~{f[3]:.0f} ms, RR CV {f[1]:.2f}", fontsize=9)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _raw_baseline(cohort: Cohort, ecg_root: Path | None) -> tuple[np.ndarray | None,
                                                                    np.ndarray, dict]:
    """Raw-ECG features of the pairs whose source was read: (float64 `[N, F]` or
    None when unavailable, bool `[N]` read mask, JSON-ready description)."""
    raw = read_raw_ecgs(cohort, ecg_root)
    info: dict = {"ecg_root": str(raw.root) if raw.root else None, "rule": RAW_RULE,
                  "read": int(raw.ok.sum()), "failed": raw.n_failed,
                  "failed_examples": raw.failed, "unavailable": raw.unavailable}
    if raw.unavailable is not None:
        return None, raw.ok, info
    feats = np.zeros((len(cohort), len(ECG_FEATURES) + len(ECG_MV_FEATURES)))
    feats[raw.ok] = raw_ecg_feature_matrix(raw.signal[raw.ok])
    mv = feats[raw.ok][:, len(ECG_FEATURES):]
    info["mv_feature_medians"] = {
        f: float(np.median(mv[:, i])) for i, f in enumerate(ECG_MV_FEATURES)}
    return feats, raw.ok, info


#: Columns of phantom_truth.csv the X-ray shows (continuous latents of the stay).
CXR_LATENTS: tuple[str, ...] = ("heart_size_z", "congestion_z", "fluid_z")


def latent_matrix(cohort: Cohort, ecg_root: Path | None = None) -> tuple[np.ndarray | None, str]:
    """float64 `[N, 3]` X-ray latents (`CXR_LATENTS`) of each pair's ED stay, read from
    `phantom_truth.csv` in the parent of the MIMIC-IV-ECG folder; (None, reason) when
    the cohort is not a phantom or a pair's stay is not in the table."""
    from training.phantom.raw_ecg import resolve_ecg_root

    root, why = resolve_ecg_root(cohort, ecg_root)
    if root is None:
        return None, why or "no source folder"
    truth = root.parent / "phantom_truth.csv"
    if not truth.is_file():
        return None, f"{truth} not found (not a phantom cohort)"
    with truth.open(newline="") as fh:
        by_stay = {r["stay_id"]: [float(r[c]) for c in CXR_LATENTS]
                   for r in csv.DictReader(fh) if r["stay_id"]}
    rows = []
    for pair in cohort.pairs:
        got = by_stay.get(str(pair.get("stay_id", "")))
        if got is None:
            return None, f"stay {pair.get('stay_id')!r} of a pair is not in {truth}"
        rows.append(got)
    return np.asarray(rows, dtype=np.float64), str(truth)


def report(cohort: Cohort, out: Path, ecg_root: Path | None = None) -> dict:
    """Fit the baselines, write report.json and the PNGs into `out`; returns the report.

    `ecg_root` overrides the source ECG folder recorded in cohort.json (raw baseline).
    report.json "auroc" has "ecg" (preprocessed), "ecg_raw" and "ecg_raw_mv_only" (NaN
    when the source is unavailable, see "raw_ecg"["unavailable"]) and "cxr", each
    pathology -> AUROC.
    """
    out.mkdir(parents=True, exist_ok=True)
    train, test = cohort.mask("train"), cohort.mask("test")
    ef = ecg_feature_matrix(cohort.ecg)
    cf = cxr_feature_matrix(cohort.cxr)
    rf, read, raw_info = _raw_baseline(cohort, ecg_root)
    lat, lat_source = latent_matrix(cohort, ecg_root)
    result: dict = {
        "cohort": str(cohort.path),
        "pairs": {s: int(cohort.mask(s).sum()) for s in SPLITS},
        "prevalence": {s: cohort.prevalence(s) for s in SPLITS},
        "auroc": {"ecg": {}, "ecg_raw": {}, "ecg_raw_mv_only": {}, "heart_rate": {}, "cxr": {},
                  "cxr_latents": {}},
        "baselines": {"ecg": f"logistic regression (C=0.3) on {len(ECG_FEATURES)} features of "
                             "the preprocessed ECG: " + ", ".join(ECG_FEATURES[:6])
                             + ", per-lead QRS/T log ratio and QRS polarity",
                      "ecg_raw": f"logistic regression (C=0.3) on the same {len(ECG_FEATURES)} "
                                 f"features plus {len(ECG_MV_FEATURES)} mV-only ones ("
                                 + ", ".join(ECG_MV_FEATURES[len(LEADS):])
                                 + ", per-lead QRS peak-to-peak) of the raw ECG: " + RAW_RULE
                                 + "; pairs whose source could not be read are left out",
                      "ecg_raw_mv_only": "the same on the mV-only features alone",
                      "heart_rate": "logistic regression on the heart rate alone (preprocessed ECG)",
                      "cxr": "logistic regression (C=0.01) on 16x16 block means + mean, s.d.",
                      "cxr_latents": "logistic regression (C=1) on the stay's " + ", ".join(CXR_LATENTS)
                                     + " (phantom_truth.csv): what the X-ray shows, read perfectly"},
        "ecg_feature_means": {},
        "raw_ecg": raw_info,
        "cxr_latents_source": lat_source,
        "ecg_features": list(ECG_FEATURES),
    }
    for name in PATHOLOGIES:
        y = cohort.labels[name]
        result["auroc"]["ecg"][name] = fit_auroc(ef, y, train, test, c=0.3)
        result["auroc"]["ecg_raw"][name] = float("nan") if rf is None else \
            fit_auroc(rf, y, train & read, test & read, c=0.3)
        result["auroc"]["ecg_raw_mv_only"][name] = float("nan") if rf is None else \
            fit_auroc(rf[:, len(ECG_FEATURES):], y, train & read, test & read, c=0.3)
        result["auroc"]["cxr"][name] = fit_auroc(cf, y, train, test, c=0.01)
        result["auroc"]["heart_rate"][name] = fit_auroc(ef[:, :1], y, train, test, c=1.0)
        result["auroc"]["cxr_latents"][name] = float("nan") if lat is None else \
            fit_auroc(lat, y, train, test, c=1.0)
        result["ecg_feature_means"][name] = {
            cls: {f: float(ef[y == v, i].mean()) if (y == v).any() else float("nan")
                  for i, f in enumerate(ECG_FEATURES[:4])}
            for cls, v in (("positive", 1), ("negative", 0))}
    plot_contact_sheet(cohort, out / "cxr_contact_sheet.png")
    for name in PATHOLOGIES:
        plot_ecgs(cohort, name, out / f"ecg_{name}.png")
    result["files"] = ["report.json", "cxr_contact_sheet.png",
                       *(f"ecg_{n}.png" for n in PATHOLOGIES)]
    write_json(out / "report.json", result, nan="literal", trailing_newline=False)
    return result


def format_report(result: dict) -> str:
    """The report as a small text table."""
    au = result["auroc"]
    nan = {n: float("nan") for n in PATHOLOGIES}
    hr, lat = au.get("heart_rate", nan), au.get("cxr_latents", nan)
    lines = [f"{'':<18}" + "".join(f"{s:>8}" for s in SPLITS)
             + "   AUROC ECG raw (mV only)   AUROC ECG prep   HR alone   AUROC CXR   CXR latents"]
    for name in PATHOLOGIES:
        prev = "".join(f"{result['prevalence'][s][name]:>8.3f}" for s in SPLITS)
        lines.append(f"{name:<18}{prev}   {au['ecg_raw'][name]:>15.3f}"
                     f" ({au['ecg_raw_mv_only'][name]:.3f})"
                     f"   {au['ecg'][name]:>14.3f}   {hr[name]:>8.3f}   {au['cxr'][name]:>9.3f}"
                     f"   {lat[name]:>11.3f}")
    lines.append(f"{'pairs':<18}" + "".join(f"{result['pairs'][s]:>8}" for s in SPLITS))
    lines.append("(prevalence per split; AUROCs of baselines fitted on train, scored on test; "
                 "targets: ECG ~0.72-0.80, teacher ~0.86-0.95)")
    if "cxr_latents_source" in result and not np.isfinite(list(lat.values())).all():
        lines.append(f"CXR latents: skipped ({result['cxr_latents_source']})")
    raw = result.get("raw_ecg", {})
    if raw.get("unavailable"):
        lines.append(f"ECG raw: skipped ({raw['unavailable']})")
    else:
        lines.append(f"ECG raw: {raw.get('read')} source records read from {raw.get('ecg_root')}"
                     f" ({raw.get('failed')} unreadable, left out); 100 Hz, mV, not scaled")
        med = raw.get("mv_feature_medians", {})
        if med:
            lines.append("  medians: " + ", ".join(
                f"{k} {med[k]:.2f}" for k in ("qrs_p2p_mv_II", "sokolow_lyon_mv", "cornell_mv",
                                              "rms_mv") if k in med) + " mV")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="cromotex-train phantom-report",
                                description="Baseline AUROCs, prevalences, a CXR contact sheet "
                                            "and 12-lead ECG plots of a COHORT.")
    p.add_argument("cohort", type=Path, help="COHORT directory (cromotex-train cohort)")
    p.add_argument("--out", type=Path, help="output folder (default COHORT/report)")
    p.add_argument("--ecg-root", type=Path,
                   help="MIMIC-IV-ECG folder for the raw-ECG baseline (default: inputs.ecg_root "
                        "of cohort.json); without it the raw baseline is skipped")
    args = p.parse_args(list(sys.argv[1:] if argv is None else argv))
    try:
        cohort = load_cohort(args.cohort)
    except CromotexError as exc:
        print(f"cromotex-train phantom-report: {exc}", file=sys.stderr)
        return 2
    out = args.out or args.cohort / "report"
    result = report(cohort, out, args.ecg_root)
    print(format_report(result))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
