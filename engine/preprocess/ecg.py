"""ECG preprocessing: any `EcgRecord` -> model-ready `EcgInput` (paper §4.1).

Steps, in this order (one function shared by training and inference):

1. NaN / ±inf samples -> 0; select the 12 standard leads **by name**.
   Missing limb leads are derived from I and II (Einthoven / Goldberger:
   III = II - I, aVR = -(I + II)/2, aVL = I - II/2, aVF = II - I/2); if I or II
   is itself missing but III is present it is derived first (I = II - III,
   II = I + III). Without two of I, II, III -> `LeadError`.
   A missing chest lead (V1-V6) is filled with zeros, i.e. it becomes a flat
   lead (all 0 after scaling), and is listed in `report["leads_missing"]`;
   a record with no chest lead at all -> `LeadError`.
2. Resample to ECG_FS_HZ (100 Hz) with a polyphase filter
   (`filters.resample`, rational factor up/down from `fractions.Fraction`).
3. Cut 10 s windows (ECG_SECONDS). **Rule:**
   - a record of at least 10 s gives W = floor(seconds / 10) non-overlapping
     windows starting at 0, 10, 20 ... s; a trailing part shorter than 10 s is
     dropped (reported as `dropped_seconds`). Inference averages the windows.
     Only the first MAX_RECORD_SECONDS (300 s) of a longer record are used.
   - a record shorter than 10 s (but at least MIN_RECORD_SECONDS) gives one
     window: the available samples are baseline-corrected on their own, then
     padded at the end with 0 mV (the isoelectric line, i.e. what a flat,
     baseline-corrected ECG looks like) to 10 s, and the padded window is
     min-max scaled as a whole (`padded_seconds` > 0). Edge replication or
     repetition of the record was rejected: both invent cardiac activity.
4. Per window and lead: baseline = median filter of 0.2 s (21 samples at
   100 Hz) applied to the signal, then median filter of 0.6 s (61 samples)
   applied to that output; subtract it. Edges repeat the first / last sample.
5. Min-max scale each lead of each window to exactly [-1, 1] (a flat lead is 0).
6. Output float32 `[W, 12, 1000]` in `engine.constants.LEADS` order.
"""

from __future__ import annotations

import logging
import math

import numpy as np

from engine.constants import (DERIVABLE_LEADS, ECG_BASELINE_MEDIAN_S, ECG_FS_HZ, ECG_SAMPLES,
                              ECG_SCALE, ECG_SECONDS, LEADS)
from engine.errors import LeadError, PreprocessError
from engine.leads import limb_leads_from_i_ii
from engine.preprocess.filters import minmax_scale, remove_baseline, resample, resample_factors
from engine.records import EcgInput, EcgRecord

logger = logging.getLogger(__name__)

#: Records shorter than this (seconds) are refused: fewer than two or three
#: beats padded to 10 s are not a meaningful model input.
MIN_RECORD_SECONDS: float = 2.0

#: Only the first this many seconds of a longer record (a Holter or monitoring
#: export) are used, i.e. at most MAX_RECORD_SECONDS / 10 windows; the rest is
#: reported in `dropped_seconds`. Bounds time and memory for any input.
MAX_RECORD_SECONDS: float = 300.0

#: Chest leads; a record must contain at least one of them.
CHEST_LEADS: tuple[str, ...] = ("V1", "V2", "V3", "V4", "V5", "V6")

#: Human-readable statement of the windowing rule, copied into every report.
WINDOW_RULE: str = (
    f"resampled to {ECG_FS_HZ} Hz; records of >= {ECG_SECONDS} s are cut into "
    f"floor(seconds / {ECG_SECONDS}) non-overlapping {ECG_SECONDS} s windows from 0 s "
    f"(a trailing partial window, and anything after {MAX_RECORD_SECONDS:g} s, is dropped); "
    f"shorter records give one window, "
    f"baseline-corrected then padded at the end with 0 mV (isoelectric) to {ECG_SECONDS} s; "
    f"baseline removal ({ECG_BASELINE_MEDIAN_S[0]} s then {ECG_BASELINE_MEDIAN_S[1]} s median) "
    f"and min-max scaling to [{ECG_SCALE[0]:g}, {ECG_SCALE[1]:g}] per window and lead; "
    f"missing chest leads are zero (flat)"
)

