"""Accuracy of `engine.measure` against the cardiologists' annotations of LUDB
records 1-20, with neurokit2's lead-II delineation as the peer.

Reference global values per record: LUDB annotates each lead separately
(`wfdb.rdann(rec, "i" ... "v6")`: `(` onset, `p`/`N`/`t` peak, `)` offset).
Beats are the QRS annotations of all leads grouped by peak time (within
150 ms); per beat, QRS onset = earliest onset and QRS offset = latest offset
over the leads annotating it, P onset = earliest P onset between the previous
beat's QRS offset and this QRS onset, T offset = latest T offset between this
QRS offset and the next beat's QRS onset. Record value: median over beats of
PR (QRS on - P on), QRS, QT (T off - QRS on); HR = 60000 / mean RR of the beats.

Second table: ours against the device's own measurements on the sample files
that carry them (tests/data/formats/*: GE MUSE, Philips, HL7 aECG XML; the
Mortara DICOM), QTc against our Bazett QTc (what carts report).

Usage: python3 bench/measure_accuracy.py [--data DIR] [--no-peer]
(the peer needs `pip install neurokit2`; the bench installs it when missing).
Parameters of engine.measure were chosen looking at records 1-10 only; 11-20
are reported separately as held out.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.io import read_ecg  # noqa: E402
from engine.measure import measure_ecg  # noqa: E402
from engine.measure.device import comparable_value, device_values, differences  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DEVICE_FILES = sorted((REPO / "tests" / "data" / "formats").glob("*/*.xml")) + [
    REPO / "tests" / "data" / "ecg" / "dicom" / "pydicom_waveform_ecg.dcm"]
DEVICE_KEYS = ("hr_bpm", "pr_ms", "p_ms", "qrs_ms", "qt_ms", "qtc_ms", "p_axis_deg", "qrs_axis_deg", "t_axis_deg")

DATA = Path("/work/shared/data/ecg/wfdb/ludb")
LEXT = ("i", "ii", "iii", "avr", "avl", "avf", "v1", "v2", "v3", "v4", "v5", "v6")
KEYS = ("hr_bpm", "pr_ms", "qrs_ms", "qt_ms")
TARGETS = {"pr_ms": (10, 10), "qrs_ms": (10, 10), "qt_ms": (25, 30), "hr_bpm": (1, None)}


def reference(rec: Path) -> dict[str, float]:
    """Reference global values of LUDB record `rec` (path without extension)."""
    import wfdb

    per = []
    fs = float(wfdb.rdheader(str(rec)).fs)
    for e in LEXT:
        a = wfdb.rdann(str(rec), e)
        s, sy = a.sample, a.symbol
        per.append([(c, s[i - 1], s[i], s[i + 1]) for i, c in enumerate(sy)
                    if c in "pNt" and 0 < i < len(sy) - 1 and sy[i - 1] == "(" and sy[i + 1] == ")"])
    qrs = sorted((w for lead in per for w in lead if w[0] == "N"), key=lambda w: w[2])
    groups: list[list] = []
    for w in qrs:
        if groups and w[2] - groups[-1][-1][2] < 0.15 * fs:
            groups[-1].append(w)
        else:
            groups.append([w])
    ons = [min(w[1] for w in g) for g in groups]
    offs = [max(w[3] for w in g) for g in groups]
    peaks = [float(np.median([w[2] for w in g])) for g in groups]
    rows = []
    for k in range(len(groups)):
        lo = offs[k - 1] if k else -1
        hi = ons[k + 1] if k + 1 < len(groups) else 10 ** 9
        ps = [w for lead in per for w in lead if w[0] == "p" and lo < w[2] < ons[k]]
        ts = [w for lead in per for w in lead if w[0] == "t" and offs[k] < w[2] < hi]
        p_on = min(w[1] for w in ps) if ps else np.nan
        t_off = max(w[3] for w in ts) if ts else np.nan
        rows.append((ons[k] - p_on, offs[k] - ons[k], t_off - ons[k]))
    r = np.asarray(rows, dtype=float) * 1000.0 / fs
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        med = np.nanmedian(r, axis=0)
    return {"hr_bpm": 60000.0 / (np.mean(np.diff(peaks)) * 1000.0 / fs),
            "pr_ms": med[0], "qrs_ms": med[1], "qt_ms": med[2]}


def peer(rec: Path) -> dict[str, float]:
    """neurokit2 (dwt delineation) of lead II: median over beats."""
    import neurokit2 as nk

    record = read_ecg(str(rec) + ".hea")
    fs = record.fs
    x = record.lead("II").astype(np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clean = nk.ecg_clean(x, sampling_rate=fs)
        _, info = nk.ecg_peaks(clean, sampling_rate=fs)
        rp = np.asarray(info["ECG_R_Peaks"])
        _, w = nk.ecg_delineate(clean, rp, sampling_rate=fs, method="dwt")
    g = {k: np.asarray(v, dtype=float) for k, v in w.items()}
    qon, qoff = g["ECG_R_Onsets"], g["ECG_R_Offsets"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return {"hr_bpm": 60000.0 / (np.mean(np.diff(rp)) * 1000.0 / fs),
                "pr_ms": np.nanmedian(qon - g["ECG_P_Onsets"]) * 1000 / fs,
                "qrs_ms": np.nanmedian(qoff - qon) * 1000 / fs,
                "qt_ms": np.nanmedian(g["ECG_T_Offsets"] - qon) * 1000 / fs}


def summary(diffs: dict[str, list[float]]) -> dict[str, str]:
    out = {}
    for k in KEYS:
        v = np.asarray(diffs[k], dtype=float)
        out[k] = "-" if v.size < 2 else f"{v.mean():+.1f} ± {v.std(ddof=1):.1f} (n={v.size})"
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--no-peer", action="store_true")
    args = ap.parse_args()
    use_peer = not args.no_peer
    if use_peer:
        try:
            import neurokit2  # noqa: F401
        except ImportError:
            subprocess.run([sys.executable, "-m", "pip", "install", "-q", "neurokit2"], check=True)
    sets = {"1-10 (design)": range(1, 11), "11-20 (held out)": range(11, 21), "1-20": range(1, 21)}
    per_rec = {}
    print("| rec | ref HR/PR/QRS/QT | ours HR/PR/QRS/QT | neurokit2 HR/PR/QRS/QT | ours: missing (why) |")
    print("| --- | --- | --- | --- | --- |")
    for i in range(1, 21):
        rec = args.data / str(i)
        ref = reference(rec)
        m = measure_ecg(read_ecg(str(rec) + ".hea"))
        ours = {k: (np.nan if m.values[k] is None else float(m.values[k])) for k in KEYS}
        nk = peer(rec) if use_peer else {k: np.nan for k in KEYS}
        per_rec[i] = (ref, ours, nk)
        why = "; ".join(f"{k}: {m.reasons[k]}" for k in KEYS if k in m.reasons)
        fmt = lambda d: "/".join("-" if np.isnan(d[k]) else f"{d[k]:.0f}" for k in KEYS)  # noqa: E731
        print(f"| {i} | {fmt(ref)} | {fmt(ours)} | {fmt(nk)} | {why or ''} |")
    print()
    print("| records | method | HR (bpm) | PR (ms) | QRS (ms) | QT (ms) |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name, recs in sets.items():
        for j, label in ((1, "ours"), (2, "neurokit2 lead II")):
            if j == 2 and not use_peer:
                continue
            diffs = {k: [] for k in KEYS}
            for i in recs:
                ref, val = per_rec[i][0], per_rec[i][j]
                for k in KEYS:
                    if not (np.isnan(ref[k]) or np.isnan(val[k])):
                        diffs[k].append(val[k] - ref[k])
            s = summary(diffs)
            print(f"| {name} | {label} | " + " | ".join(s[k] for k in KEYS) + " |")
    print()
    device_table()
    print()
    print("Targets (IEC 60601-2-25, biological ECGs): mean difference within ±10 ms (PR, QRS), "
          "±25 ms (QT), s.d. ≤ 10 ms (PR, QRS), ≤ 30 ms (QT); HR within 1 bpm.")


def device_table() -> None:
    """Ours vs the device's measurements on DEVICE_FILES (ours / device per cell)."""
    print("| file | " + " | ".join(DEVICE_KEYS) + " |")
    print("| --- |" + " --- |" * len(DEVICE_KEYS))
    diffs: dict[str, list[float]] = {k: [] for k in DEVICE_KEYS}
    for f in DEVICE_FILES:
        rec = read_ecg(f)
        dev = device_values(rec.meta)
        m = measure_ecg(rec)
        for k, d in differences(m, dev).items():
            if k in diffs:
                diffs[k].append(d)
        cells = []
        for k in DEVICE_KEYS:
            v = comparable_value(m, k)
            ours = "-" if v is None else f"{v:.0f}"
            cells.append(f"{ours} / {dev[k]:.0f}" if k in dev else ours + " / -")
        print(f"| {f.name} | " + " | ".join(cells) + " |")
    print("| ours - device, mean ± s.d. | " + " | ".join(
        "-" if len(diffs[k]) < 2 else f"{np.mean(diffs[k]):+.1f} ± {np.std(diffs[k], ddof=1):.1f} (n={len(diffs[k])})"
        for k in DEVICE_KEYS) + " |")


if __name__ == "__main__":
    main()
