"""Signal-quality flags on real records, clean and with injected defects."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from engine.io import read_ecg
from engine.preprocess import preprocess_ecg
from engine.quality import (FLAT_P2P_MV, NOISE_HF_RATIO, NOISE_MIN_HF_RMS_MV, assess_quality,
                            noise_measures)
from engine.records import EcgRecord

DATA = Path(__file__).resolve().parents[1] / "data" / "ecg"
CINC = DATA / "wfdb_mat" / "cinc2021" / "E07505.hea"
PTB = DATA / "wfdb" / "ptb_diagnostic" / "s0010_re.hea"
ALL = [DATA / "wfdb" / "ludb" / f"{n}.hea" for n in (1, 2, 8, 17)] + [
    CINC, PTB, DATA / "wfdb" / "ptbxl" / "00001_lr.hea",
    DATA / "dicom" / "pydicom_waveform_ecg.dcm"]


def read(path: Path) -> EcgRecord:
    return read_ecg(path)


def flags_for(rec: EcgRecord):
    return assess_quality(rec, preprocess_ecg(rec))


def modified(rec: EcgRecord, lead: str, fn) -> EcgRecord:
    sig = rec.signal.astype(np.float64).copy()
    r = rec.leads.index(lead)
    sig[r] = fn(sig[r])
    return EcgRecord(signal=sig.astype(np.float32), fs=rec.fs, leads=rec.leads)


@pytest.fixture(scope="module", params=[CINC, PTB], ids=["cinc500", "ptb1000"])
def rec(request) -> EcgRecord:
    return read(request.param)


@pytest.mark.parametrize("path", ALL, ids=lambda p: p.stem)
def test_clean_real_records_are_not_flagged(path: Path) -> None:
    flags = flags_for(read(path))
    assert flags.ok, flags
    assert flags.derived_leads == () and flags.missing_leads == ()


def test_flat_lead(rec: EcgRecord) -> None:
    flags = flags_for(modified(rec, "V2", lambda x: np.full_like(x, 0.31)))
    assert flags.flat_leads == ("V2",) and not flags.ok
    assert flags.saturated_leads == () and flags.noisy_leads == ()


def test_lead_falling_off_midway_is_flat(rec: EcgRecord) -> None:
    def fall_off(x):
        y = x.copy()
        n = int(3 * rec.fs)  # last 3 s: electrode off, tiny noise only
        y[-n:] = 0.002 * np.random.default_rng(0).standard_normal(n)
        return y
    assert flags_for(modified(rec, "V5", fall_off)).flat_leads == ("V5",)


def test_all_nan_lead_is_flat(rec: EcgRecord) -> None:
    assert flags_for(modified(rec, "aVL", lambda x: np.full_like(x, np.nan))).flat_leads == ("aVL",)


def test_clipped_lead_is_saturated(rec: EcgRecord) -> None:
    """Clip lead II to its 10th-90th percentile band, as an amplifier whose
    input range is too small would."""
    def clip(x):
        lo, hi = np.percentile(x, [10, 90])
        return np.clip(x, lo, hi)
    flags = flags_for(modified(rec, "II", clip))
    assert flags.saturated_leads == ("II",) and not flags.ok
    assert flags.flat_leads == ()


def test_one_sided_clipping_is_saturated(rec: EcgRecord) -> None:
    """Only the top of the lead clipped (its R peaks and T waves flattened)."""
    flags = flags_for(modified(rec, "V4", lambda x: np.minimum(x, np.percentile(x, 90))))
    assert flags.saturated_leads == ("V4",)


def test_strong_noise_is_flagged(rec: EcgRecord) -> None:
    """0.2 mV RMS white noise (muscle / electrode noise) on one lead."""
    rng = np.random.default_rng(3)
    flags = flags_for(modified(rec, "V3", lambda x: x + 0.2 * rng.standard_normal(x.size)))
    assert flags.noisy_leads == ("V3",) and not flags.ok


def test_moderate_noise_on_a_small_lead_is_flagged(rec: EcgRecord) -> None:
    """0.08 mV RMS noise on the record's smallest lead: below the absolute
    limit, flagged by the ratio rule."""
    rng = np.random.default_rng(4)
    small = rec.leads[int(np.argmin(rec.signal[:12].std(axis=1)))]
    flags = flags_for(modified(rec, small, lambda x: x + 0.08 * rng.standard_normal(x.size)))
    assert flags.noisy_leads == (small,)


def test_mains_hum_is_flagged(rec: EcgRecord) -> None:
    t = np.arange(rec.n_samples) / rec.fs
    flags = flags_for(modified(rec, "I", lambda x: x + 0.3 * np.sin(2 * np.pi * 50 * t)))
    assert flags.noisy_leads == ("I",)


def test_noise_measure_values() -> None:
    """A pure 60 Hz tone of 0.1 mV amplitude: RMS 0.0707 mV, all power above 40 Hz."""
    fs = 500.0
    t = np.arange(5000) / fs
    ratio, rms = noise_measures((0.1 * np.sin(2 * np.pi * 60 * t))[None], fs)
    assert rms[0] == pytest.approx(0.1 / np.sqrt(2), rel=1e-3)
    assert ratio[0] > 1e6
    assert NOISE_HF_RATIO > 0 and NOISE_MIN_HF_RMS_MV > FLAT_P2P_MV / 2


def test_derived_missing_and_short_come_from_the_report() -> None:
    cinc = read(CINC)
    names = ["I", "II", "V1", "V2", "V4", "V5", "V6"]
    sig = np.stack([cinc.lead(n) for n in names])[:, :3500]  # 7 s
    rec = EcgRecord(signal=sig, fs=cinc.fs, leads=tuple(names))
    flags = flags_for(rec)
    assert flags.derived_leads == ("III", "aVR", "aVL", "aVF")
    assert flags.missing_leads == ("V3",)
    assert flags.short_record is True
    assert flags.flat_leads == ()  # a missing lead is reported as missing, not flat
    assert not flags.ok


def _naive_flat(x: np.ndarray, fs: float) -> bool:
    """Reference: the per-lead definition, written the slow obvious way."""
    import math
    from engine.quality import FLAT_MIN_SECONDS, FLAT_SEGMENT_S
    if x.size == 0 or x.max() - x.min() < FLAT_P2P_MV:
        return True
    seg = max(1, int(round(FLAT_SEGMENT_S * fs)))
    need, run = math.ceil(FLAT_MIN_SECONDS / FLAT_SEGMENT_S), 0
    for k in range(x.size // seg):
        s = x[k * seg:(k + 1) * seg]
        run = run + 1 if s.max() - s.min() < FLAT_P2P_MV else 0
        if run >= need:
            return True
    return False


def _naive_saturated(x: np.ndarray, fs: float) -> bool:
    from engine.quality import SATURATION_MIN_RUN_S, SATURATION_MIN_RUN_SAMPLES, SATURATION_MIN_TOTAL_S
    min_run = max(SATURATION_MIN_RUN_SAMPLES, int(round(SATURATION_MIN_RUN_S * fs)))
    total = 0
    for level in (x.max(), x.min()):
        run = 0
        for v in list(x) + [np.nan]:
            if v == level:
                run += 1
            else:
                total += run if run >= min_run else 0
                run = 0
    return total / fs >= SATURATION_MIN_TOTAL_S


def _with_defects(rec: EcgRecord) -> np.ndarray:
    """The first 12 leads of `rec` as float64 `[12, n]` with defects injected into leads 1-5."""
    rng = np.random.default_rng(3)
    sig = rec.signal[:12].astype(np.float64).copy()
    n, fs = sig.shape[1], rec.fs
    sig[1] = 0.2  # flat
    sig[2, n // 2:] = sig[2, n // 2] + rng.normal(0, 0.001, n - n // 2)  # falls off midway
    sig[3] = np.clip(sig[3], None, np.quantile(sig[3], 0.9))  # clipped at the top
    sig[4] = np.clip(sig[4], np.quantile(sig[4], 0.2), np.quantile(sig[4], 0.8))  # both sides
    sig[5, : int(0.5 * fs)] = sig[5].max()  # one long run at the maximum
    return sig


def test_vectorised_flat_and_saturation_match_the_per_lead_definition(rec: EcgRecord) -> None:
    """flat_rows / saturated_rows over all leads at once equal the obvious per-lead loop,
    on a real record with defects injected into different leads (and on the clean leads)."""
    from engine.quality import flat_rows, saturated_rows
    sig, fs = _with_defects(rec), rec.fs
    flat, sat = flat_rows(sig, fs), saturated_rows(sig, fs)
    assert list(flat) == [_naive_flat(r, fs) for r in sig]
    assert list(sat) == [_naive_saturated(r, fs) for r in sig]
    assert flat[1] and flat[2] and sat[3] and sat[4] and sat[5]
    assert not flat[[0, 3, 4, 5, 6]].any() and not sat[[0, 6, 7]].any()


def test_float32_samples_give_the_float64_answers(rec: EcgRecord) -> None:
    """The readers' float32 samples are judged without a float64 copy: flat and clipped
    leads are the same as for the same values in float64, and the noise measures equal
    the plain power-spectrum formula."""
    from engine.quality import flat_rows, saturated_rows
    fs = rec.fs
    sig32 = _with_defects(rec).astype(np.float32)
    sig32[7] += np.float32(0.2) * np.sin(np.arange(sig32.shape[1]) * 0.9).astype(np.float32)  # noisy
    sig64 = sig32.astype(np.float64)
    flat = flat_rows(sig32, fs)
    assert np.array_equal(flat, flat_rows(sig64, fs))
    assert np.array_equal(saturated_rows(sig32, fs), saturated_rows(sig64, fs))
    live = sig64[~flat]  # as assess_quality: noise is measured on the leads that are not flat
    x = live - live.mean(axis=-1, keepdims=True)
    power = np.abs(np.fft.rfft(x, axis=-1)) ** 2
    freqs = np.fft.rfftfreq(x.shape[-1], 1.0 / fs)
    high = power[:, freqs >= 40.0].sum(axis=-1)
    band = power[:, (freqs >= 0.5) & (freqs < 40.0)].sum(axis=-1)
    ratio, rms = noise_measures(sig32[~flat], fs)
    np.testing.assert_allclose(ratio, high / band, rtol=1e-12)
    np.testing.assert_allclose(rms, np.sqrt(2.0 * high) / x.shape[-1], rtol=1e-12)
    leads = rec.leads[:12]
    as32 = flags_for(EcgRecord(signal=sig32, fs=fs, leads=leads))
    assert as32 == flags_for(EcgRecord(signal=sig64, fs=fs, leads=leads))
    assert as32.flat_leads and as32.saturated_leads and as32.noisy_leads