_ROW = {name: i for i, name in enumerate(LEADS)}


def check_record(record: EcgRecord) -> tuple[np.ndarray, float]:
    """Validate shape and sampling rate; return (signal `[n_leads, n]`, fs)."""
    sig = np.asarray(record.signal)
    if sig.ndim != 2 or sig.shape[0] != len(record.leads):
        raise PreprocessError(
            f"ECG signal has shape {sig.shape} but {len(record.leads)} lead names; "
            "the file reader produced an inconsistent record: re-export the ECG from the device.")
    try:
        fs = float(record.fs)
    except (TypeError, ValueError):
        raise PreprocessError(f"ECG sampling rate {record.fs!r} is not a number; "
                              "check the file's header.") from None
    if not math.isfinite(fs) or fs < ECG_FS_HZ / 10:
        raise PreprocessError(f"ECG sampling rate {record.fs!r} Hz is not usable "
                              f"(need a finite rate of at least {ECG_FS_HZ / 10:g} Hz); "
                              "check the file's header.")
    seconds = sig.shape[1] / fs
    if seconds < MIN_RECORD_SECONDS:
        raise PreprocessError(
            f"ECG is {seconds:.2f} s long; at least {MIN_RECORD_SECONDS:g} s are needed "
            f"({ECG_SECONDS} s recommended). Use a complete resting 12-lead recording.")
    return sig, fs


def standard_lead_rows(leads: tuple[str, ...] | list[str]) -> dict[str, int]:
    """Standard lead name -> its row in a record with lead names `leads`: the first row of
    each of the 12 `LEADS` found, in the record's order (repeats and other names ignored)."""
    rows: dict[str, int] = {}
    for i, name in enumerate(leads):
        if name in _ROW and name not in rows:
            rows[name] = i
    return rows


def assemble_leads(record: EcgRecord,
                   n_samples: int | None = None) -> tuple[np.ndarray, dict[str, list[str]]]:
    """The 12 standard leads of `record` in `LEADS` order, derived / zero-filled.

    Only the first `n_samples` samples are used when given.

    Returns:
        (signal float64 `[12, n_samples]` in mV at the record's rate, with NaN
        and ±inf replaced by 0; dict with "leads_found", "leads_derived",
        "leads_missing", each a list of canonical names in `LEADS` order; leads the
        reader derived, `record.meta["derived_leads"]`, count as derived, not found).

    Raises:
        LeadError: fewer than two of I, II, III, or no chest lead.
    """
    sig = np.asarray(record.signal)[:, :n_samples]
    rows = standard_lead_rows(record.leads)
    src, dst = list(rows.values()), [_ROW[name] for name in rows]
    if src == dst == list(range(len(LEADS))):  # the readers' layout: the 12 leads, in order
        out = sig[:len(LEADS)].astype(np.float64)
    else:
        out = np.zeros((len(LEADS), sig.shape[1]), dtype=np.float64)
        out[dst] = sig[src]
    if not np.isfinite(out).all():
        np.nan_to_num(out, copy=False, nan=0.0, posinf=0.0, neginf=0.0)

    have = set(rows)
    derived: list[str] = []
    lead_i, lead_ii, lead_iii = (out[_ROW[n]] for n in ("I", "II", "III"))
    if "I" not in have and {"II", "III"} <= have:
        lead_i[:] = lead_ii - lead_iii
        derived.append("I")
    elif "II" not in have and {"I", "III"} <= have:
        lead_ii[:] = lead_i + lead_iii
        derived.append("II")
    if "I" not in have | set(derived) or "II" not in have | set(derived):
        raise LeadError(
            "The ECG lacks limb leads I and II (found: "
            f"{', '.join(n for n in LEADS if n in have) or 'none'}); they are needed to "
            "build the 12 leads. Export the full 12-lead ECG from the device.")
    to_derive = [name for name in DERIVABLE_LEADS if name not in have]
    if to_derive:
        limb = limb_leads_from_i_ii(lead_i, lead_ii)
        for name in to_derive:
            out[_ROW[name]] = limb[name]
            derived.append(name)

    missing = [n for n in CHEST_LEADS if n not in have]
    if len(missing) == len(CHEST_LEADS):
        raise LeadError(
            "The ECG has no chest leads (V1-V6); the model needs a 12-lead ECG. "
            "Export the full 12-lead ECG from the device.")
    by_reader = set((record.meta or {}).get("derived_leads") or ())  # e.g. MUSE's 8 stored leads
    info = {
        "leads_found": [n for n in LEADS if n in have and n not in by_reader],
        "leads_derived": [n for n in LEADS if n in derived or n in by_reader],
        "leads_missing": missing,
    }
    return out, info


