"""Signal-quality flags for an ECG, shown beside every ECG prediction.

`assess_quality(record, ecg_input)` looks at the record as read (mV, original
sampling rate) for the 12 standard leads it actually contains, and at the
preprocessing report for derived / missing leads and padding. Thresholds are
named constants below; each was checked against the real sample records in
tests/data (none of which is flagged) and against the same records with a
defect injected.
"""

from __future__ import annotations

import logging
import math
from functools import lru_cache

import numpy as np

from engine.constants import LEADS
from engine.preprocess.ecg import MAX_RECORD_SECONDS, standard_lead_rows
from engine.records import EcgInput, EcgRecord, QualityFlags

logger = logging.getLogger(__name__)

#: A lead (or a stretch of it, see FLAT_MIN_SECONDS) whose peak-to-peak
#: amplitude is below this many mV carries no ECG: a normal QRS is 0.5-3 mV and
#: even a low-voltage lead exceeds 0.1 mV. Typical of a disconnected electrode
#: or a lead zero-filled by the device.
FLAT_P2P_MV: float = 0.02
#: A lead is also flat if it contains a stretch at least this long (s) made of
#: consecutive FLAT_SEGMENT_S segments each below FLAT_P2P_MV (electrode
#: falling off mid-recording). No heart pauses that long with a quiet baseline
#: in a resting ECG that is otherwise fine, and if it does it deserves a look.
FLAT_MIN_SECONDS: float = 2.0
#: Segment length (s) for the flat-stretch test.
FLAT_SEGMENT_S: float = 0.5

#: Clipping: the lead sits exactly at its own maximum or minimum value in runs
#: of at least this many seconds... (clean real records reach their extreme for
#: at most 16 ms, at ADC quantisation steps of 1 uV)
SATURATION_MIN_RUN_S: float = 0.03
#: ... which together last at least this long (s), i.e. several clipped beats
#: or one long saturation, not one flattened R peak.
SATURATION_MIN_TOTAL_S: float = 0.1
#: Runs shorter than this many samples never count (low sampling rates).
SATURATION_MIN_RUN_SAMPLES: int = 3

#: Noise: ratio of signal power at and above NOISE_CUTOFF_HZ (muscle noise,
#: mains hum at 50/60 Hz, electrode artefacts) to the power of the ECG band
#: 0.5 Hz-NOISE_CUTOFF_HZ. Clean real records measure 0.001-0.30 (the highest
#: on small-amplitude limb leads); white noise of 0.1 mV RMS or a 0.1 mV mains
#: hum added to a real record gives 0.1-1.7, most leads > 0.5.
NOISE_HF_RATIO: float = 0.5
#: ... and the high-frequency part must also be at least this large (RMS, mV),
#: so that a clean low-amplitude lead is not called noisy. Clean real records
#: measure 0.001-0.04 mV.
NOISE_MIN_HF_RMS_MV: float = 0.05
#: Noise of this RMS (mV) above NOISE_CUTOFF_HZ is flagged whatever the ratio:
#: it is visible (1 mm on standard paper) even on a large-amplitude lead.
NOISE_HIGH_HF_RMS_MV: float = 0.1
#: Boundary between the ECG band and the noise band, Hz. Noise is not assessed
#: for records sampled at or below 2 * NOISE_CUTOFF_HZ + 10 (no band to see it).
NOISE_CUTOFF_HZ: float = 40.0
#: Lower edge of the ECG band, Hz (below it: baseline wander, not noise).
NOISE_ECG_BAND_LOW_HZ: float = 0.5


def _runs(mask: np.ndarray) -> np.ndarray:
    """Lengths of the runs of True in a 1-D boolean array."""
    edges = np.diff(np.concatenate(([0], mask.astype(np.int8), [0])))
    return np.flatnonzero(edges == -1) - np.flatnonzero(edges == 1)


def _ptp64(x: np.ndarray, axis: int) -> np.ndarray:
    """Peak-to-peak of float `x` along `axis`, as float64: max and min are taken in `x`'s
    own dtype (exact), the difference in float64, so float32 samples give exactly what
    `np.ptp` of the same samples in float64 gives."""
    return x.max(axis=axis).astype(np.float64) - x.min(axis=axis).astype(np.float64)


