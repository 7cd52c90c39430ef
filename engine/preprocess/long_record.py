"""The window rule for long records, and reading any ECG file for scoring in bounded memory.

**Rule** (`LONG_RULE`, copied into the preprocessing report of every long record):

- A record of at most `MAX_RECORD_SECONDS` (300 s) is read whole and preprocessed by
  `preprocess_ecg` exactly as before: outputs of 10 s to 5 min records are unchanged.
- A longer record (a Holter or monitoring export) is opened with `engine.io.open_ecg`
  and never read whole. Of its T = floor(seconds / 10) whole 10 s windows, K =
  min(T, `LONG_MAX_WINDOWS`) = at most 30 are scored, evenly spaced over the whole record:
  window k (k = 0..K-1) starts at 10 s x round(k x (T - 1) / (K - 1)), so the first and
  the last whole 10 s window are always among them. Each window is read alone
  (10 s of samples) and preprocessed exactly as a 10 s record would be
  (`preprocess_ecg`: resample, baseline, scale).
- Summary: the record's probability is the mean of its windows' probabilities, as for
  any record (`engine.inference`); the report lists the scored windows' start times
  (`window_starts_s`), so per-window results line up with the record's time axis.
  Quality flags are computed on the scored windows' samples, concatenated.
- Cost: K <= 30 windows is the same bound as the 300 s cap (30 windows), so time and
  memory per record are bounded for any length (tens of MB, measured by
  bench/long_record.py).
"""

from __future__ import annotations

import logging
import os

import numpy as np

from engine.constants import ECG_SECONDS
from engine.errors import CromotexError
from engine.io import read_ecg
from engine.io.windowed import EcgSource, open_ecg, probe_duration_s
from engine.preprocess.ecg import MAX_RECORD_SECONDS, preprocess_ecg
from engine.records import EcgInput, EcgRecord

__all__ = ["LONG_MAX_WINDOWS", "LONG_RULE", "long_window_starts", "preprocess_source",
           "read_for_scoring"]

logger = logging.getLogger(__name__)

#: Most 10 s windows scored from a record longer than MAX_RECORD_SECONDS.
LONG_MAX_WINDOWS: int = int(MAX_RECORD_SECONDS // ECG_SECONDS)

#: Human-readable statement of the long-record rule, copied into the report.
LONG_RULE: str = (
    f"record longer than {MAX_RECORD_SECONDS:g} s: of its T whole {ECG_SECONDS} s windows, "
    f"min(T, {LONG_MAX_WINDOWS}) evenly spaced ones are scored (window k starts at "
    f"{ECG_SECONDS} s x round(k (T-1) / (K-1)); first and last included), each read alone and "
    f"preprocessed as a {ECG_SECONDS} s record; probability = mean over the scored windows"
)


def long_window_starts(n_samples: int, fs: float, max_windows: int = LONG_MAX_WINDOWS) -> list[int]:
    """Start samples of the windows scored from a long record (the rule above).

    Args:
        n_samples: samples per lead of the record; fs: its rate, Hz.

    Returns:
        K sorted, distinct start samples (K = min(T, max_windows), T whole 10 s windows);
        empty when the record holds no whole 10 s window.
    """
    win = int(round(ECG_SECONDS * fs))
    total = n_samples // win if win > 0 else 0
    k = min(total, max_windows)
    if k <= 0:
        return []
    if k == 1:
        return [0]
    grid = sorted({int(round(i * (total - 1) / (k - 1))) for i in range(k)})
    return [g * win for g in grid]


def preprocess_source(source: EcgSource, max_windows: int = LONG_MAX_WINDOWS
                      ) -> tuple[EcgRecord, EcgInput]:
    """Windows of a long record by the rule above.

    Returns:
        (an `EcgRecord` of the scored windows' raw samples concatenated, float32
        `[n_leads, K * 10 s * fs]` mV, for quality checks and measurements;
        `EcgInput` with `windows` float32 `[K, 12, 1000]` and the report of
        `preprocess_ecg` with the long-record fields: `window_starts_s` (start of each
        scored window in the record, s), `original_seconds`, `seconds_used`,
        `dropped_seconds`, `long_record` True, `rule` += `LONG_RULE`).
    """
    fs = float(source.fs)
    win = int(round(ECG_SECONDS * fs))
    starts = long_window_starts(source.n_samples, fs, max_windows)
    if not starts:  # cannot happen above MAX_RECORD_SECONDS; kept for direct callers
        rec = source.record(0, source.n_samples)
        return rec, preprocess_ecg(rec)
    pieces, windows, report = [], [], None
    for s in starts:
        rec = source.record(s, s + win)
        one = preprocess_ecg(rec)
        windows.append(one.windows[:1])
        pieces.append(rec.signal)
        report = report or dict(one.report)
    joined = EcgRecord(signal=np.concatenate(pieces, axis=1), fs=fs, leads=source.leads,
                       meta=source.meta, source=source.source)
    seconds = source.n_samples / fs
    used = len(starts) * ECG_SECONDS
    report.update({
        "original_seconds": seconds,
        "window_starts_s": [s / fs for s in starts],
        "seconds_used": float(used),
        "dropped_seconds": seconds - used,
        "padded_seconds": 0.0,
        "long_record": True,
        "rule": f"{report['rule']}; {LONG_RULE}",
    })
    return joined, EcgInput(windows=np.concatenate(windows, axis=0), report=report)


def read_for_scoring(path: str | os.PathLike, *, annotations: bool = False
                     ) -> tuple[EcgRecord, EcgInput]:
    """Read and preprocess one ECG file in bounded memory, whatever its length.

    Records up to MAX_RECORD_SECONDS: `read_ecg` + `preprocess_ecg` (unchanged results).
    Longer records in a windowed format: `preprocess_source(open_ecg(path))`.
    Other formats are read once, whole, under the reader limits. Which path is taken is
    decided from the header alone (`probe_duration_s`), so a short file is read once.

    Returns:
        (record, model input), as `read_ecg` / `preprocess_ecg` (see `preprocess_source`
        for the record returned for a long file).

    Raises:
        the errors of `read_ecg` and `preprocess_ecg`.
    """
    source = None
    seconds = probe_duration_s(path)  # header only: most files are short and read once
    if seconds is not None and seconds > MAX_RECORD_SECONDS:
        try:
            source = open_ecg(path, annotations=annotations, windowed_only=True)
        except CromotexError as exc:  # read_ecg below gives its own message (the same files fail)
            logger.debug("open_ecg(%s): %s", path, exc)
    if source is not None and source.duration_s > MAX_RECORD_SECONDS:
        logger.info("%s: %.0f s long, scored window by window", path, source.duration_s)
        return preprocess_source(source)
    record = read_ecg(path, annotations=annotations)
    return record, preprocess_ecg(record)