def preprocess_ecg(record: EcgRecord) -> EcgInput:
    """Turn a record into model input, exactly as the paper's §4.1 (see module doc).

    Args:
        record: any `EcgRecord` from `engine.io.read_ecg` (signal in mV, any fs).

    Returns:
        `EcgInput` with `windows` float32 `[W, 12, 1000]` (W >= 1, LEADS order,
        each lead in [-1, 1] with min -1 and max +1, a flat lead all 0) and
        `report` (JSON-ready): original_fs, original_seconds, leads_found,
        leads_derived, leads_missing, padded_seconds, window_starts_s,
        seconds_used, dropped_seconds, resample_up, resample_down, rule.

    Raises:
        LeadError: limb leads I/II cannot be obtained, or no chest lead.
        PreprocessError: inconsistent signal, unusable sampling rate, or a
            record shorter than MIN_RECORD_SECONDS.
    """
    sig, fs = check_record(record)
    n_keep = min(sig.shape[1], int(MAX_RECORD_SECONDS * fs))
    if n_keep < sig.shape[1]:
        logger.info("ECG of %.0f s: only the first %.0f s are used", sig.shape[1] / fs,
                    MAX_RECORD_SECONDS)
    leads, info = assemble_leads(record, n_keep)
    x = resample(leads, fs, ECG_FS_HZ)
    n = x.shape[-1]
    n_leads = len(LEADS)

    if n >= ECG_SAMPLES:
        n_windows = n // ECG_SAMPLES
        used = n_windows * ECG_SAMPLES
        # [12, W*1000] -> [W*12, 1000], window-major.
        rows = x[:, :used].reshape(n_leads, n_windows, ECG_SAMPLES).transpose(1, 0, 2)
        rows = remove_baseline(rows.reshape(n_windows * n_leads, ECG_SAMPLES),
                               ECG_FS_HZ, ECG_BASELINE_MEDIAN_S)
        padded_samples = 0
    else:
        n_windows = 1
        used = n
        rows = np.zeros((n_leads, ECG_SAMPLES), dtype=np.float64)
        rows[:, :n] = remove_baseline(x, ECG_FS_HZ, ECG_BASELINE_MEDIAN_S)
        padded_samples = ECG_SAMPLES - n

    scaled = minmax_scale(rows, *ECG_SCALE)
    windows = scaled.astype(np.float32).reshape(n_windows, n_leads, ECG_SAMPLES)

    up, down = resample_factors(fs, ECG_FS_HZ)
    original_seconds = sig.shape[1] / fs
    report = {
        "original_fs": fs,
        "original_seconds": original_seconds,
        **info,
        "padded_seconds": padded_samples / ECG_FS_HZ,
        "window_starts_s": [float(k * ECG_SECONDS) for k in range(n_windows)],
        "seconds_used": used / ECG_FS_HZ,
        "dropped_seconds": (n - used) / ECG_FS_HZ + (sig.shape[1] - n_keep) / fs,
        "resample_up": up,
        "resample_down": down,
        "rule": WINDOW_RULE,
    }
    if info["leads_derived"] or info["leads_missing"] or padded_samples:
        logger.info("ECG preprocessing: derived %s, missing %s, padded %.2f s",
                    info["leads_derived"], info["leads_missing"], padded_samples / ECG_FS_HZ)
    return EcgInput(windows=windows, report=report)