def flat_rows(x: np.ndarray, fs: float) -> np.ndarray:
    """Which rows of `x` (float32 or float64 `[rows, n]`, mV) are flat, overall or over
    FLAT_MIN_SECONDS.

    Vectorised over rows; the run-length test runs only on rows with enough quiet
    segments to possibly hold a long enough stretch (rarely any). Returns bool `[rows]`.
    """
    rows, n = x.shape
    if n == 0:
        return np.ones(rows, dtype=bool)
    flat = _ptp64(x, axis=1) < FLAT_P2P_MV
    seg = max(1, int(round(FLAT_SEGMENT_S * fs)))
    n_seg = n // seg
    need = math.ceil(FLAT_MIN_SECONDS / FLAT_SEGMENT_S)
    if n_seg < need:
        return flat
    quiet = _ptp64(x[:, :n_seg * seg].reshape(rows, n_seg, seg), axis=2) < FLAT_P2P_MV
    for r in np.flatnonzero(~flat & (quiet.sum(axis=1) >= need)):
        flat[r] = _runs(quiet[r]).max() >= need
    return flat


def saturated_rows(x: np.ndarray, fs: float) -> np.ndarray:
    """Which rows of `x` (float32 or float64 `[rows, n]`, mV) are clipped: long runs at
    their own extremes (exact comparisons, so either dtype gives the same answer).

    Vectorised over rows: a row whose samples at its maximum and minimum are too few
    to add up to SATURATION_MIN_TOTAL_S cannot be clipped (the runs are a subset of
    them), so the run-length test runs only on the others. Returns bool `[rows]`.
    """
    rows, n = x.shape
    out = np.zeros(rows, dtype=bool)
    if n == 0:
        return out
    min_run = max(SATURATION_MIN_RUN_SAMPLES, int(round(SATURATION_MIN_RUN_S * fs)))
    at_max = x == x.max(axis=1, keepdims=True)
    at_min = x == x.min(axis=1, keepdims=True)
    # int32 counts: twice as fast as the default int64, exact below 2**31 samples per row
    count = at_max.sum(axis=1, dtype=np.int32) + at_min.sum(axis=1, dtype=np.int32)
    candidates = count >= SATURATION_MIN_TOTAL_S * fs
    for r in np.flatnonzero(candidates):
        total = 0
        for mask in (at_max[r], at_min[r]):
            runs = _runs(mask)
            total += int(runs[runs >= min_run].sum())
        out[r] = total / fs >= SATURATION_MIN_TOTAL_S
    return out


def is_flat(x: np.ndarray, fs: float) -> bool:
    """True if lead `x` (float `[n]`, mV) is flat overall or over FLAT_MIN_SECONDS."""
    return bool(flat_rows(np.asarray(x)[None, :], fs)[0])


def is_saturated(x: np.ndarray, fs: float) -> bool:
    """True if lead `x` (float `[n]`, mV) is clipped: long runs at its extremes."""
    return bool(saturated_rows(np.asarray(x)[None, :], fs)[0])


@lru_cache(maxsize=64)
def _band_bins(n: int, fs: float) -> tuple[int, int]:
    """First rfft bins (of `n` samples at `fs` Hz) at or above NOISE_ECG_BAND_LOW_HZ and
    NOISE_CUTOFF_HZ: the ECG band is bins `[low, cut)`, the noise band `[cut, n // 2]`."""
    freqs = np.fft.rfftfreq(n, 1.0 / fs)  # ascending: the bands are slices
    low, cut = np.searchsorted(freqs, [NOISE_ECG_BAND_LOW_HZ, NOISE_CUTOFF_HZ], side="left")
    return int(low), int(cut)


def _band_power(spectrum: np.ndarray, start: int, stop: int | None) -> np.ndarray:
    """Sum of `|spectrum[:, start:stop]|^2` per row (complex128 `[rows, bins]` -> float64
    `[rows]`), read as interleaved (re, im) float64 pairs: no power array is built."""
    pairs = spectrum.view(np.float64)[:, 2 * start:None if stop is None else 2 * stop]
    return np.einsum("ij,ij->i", pairs, pairs)


