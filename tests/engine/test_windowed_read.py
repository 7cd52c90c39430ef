"""Windowed reads (`engine.io.open_ecg`) equal full reads (`read_ecg`) bit for bit, on the
real sample files; a record over the full-read limits opens and reads in windows."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from engine.errors import CorruptFileError
from engine.io import read_ecg
from engine.io.windowed import open_ecg

DATA = Path(__file__).resolve().parents[1] / "data"
SAMPLES = sorted((DATA / "ecg").rglob("*.hea")) + [
    DATA / "formats/edf/DERIVED_from_mortara_eli250_dicom.edf",
    DATA / "ecg/dicom/pydicom_waveform_ecg.dcm"]
WINDOWED = {"wfdb", "wfdb-mat", "edf"}  # BDF: read whole (edfio 0.4 reads BDF only whole)


def _windows(n: int) -> list[tuple[int, int]]:
    return [(0, n), (0, 1), (n // 3, n // 3 + 777), (n - 5, n), (1, n - 1), (3, 4), (n // 2, n // 2 + 2)]


def _assert_windows_equal(path: Path) -> None:
    full = read_ecg(path, annotations=False)
    src = open_ecg(path)
    assert (src.fs, src.leads, src.n_samples) == (full.fs, full.leads, full.n_samples)
    assert src.windowed == (full.source.format in WINDOWED)
    assert src.duration_s == pytest.approx(full.duration_s)
    for a, b in _windows(full.n_samples):
        b = min(b, full.n_samples)
        w = src.read(a, b)
        assert w.dtype == np.float32 and w.shape == (len(full.leads), b - a)
        assert w.tobytes() == np.ascontiguousarray(full.signal[:, a:b]).tobytes(), (path, a, b)


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.name)
def test_windows_equal_full_read(path):
    _assert_windows_equal(path)


def test_format_212_windows_equal_full_read(tmp_path):
    """Format 212 packs two samples in three bytes: windows starting at odd samples and
    an odd number of channels cut through a byte triple."""
    wfdb = pytest.importorskip("wfdb")
    rec = read_ecg(DATA / "ecg/wfdb/ludb/1.hea")
    names = ["I", "II", "III", "aVR", "aVL", "V1", "V2", "V3", "V4", "V5", "V6"]  # 11: odd
    d = np.round(rec.signal[:11, :4999].T * 200).astype(np.int64)  # 5 uV units, in 12 bits
    wfdb.wrsamp("r212", fs=500, units=["mV"] * 11, sig_name=names, d_signal=d, fmt=["212"] * 11,
                adc_gain=[200.0] * 11, baseline=[0] * 11, write_dir=str(tmp_path))
    _assert_windows_equal(tmp_path / "r212.hea")
    assert read_ecg(tmp_path / "r212.hea").meta["formats"] == ["212"]


def test_bdf_two_rates_window(tmp_path):
    """A BDF whose lead channels have different rates: the window has the full read's leads."""
    data = bytearray((DATA / "formats/edf/pyedflib_test_generator_SYNTHETIC.bdf").read_bytes())
    for index, label in {0: "ECG I", 1: "ECG II"}.items():
        data[256 + 16 * index:256 + 16 * (index + 1)] = label.ljust(16).encode("ascii")
    path = tmp_path / "relabelled.bdf"
    path.write_bytes(bytes(data))
    _assert_windows_equal(path)


def test_overview_envelope_equals_min_max_of_full_read():
    path = DATA / "ecg/wfdb/ptb_diagnostic/s0010_re.hea"  # 38,400 samples
    full = read_ecg(path).signal
    ov = open_ecg(path).overview(100, chunk_samples=1000)  # many chunks
    assert ov.bin_samples == 384 and ov.lo.shape == ov.hi.shape == (12, 100)
    bins = full.reshape(12, 100, 384)
    np.testing.assert_array_equal(ov.lo, bins.min(axis=2))
    np.testing.assert_array_equal(ov.hi, bins.max(axis=2))
    np.testing.assert_allclose(ov.t_s[[0, 1, -1]], [0.0, 384 / 1000, 99 * 384 / 1000])


def holter(folder: Path, hours: float = 24.0, fs: int = 500, name: str = "holter") -> Path:
    """A 12-lead format-16 WFDB record declaring `hours` at `fs` Hz: a sparse signal file
    (all zero but its first 10 s, copied from a real ECG), so it costs no disk."""
    seed = read_ecg(DATA / "ecg/wfdb/ludb/1.hea")
    n = int(hours * 3600 * fs)
    leads = ["I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6"]
    with open(folder / f"{name}.dat", "wb") as f:
        f.write(np.round(seed.signal[:, :10 * fs] * 1000).astype("<i2").T.tobytes())
        f.truncate(n * 12 * 2)
    (folder / f"{name}.hea").write_text(
        f"{name} 12 {fs} {n}\n" + "".join(f"{name}.dat 16 1000/mV 16 0 0 0 0 {lead}\n" for lead in leads))
    return folder / f"{name}.hea"


def test_24_hour_record_refused_whole_but_read_in_windows(tmp_path):
    path = holter(tmp_path)
    with pytest.raises(CorruptFileError, match="samples per channel"):
        read_ecg(path)
    src = open_ecg(path)
    assert src.windowed and src.n_samples == 43_200_000 and src.duration_s == 86_400.0
    seed = read_ecg(DATA / "ecg/wfdb/ludb/1.hea").signal
    first = src.read(0, 5000)
    np.testing.assert_allclose(first, seed, atol=0.0006)  # rounded to 1 uV
    last = src.read(src.n_samples - 5000, src.n_samples + 99)  # clipped to the record
    assert last.shape == (12, 5000) and not last.any()
    with pytest.raises(ValueError):
        src.read(src.n_samples, src.n_samples + 10)


def test_probe_duration_from_the_header_alone(tmp_path):
    from engine.io.windowed import probe_duration_s

    assert probe_duration_s(DATA / "ecg/wfdb/ptb_diagnostic/s0010_re.hea") == 38.4
    assert probe_duration_s(DATA / "ecg/wfdb/ludb/1.i") == 10.0  # a signal file: its header
    assert probe_duration_s(DATA / "formats/edf/DERIVED_from_mortara_eli250_dicom.edf") == 10.0
    assert probe_duration_s(DATA / "ecg/dicom/pydicom_waveform_ecg.dcm") is None  # read whole
    assert probe_duration_s(holter(tmp_path)) == 86_400.0
    assert probe_duration_s(tmp_path / "missing.hea") is None  # the reader gives the message
