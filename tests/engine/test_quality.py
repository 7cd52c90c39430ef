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