def noise_measures(x: np.ndarray, fs: float) -> tuple[np.ndarray, np.ndarray]:
    """Per-row noise measures of `x` (float `[rows, n]`, mV) at `fs` Hz, computed in float64.

    The mean is not removed first: it only changes bin 0, which neither band includes
    (removing it changes both measures by < 2e-12 relative on the test records, with or
    without a 300 mV offset added).

    Returns:
        (ratio of power >= NOISE_CUTOFF_HZ to power in the ECG band, float64
        `[rows]`; RMS of the part >= NOISE_CUTOFF_HZ in mV, float64 `[rows]`).
    """
    x = np.asarray(x, dtype=np.float64)
    n = x.shape[-1]
    spectrum = np.fft.rfft(x, axis=-1)
    low, cut = _band_bins(n, float(fs))
    high = _band_power(spectrum, cut, None)
    band = _band_power(spectrum, low, cut)
    ratio = high / np.maximum(band, np.finfo(np.float64).tiny)
    # Parseval: sum over the one-sided spectrum, the interior bins counted twice
    hf_rms = np.sqrt(2.0 * high / n ** 2)
    return ratio, hf_rms


def _standard_leads(record: EcgRecord, n_samples: int) -> tuple[list[str], np.ndarray]:
    """The standard leads `record` contains (first occurrence of each), in `LEADS` order,
    and their first `n_samples` samples `[len(names), <= n_samples]` in mV with NaN and
    +-inf replaced by 0: float32 for a float32 record (the readers' dtype; flatness and
    clipping compare values exactly, the same in either dtype), else float64. A view of
    `record.signal` when the leads are its first rows in order and all finite (the
    readers' layout); not to be written to."""
    rows = standard_lead_rows(record.leads)
    present = [n for n in LEADS if n in rows]
    index = [rows[n] for n in present]
    sig = np.asarray(record.signal)
    leads = sig[:len(index), :n_samples] if index == list(range(len(index))) \
        else sig[index, :n_samples]
    if leads.dtype != np.float32:
        leads = leads.astype(np.float64)
    if not np.isfinite(leads).all():
        leads = np.nan_to_num(leads, nan=0.0, posinf=0.0, neginf=0.0)
    return present, leads


def assess_quality(record: EcgRecord, ecg_input: EcgInput) -> QualityFlags:
    """Signal-quality flags for `record`, given what preprocessing reported.

    Args:
        record: the record as read (signal float `[n_leads, n]` in mV at `record.fs`).
        ecg_input: `preprocess_ecg(record)`; its report supplies derived and
            missing leads and the padding.

    Returns:
        `QualityFlags` with canonical lead names in `LEADS` order: flat,
        saturated (clipped) and noisy leads among those recorded; derived and
        missing leads from the report; `short_record` when the record was
        shorter than 10 s and had to be padded.
    """
    fs = float(record.fs)
    present, leads = _standard_leads(record, max(1, int(MAX_RECORD_SECONDS * fs)))
    is_flat_lead = flat_rows(leads, fs)
    flat = [n for n, f in zip(present, is_flat_lead) if f]
    live = [n for n, f in zip(present, is_flat_lead) if not f]
    live_sig = leads[~is_flat_lead] if is_flat_lead.any() else leads
    saturated = [n for n, s in zip(live, saturated_rows(live_sig, fs)) if s]
    noisy: list[str] = []
    if live and fs > 2 * NOISE_CUTOFF_HZ + 10:
        ratio, hf_rms = noise_measures(live_sig, fs)
        noisy = [n for n, r, a in zip(live, ratio, hf_rms)
                 if (r > NOISE_HF_RATIO and a > NOISE_MIN_HF_RMS_MV) or a > NOISE_HIGH_HF_RMS_MV]
    report = ecg_input.report
    flags = QualityFlags(
        flat_leads=tuple(flat),
        saturated_leads=tuple(saturated),
        noisy_leads=tuple(noisy),
        derived_leads=tuple(report.get("leads_derived", ())),
        missing_leads=tuple(report.get("leads_missing", ())),
        short_record=float(report.get("padded_seconds", 0.0)) > 0.0,
    )
    if not flags.ok:
        logger.info("ECG quality: %s", flags)
    return flags
