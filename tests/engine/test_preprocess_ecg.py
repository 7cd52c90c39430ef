"""ECG preprocessing on the real sample records (tests/data/ecg), with values."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import signal as sps

from engine.constants import ECG_FS_HZ, ECG_SAMPLES, LEADS
from engine.errors import LeadError, PreprocessError
from engine.io import read_ecg
from engine.preprocess import filters, preprocess_ecg
from engine.preprocess.ecg import MAX_RECORD_SECONDS, MIN_RECORD_SECONDS
from engine.records import EcgRecord

DATA = Path(__file__).resolve().parents[1] / "data" / "ecg"
LUDB1 = DATA / "wfdb" / "ludb" / "1.hea"
CINC = DATA / "wfdb_mat" / "cinc2021" / "E07505.hea"
PTB = DATA / "wfdb" / "ptb_diagnostic" / "s0010_re.hea"
PTBXL = DATA / "wfdb" / "ptbxl" / "00001_lr.hea"
ALL = [DATA / "wfdb" / "ludb" / f"{n}.hea" for n in (1, 2, 8, 17)] + [
    CINC, PTB, PTBXL, DATA / "dicom" / "pydicom_waveform_ecg.dcm"]


def read(path: Path) -> EcgRecord:
    return read_ecg(path)


def subset(rec: EcgRecord, names: list[str]) -> EcgRecord:
    """The record restricted to `names`, rows in that order."""
    rows = [rec.leads.index(n) for n in names]
    return EcgRecord(signal=rec.signal[rows].copy(), fs=rec.fs, leads=tuple(names))


def with_signal(rec: EcgRecord, sig: np.ndarray, fs: float | None = None) -> EcgRecord:
    return EcgRecord(signal=np.asarray(sig, dtype=np.float32), fs=rec.fs if fs is None else fs,
                     leads=rec.leads)


@pytest.fixture(scope="module")
def cinc() -> EcgRecord:
    return read(CINC)


@pytest.mark.parametrize("path", ALL, ids=lambda p: p.stem)
def test_output_exactly_in_range_with_extremes_on_every_lead(path: Path) -> None:
    rec = read(path)
    out = preprocess_ecg(rec)
    w = out.windows
    assert w.dtype == np.float32 and w.ndim == 3 and w.shape[1:] == (12, ECG_SAMPLES)
    assert np.isfinite(w).all()
    assert w.min() >= -1.0 and w.max() <= 1.0
    assert (w.min(axis=-1) == -1.0).all() and (w.max(axis=-1) == 1.0).all()
    assert out.report["leads_found"] == list(LEADS)
    assert out.report["leads_derived"] == [] and out.report["leads_missing"] == []
    assert out.report["original_fs"] == rec.fs
    assert {"original_fs", "original_seconds", "leads_found", "leads_derived", "leads_missing",
            "padded_seconds", "window_starts_s", "seconds_used", "rule"} <= set(out.report)
    json.dumps(out.report)  # JSON-ready


def test_minmax_scale_equals_the_plain_formula() -> None:
    """minmax_scale (computed in place) gives exactly the bits of the formula written out,
    for ordinary, flat and tiny-range rows and any target interval."""
    rng = np.random.default_rng(5)
    x = rng.normal(0, 1, (6, 1000)) * np.array([[1], [1e-3], [1e-8], [0], [50], [1]])
    x[5] = 0.25  # flat
    for lo, hi in ((-1.0, 1.0), (0.0, 1.0), (-3.5, 2.25)):
        mn, mx = x.min(axis=1, keepdims=True), x.max(axis=1, keepdims=True)
        flat = mx - mn <= filters.FLAT_RANGE_MV
        plain = (x - mn) / np.where(flat, 1.0, mx - mn) * (hi - lo) + lo
        plain = np.clip(np.where(flat, (lo + hi) / 2.0, plain), lo, hi)
        np.testing.assert_array_equal(filters.minmax_scale(x, lo, hi), plain)


def test_ten_second_500hz_record_is_one_window(cinc: EcgRecord) -> None:
    rep = preprocess_ecg(cinc).report
    assert rep["original_fs"] == 500.0 and rep["original_seconds"] == 10.0
    assert rep["window_starts_s"] == [0.0] and rep["seconds_used"] == 10.0
    assert rep["padded_seconds"] == 0.0 and rep["dropped_seconds"] == 0.0
    assert (rep["resample_up"], rep["resample_down"]) == (1, 5)


def test_ptb_38_4_s_at_1000_hz_gives_three_windows() -> None:
    rec = read(PTB)
    assert rec.fs == 1000 and rec.n_samples == 38400
    out = preprocess_ecg(rec)
    assert out.windows.shape == (3, 12, ECG_SAMPLES)
    rep = out.report
    assert rep["window_starts_s"] == [0.0, 10.0, 20.0]
    assert rep["seconds_used"] == 30.0
    assert rep["dropped_seconds"] == pytest.approx(8.4)
    assert rep["original_seconds"] == pytest.approx(38.4)
    # windows are different stretches of the record, not copies
    assert np.abs(out.windows[0] - out.windows[1]).mean() > 0.05


def test_drift_of_0_3_hz_is_removed() -> None:
    """A 0.5 mV, 0.3 Hz sinusoidal drift (1 mV peak to peak, as large as the QRS
    of these leads) added to real records. The paper's median-filter baseline
    (0.2 s then 0.6 s) is nonlinear: it leaves a broadband residual of a few
    hundredths of a mV, but the 0.3 Hz component itself must be attenuated more
    than 12-fold in mV (0.5 -> < 0.04 mV) and more than 5-fold in the model input (relative to
    min-max scaling without baseline removal; measured 8- to 20-fold)."""
    t_out = np.arange(ECG_SAMPLES) / ECG_FS_HZ
    probe = np.exp(-2j * np.pi * 0.3 * t_out)

    def amp_03(x: np.ndarray) -> np.ndarray:
        return np.abs(x @ probe) * 2 / ECG_SAMPLES

    for path in (LUDB1, CINC, PTB):
        rec = read(path)
        t = np.arange(rec.n_samples) / rec.fs
        drift = 0.5 * np.sin(2 * np.pi * 0.3 * t + 0.7)
        drifted = with_signal(rec, rec.signal + drift)
        clean, dirty = preprocess_ecg(rec).windows[0], preprocess_ecg(drifted).windows[0]
        # mV domain: the 0.3 Hz amplitude left after baseline removal (0.5 mV added)
        x0 = filters.resample(rec.signal[:12], rec.fs, ECG_FS_HZ)[:, :ECG_SAMPLES]
        x1 = filters.resample(drifted.signal[:12], rec.fs, ECG_FS_HZ)[:, :ECG_SAMPLES]
        resid = filters.remove_baseline(x1, ECG_FS_HZ, (0.2, 0.6)) - \
            filters.remove_baseline(x0, ECG_FS_HZ, (0.2, 0.6))
        assert amp_03(resid).max() < 0.04, path.stem
        assert np.sqrt((resid ** 2).mean(axis=-1)).max() < 0.08, path.stem
        # model input: compare with what min-max scaling alone would give
        no_bl = filters.minmax_scale(x1, -1, 1) - filters.minmax_scale(x0, -1, 1)
        assert (amp_03(dirty - clean) < 0.2 * amp_03(no_bl)).all(), path.stem
        assert np.abs(dirty - clean).mean() < min(0.12, 0.35 * np.abs(no_bl).mean()), path.stem


@pytest.mark.parametrize("fs", [500, 360, 1000, 250, 257])
def test_sinusoid_keeps_its_frequency_after_resampling(fs: int) -> None:
    t = np.arange(int(10 * fs)) / fs
    phases = np.linspace(0, np.pi, 12)[:, None]
    # 7 Hz in band; at 500/1000 Hz add a 70 Hz tone that would alias to 30 Hz
    sig = np.sin(2 * np.pi * 7 * t + phases)
    if fs >= 500:
        sig = sig + 0.5 * np.sin(2 * np.pi * 70 * t)
    rec = EcgRecord(signal=sig.astype(np.float32), fs=float(fs), leads=LEADS)
    w = preprocess_ecg(rec).windows
    assert w.shape == (1, 12, ECG_SAMPLES)
    spec = np.abs(np.fft.rfft(w[0] - w[0].mean(axis=-1, keepdims=True), axis=-1))
    freqs = np.fft.rfftfreq(ECG_SAMPLES, 1 / ECG_FS_HZ)
    assert (freqs[spec.argmax(axis=-1)] == 7.0).all()
    if fs >= 500:  # anti-aliasing: nothing folded back to 30 Hz
        assert (spec[:, freqs == 30.0][:, 0] < 0.01 * spec.max(axis=-1)).all()


@pytest.mark.parametrize("fs, n", [(100, 1000), (250, 2500), (257, 2570), (360, 3600),
                                   (500, 5000), (1000, 10000), (500, 4999)])
def test_any_sampling_rate_gives_one_full_window(fs: int, n: int) -> None:
    rng = np.random.default_rng(fs)
    rec = EcgRecord(signal=rng.normal(size=(12, n)).astype(np.float32), fs=float(fs), leads=LEADS)
    out = preprocess_ecg(rec)
    assert out.windows.shape == (1, 12, ECG_SAMPLES)
    assert out.report["padded_seconds"] == 0.0


def test_integer_decimation_equals_resample_poly(cinc: EcgRecord) -> None:
    x = cinc.signal.astype(np.float64)
    for down, n in ((5, 5000), (10, 4321), (2, 999)):
        ref = sps.resample_poly(x[:, :n], 1, down, axis=-1, padtype="edge")
        np.testing.assert_allclose(filters.resample(x[:, :n], 100.0 * down, 100.0), ref,
                                   rtol=0, atol=1e-9)
    assert filters.resample_factors(360, 100) == (5, 18)
    assert filters.resample_factors(257, 100) == (100, 257)


def test_median_filter_is_exact_with_edge_repetition() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(5, 300))
    for k in (21, 61):
        got = filters.median_filter_rows(x, k)
        padded = np.pad(x, ((0, 0), (k // 2, k // 2)), mode="edge")
        ref = np.median(np.lib.stride_tricks.sliding_window_view(padded, k, axis=-1), axis=-1)
        np.testing.assert_array_equal(got, ref)
    assert filters.median_kernel(0.2, 100) == 21 and filters.median_kernel(0.6, 100) == 61


def test_baseline_is_second_median_of_first(cinc: EcgRecord) -> None:
    x = filters.resample(cinc.signal, 500.0, 100.0)
    b1 = sps.medfilt(np.pad(x, ((0, 0), (10, 10)), mode="edge"), (1, 21))[:, 10:-10]
    b2 = sps.medfilt(np.pad(b1, ((0, 0), (30, 30)), mode="edge"), (1, 61))[:, 30:-30]
    np.testing.assert_array_equal(filters.remove_baseline(x, 100, (0.2, 0.6)), x - b2)


def test_lead_order_is_by_name(cinc: EcgRecord) -> None:
    """Rows stored in MIMIC order (aVF before aVL) or shuffled land by name."""
    ref = preprocess_ecg(cinc).windows
    mimic = ["I", "II", "III", "aVR", "aVF", "aVL", "V1", "V2", "V3", "V4", "V5", "V6"]
    out = preprocess_ecg(subset(cinc, mimic)).windows
    np.testing.assert_array_equal(out, ref)
    shuffled = list(np.random.default_rng(1).permutation(LEADS))
    np.testing.assert_array_equal(preprocess_ecg(subset(cinc, shuffled)).windows, ref)
    # aVL and aVF differ in this record, so a swap would be caught
    assert np.abs(ref[0, LEADS.index("aVL")] - ref[0, LEADS.index("aVF")]).max() > 0.5


def test_derived_limb_leads_follow_einthoven_goldberger(cinc: EcgRecord) -> None:
    eight = ["I", "II", "V1", "V2", "V3", "V4", "V5", "V6"]
    out = preprocess_ecg(subset(cinc, eight))
    assert out.report["leads_derived"] == ["III", "aVR", "aVL", "aVF"]
    assert out.report["leads_found"] == eight and out.report["leads_missing"] == []
    # exactly the formulas
    i, ii = (cinc.lead(n).astype(np.float64) for n in ("I", "II"))
    built = {"I": i, "II": ii, "III": ii - i, "aVR": -(i + ii) / 2, "aVL": i - ii / 2,
             "aVF": ii - i / 2}
    sig = np.stack([built[n] if n in built else cinc.lead(n) for n in LEADS])
    expect = preprocess_ecg(EcgRecord(signal=sig, fs=cinc.fs, leads=LEADS)).windows
    np.testing.assert_allclose(out.windows, expect, atol=1e-6)
    # and close to the leads the device recorded (common scale in this record)
    full = preprocess_ecg(cinc).windows
    for name in ("III", "aVR", "aVL", "aVF"):
        r = LEADS.index(name)
        assert np.corrcoef(out.windows[0, r], full[0, r])[0, 1] > 0.97, name


def test_lead_i_derived_from_ii_and_iii(cinc: EcgRecord) -> None:
    names = [n for n in LEADS if n != "I"]
    out = preprocess_ecg(subset(cinc, names))
    assert out.report["leads_derived"] == ["I"]
    r = LEADS.index("I")
    assert np.corrcoef(out.windows[0, r], preprocess_ecg(cinc).windows[0, r])[0, 1] > 0.97


def test_missing_chest_lead_is_flat_and_reported(cinc: EcgRecord) -> None:
    names = [n for n in LEADS if n != "V3"]
    out = preprocess_ecg(subset(cinc, names))
    assert out.report["leads_missing"] == ["V3"]
    v3 = LEADS.index("V3")
    assert (out.windows[0, v3] == 0.0).all()
    others = [k for k in range(12) if k != v3]
    np.testing.assert_array_equal(out.windows[0, others], preprocess_ecg(cinc).windows[0, others])


def test_flat_and_nan_leads_stay_finite_zero(cinc: EcgRecord) -> None:
    sig = cinc.signal.copy()
    sig[LEADS.index("V2")] = 0.73          # flat, with an offset
    sig[LEADS.index("V4")] = np.nan        # lead off, all NaN
    sig[LEADS.index("V5"), 1000:1100] = np.nan   # a short gap
    w = preprocess_ecg(with_signal(cinc, sig)).windows
    assert np.isfinite(w).all()
    assert (w[0, LEADS.index("V2")] == 0.0).all() and (w[0, LEADS.index("V4")] == 0.0).all()
    v5 = w[0, LEADS.index("V5")]
    assert v5.min() == -1.0 and v5.max() == 1.0


def test_short_record_is_padded_with_isoelectric_line(cinc: EcgRecord) -> None:
    short = EcgRecord(signal=cinc.signal[:, :3000].copy(), fs=cinc.fs, leads=cinc.leads)  # 6 s
    out = preprocess_ecg(short)
    assert out.windows.shape == (1, 12, ECG_SAMPLES)
    rep = out.report
    assert rep["padded_seconds"] == pytest.approx(4.0) and rep["seconds_used"] == pytest.approx(6.0)
    w = out.windows[0]
    assert (w.min(axis=-1) == -1.0).all() and (w.max(axis=-1) == 1.0).all()
    # padding is constant per lead: the scaled value of 0 mV
    pad = w[:, 600:]
    assert (pad == pad[:, :1]).all()
    x = filters.remove_baseline(filters.resample(short.signal, 500.0, 100.0), 100, (0.2, 0.6))
    zero_scaled = -1 + 2 * (0 - x.min(axis=-1)) / (x.max(axis=-1) - x.min(axis=-1))
    np.testing.assert_allclose(pad[:, 0], zero_scaled, atol=1e-6)


def test_very_long_record_is_limited(cinc: EcgRecord) -> None:
    """A 20-minute recording: only the first MAX_RECORD_SECONDS are windowed."""
    reps = int(1200 / cinc.duration_s)
    long = EcgRecord(signal=np.tile(cinc.signal, (1, reps)), fs=cinc.fs, leads=cinc.leads)
    out = preprocess_ecg(long)
    n_win = int(MAX_RECORD_SECONDS // 10)
    assert out.windows.shape == (n_win, 12, ECG_SAMPLES)
    assert out.report["seconds_used"] == MAX_RECORD_SECONDS
    assert out.report["dropped_seconds"] == pytest.approx(1200 - MAX_RECORD_SECONDS)
    assert out.report["window_starts_s"][-1] == MAX_RECORD_SECONDS - 10


def test_errors_users_can_cause(cinc: EcgRecord) -> None:
    with pytest.raises(LeadError, match="I and II"):
        preprocess_ecg(subset(cinc, ["I", "aVR", "V1", "V2", "V3", "V4", "V5", "V6"]))
    with pytest.raises(LeadError, match="chest"):
        preprocess_ecg(subset(cinc, ["I", "II", "III", "aVR", "aVL", "aVF"]))
    tiny = int(MIN_RECORD_SECONDS * cinc.fs) - 1
    with pytest.raises(PreprocessError, match="long"):
        preprocess_ecg(EcgRecord(signal=cinc.signal[:, :tiny].copy(), fs=cinc.fs, leads=cinc.leads))
    with pytest.raises(PreprocessError, match="sampling rate"):
        preprocess_ecg(EcgRecord(signal=cinc.signal, fs=float("nan"), leads=cinc.leads))
    with pytest.raises(PreprocessError, match="shape"):
        preprocess_ecg(EcgRecord(signal=cinc.signal[:6], fs=cinc.fs, leads=cinc.leads))


_CACHE: dict[str, EcgRecord] = {}


def read_cached() -> EcgRecord:
    if "cinc" not in _CACHE:
        _CACHE["cinc"] = read(CINC)
    return _CACHE["cinc"]


@settings(max_examples=40, deadline=None)
@given(fs=st.sampled_from([50.0, 100.0, 128.0, 250.0, 256.3, 257.0, 300.0, 360.0, 500.0, 1000.0,
                           1000.0 / 3]),
       seconds=st.floats(MIN_RECORD_SECONDS + 0.05, 35.0),
       drop=st.sets(st.sampled_from(["III", "aVR", "aVL", "aVF", "V1", "V3", "V6"]), max_size=4),
       seed=st.integers(0, 2 ** 16))
def test_invariants_on_random_rates_lengths_and_lead_sets(fs, seconds, drop, seed) -> None:
    """A real record brought to any rate / length / lead subset keeps every
    output invariant: shape, W = floor(seconds / 10) (>= 1), exact [-1, 1]
    extremes on every present lead, report of derived / missing leads."""
    cinc = read_cached()
    n = int(seconds * fs)
    base = sps.resample_poly(cinc.signal, *filters.resample_factors(500.0, fs), axis=-1)
    sig = np.tile(base, (1, n // base.shape[1] + 1))[:, :n]
    sig = sig + np.random.default_rng(seed).normal(0, 0.01, sig.shape)
    names = [x for x in LEADS if x not in drop]
    rec = EcgRecord(signal=sig[[LEADS.index(x) for x in names]].astype(np.float32), fs=fs,
                    leads=tuple(names))
    out = preprocess_ecg(rec)
    n100 = -(-n * out.report["resample_up"] // out.report["resample_down"])
    assert out.windows.shape == (max(1, n100 // ECG_SAMPLES), 12, ECG_SAMPLES)
    assert np.isfinite(out.windows).all()
    assert out.windows.min() >= -1 and out.windows.max() <= 1
    live = [LEADS.index(x) for x in LEADS if x not in out.report["leads_missing"]]
    assert (out.windows[:, live].min(axis=-1) == -1).all()
    assert (out.windows[:, live].max(axis=-1) == 1).all()
    assert set(out.report["leads_missing"]) == drop & {"V1", "V3", "V6"}
    assert set(out.report["leads_derived"]) == drop & {"III", "aVR", "aVL", "aVF"}
    json.dumps(out.report)
