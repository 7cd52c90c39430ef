"""The source ECGs of a COHORT, back in millivolts, for the raw-signal baseline.

`pairs.csv` stores each pair's `ecg_file` as the MIMIC-IV-ECG record path without
extension, relative to the ECG root; `cohort.json` records that root under
`inputs.ecg_root` (absolute as written by `cromotex-train cohort`; a relative
one is taken relative to the COHORT folder). The cohort itself keeps only the
preprocessed signal, so reading the source is the only way to see millivolts.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from engine.constants import ECG_BASELINE_MEDIAN_S, ECG_FS_HZ, ECG_SAMPLES, ECG_SECONDS, LEADS
from engine.errors import CromotexError
from engine.io import read_ecg
from engine.preprocess.ecg import check_record, assemble_leads
from engine.preprocess.filters import remove_baseline, resample
from engine.records import EcgRecord
from training.data import Cohort

log = logging.getLogger(__name__)

#: How the raw signal is prepared before its features are measured.
RAW_RULE: str = (f"source record read with engine.io.read_ecg (mV), first {ECG_SECONDS} s, "
                 f"12 leads assembled as in preprocessing, resampled to {ECG_FS_HZ} Hz, baseline "
                 f"removed ({ECG_BASELINE_MEDIAN_S[0]} s then {ECG_BASELINE_MEDIAN_S[1]} s "
                 "median), NOT scaled: values stay in millivolts")


@dataclass
class RawEcgs:
    """Source ECGs of a cohort's pairs.

    Attributes:
        signal: float32 `[N, 12, 1000]`, mV, 100 Hz, baseline removed, `LEADS`
            order; all-zero rows where `ok` is False.
        ok: bool `[N]`: the pair's source ECG was read.
        root: the ECG root the files were looked up under, or None.
        unavailable: why nothing could be read (None when the root exists).
        failed: up to 20 `"file: error"` strings for records that could not be read.
        n_failed: number of pairs whose record could not be read.
    """

    signal: np.ndarray
    ok: np.ndarray
    root: Path | None
    unavailable: str | None = None
    failed: list[str] = field(default_factory=list)
    n_failed: int = 0


def resolve_ecg_root(cohort: Cohort, override: Path | None = None) -> tuple[Path | None, str | None]:
    """The folder `pairs.csv` ecg_file paths are relative to.

    Returns:
        (root, None) when it exists, else (None, reason) saying what was looked
        for and how to point at it (`--ecg-root`).
    """
    if override is not None:
        root = Path(override)
        source = "--ecg-root"
    else:
        given = (cohort.info.get("inputs") or {}).get("ecg_root")
        if not given:
            return None, f"{cohort.path}/cohort.json records no inputs.ecg_root; pass --ecg-root"
        root = Path(given)
        if not root.is_absolute():
            root = cohort.path / root
        source = "cohort.json inputs.ecg_root"
    if not root.is_dir():
        return None, (f"source ECG folder {root} ({source}) is not available; pass --ecg-root "
                      "pointing at the MIMIC-IV-ECG folder to measure the raw signal")
    return root, None


def raw_window(record: EcgRecord) -> np.ndarray:
    """float32 `[12, 1000]` in mV: the first 10 s of `record` prepared by `RAW_RULE`
    (a shorter record is zero-padded at the end after baseline removal).

    The record first goes through the same shape / sampling-rate / length check as
    `engine.preprocess.preprocess_ecg`.

    Raises:
        PreprocessError: inconsistent signal, unusable sampling rate, or a record
            shorter than `engine.preprocess.ecg.MIN_RECORD_SECONDS`.
        LeadError: limb leads I/II cannot be obtained, or no chest lead.
    """
    _, fs = check_record(record)
    n_keep = int(round(ECG_SECONDS * fs))
    leads, _ = assemble_leads(record, n_keep)
    x = resample(leads, fs, ECG_FS_HZ)[:, :ECG_SAMPLES]
    out = np.zeros((len(LEADS), ECG_SAMPLES), dtype=np.float32)
    out[:, :x.shape[1]] = remove_baseline(x, ECG_FS_HZ, ECG_BASELINE_MEDIAN_S)
    return out


def read_raw_ecgs(cohort: Cohort, ecg_root: Path | None = None) -> RawEcgs:
    """Read and prepare the source ECG of every pair (see `RawEcgs`).

    Never raises for a missing root or an unreadable record: the former gives
    `unavailable`, the latter `ok[i] = False` (logged, counted in `n_failed`).
    """
    n = len(cohort)
    sig = np.zeros((n, len(LEADS), ECG_SAMPLES), dtype=np.float32)
    ok = np.zeros(n, dtype=bool)
    root, reason = resolve_ecg_root(cohort, ecg_root)
    if root is None:
        log.warning("raw ECG baseline skipped: %s", reason)
        return RawEcgs(sig, ok, None, unavailable=reason)
    failed: list[str] = []
    for i, row in enumerate(cohort.pairs):
        path = root / (row["ecg_file"] + ".hea")
        try:
            sig[i] = raw_window(read_ecg(path))
            ok[i] = True
        except CromotexError as exc:
            log.warning("raw ECG of pair %d not read: %s", i, exc)
            failed.append(f"{row['ecg_file']}: {exc}")
    result = RawEcgs(sig, ok, root, failed=failed[:20], n_failed=len(failed))
    if not ok.any():
        result.unavailable = f"none of the {n} source ECGs under {root} could be read"
    return result
