"""EDF / EDF+ / BDF reading on real files: the Mortara 12-lead recording converted to EDF+,
an EDF+ with an annotation channel and vendor-style labels written from it, and pyedflib's
BDF (24-bit) test file with its channels relabelled as leads; `pyedflib` is the oracle."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from engine.constants import LEADS
from engine.errors import CorruptFileError, LeadError, UnsupportedFormatError
from engine.io import read_ecg
from engine.io.dispatch import read_any
from engine.io.edf import ecg_lead_of_label
from engine.io.sniff import sniff

DATA = Path(__file__).resolve().parents[1] / "data"
EDF = DATA / "formats" / "edf" / "DERIVED_from_mortara_eli250_dicom.edf"
BDF = DATA / "formats" / "edf" / "pyedflib_test_generator_SYNTHETIC.bdf"
DCM = DATA / "ecg" / "dicom" / "pydicom_waveform_ecg.dcm"


def _oracle(path: Path) -> dict[str, tuple[np.ndarray, float, str]]:
    pyedflib = pytest.importorskip("pyedflib")
    with pyedflib.EdfReader(str(path)) as reader:
        return {reader.getLabel(i): (reader.readSignal(i), reader.getSampleFrequency(i),
                                     reader.getPhysicalDimension(i))
                for i in range(reader.signals_in_file)}


def test_edf_twelve_leads_equal_pyedflib_and_the_dicom_source():
    rec = read_ecg(EDF)
    assert rec.leads == LEADS and rec.fs == 1000.0 and rec.signal.shape == (12, 10000)
    assert rec.signal.dtype == np.float32 and rec.source.format == "edf" and rec.meta["derived_leads"] == []
    assert rec.meta["edf"]["format"] == "EDF+"
    for label, (samples, fs, unit) in _oracle(EDF).items():
        assert unit == "uV" and fs == 1000.0
        np.testing.assert_allclose(rec.lead(label), samples / 1000.0, atol=1e-6, rtol=0)
    source = read_ecg(DCM)  # the DICOM it was converted from (1.25 uV steps there, 1 uV here)
    np.testing.assert_allclose(rec.signal, source.signal, atol=1e-3)
    lead = {n: rec.lead(n).astype(np.float64) for n in LEADS}
    assert np.abs(lead["III"] - (lead["II"] - lead["I"])).max() < 0.05 * np.ptp(lead["II"])


def test_sniffed_by_content(tmp_path):
    copy = tmp_path / "recording.dat"
    copy.write_bytes(EDF.read_bytes())
    assert sniff(copy) == "edf" and sniff(BDF) == "bdf"
    modality, rec = read_any(copy)
    assert modality == "ecg" and rec.leads == LEADS


@pytest.mark.parametrize("label, lead", [
    ("I", "I"), ("ECG I", "I"), ("EKG V1", "V1"), ("ECG II-REF", "II"), ("Lead aVR", "aVR"),
    ("ECG V6-AVG", "V6"),
    ("ECG II-III", None), ("V3R", None), ("EKG", None), ("Resp", None), ("ECG V7", None)])
def test_lead_labels(label, lead):
    assert ecg_lead_of_label(label) == lead


def test_edf_plus_annotations_vendor_labels_and_millivolts(tmp_path):
    edfio = pytest.importorskip("edfio")
    source = edfio.read_edf(EDF)
    names = {"I": "ECG I", "II": "EKG II", "V1": "ECG V1-REF", "V2": "EKG V2", "V3": "V3", "V4": "V4",
             "V5": "V5", "V6": "V6"}
    signals = [edfio.EdfSignal(s.data / 1000.0, s.sampling_frequency, label=names[s.label],
                               physical_dimension="mV", physical_range=(-40.0, 40.0))
               for s in source.signals if s.label in names]
    signals.append(edfio.EdfSignal(np.sin(np.arange(2500) / 50.0), 250, label="Resp",
                                   physical_dimension="Ohm", physical_range=(-2.0, 2.0)))
    edf = edfio.Edf(signals, annotations=[edfio.EdfAnnotation(1.5, None, "start of exercise"),
                                          edfio.EdfAnnotation(7.25, 0.5, "artefact")])
    path = tmp_path / "annotated.edf"
    edf.write(path)
    rec = read_ecg(path)
    assert rec.meta["edf"]["format"] == "EDF+"
    assert rec.leads == LEADS and rec.meta["derived_leads"] == ["III", "aVR", "aVL", "aVF"]
    assert rec.meta["annotations"] == [{"onset_s": 1.5, "duration_s": None, "text": "start of exercise"},
                                       {"onset_s": 7.25, "duration_s": 0.5, "text": "artefact"}]
    assert any("Resp dropped" in w for w in rec.meta["warnings"])  # 250 Hz, the leads 1000 Hz
    oracle = _oracle(path)
    for label in ("ECG I", "EKG II", "ECG V1-REF", "V6"):
        samples, fs, unit = oracle[label]
        assert unit == "mV"
        np.testing.assert_allclose(rec.lead(ecg_lead_of_label(label)), samples, atol=1e-6)
    original = read_ecg(EDF)
    np.testing.assert_allclose(rec.lead("I"), original.lead("I"), atol=2e-3)  # 16-bit over +-40 mV
    np.testing.assert_allclose(rec.lead("III"), rec.lead("II") - rec.lead("I"), atol=1e-6)


def _relabelled_bdf(tmp_path, labels: dict[int, str]) -> Path:
    data = bytearray(BDF.read_bytes())
    for index, label in labels.items():
        data[256 + 16 * index:256 + 16 * (index + 1)] = label.ljust(16).encode("ascii")
    path = tmp_path / "relabelled.bdf"
    path.write_bytes(bytes(data))
    return path


def test_bdf_24_bit_one_lead_rate(tmp_path):
    path = _relabelled_bdf(tmp_path, {0: "ECG I", 1: "ECG II"})  # sine 1000 Hz, square 800 Hz
    rec = read_ecg(path)
    assert rec.source.format == "bdf" and rec.meta["edf"]["format"] == "BDF"
    assert rec.fs == 1000.0 and rec.leads == ("I",) and rec.signal.shape == (1, 30000)
    assert any("ECG II dropped" in w and "800 Hz" in w for w in rec.meta["warnings"])
    samples, fs, unit = _oracle(path)["ECG I"]
    assert unit == "uV"
    np.testing.assert_allclose(rec.lead("I"), samples / 1000.0, atol=1e-6)


def test_non_ecg_bdf_refused_with_lead_error():
    with pytest.raises(LeadError, match="sine 5Hz"):
        read_ecg(BDF)


def _edited_header(tmp_path, start: int, size: int, value: str, source: Path = EDF,
                   cut: int | None = None) -> Path:
    data = bytearray(source.read_bytes())
    data[start:start + size] = value.ljust(size).encode("ascii")
    path = tmp_path / "edited.edf"
    path.write_bytes(bytes(data[:cut]))
    return path


@pytest.mark.parametrize("start, size, value, error, match", [
    (252, 4, "9999", CorruptFileError, "signals"),                   # signal count vs header size
    (236, 8, "99999999", CorruptFileError, "no ECG|declares"),       # absurd record count
    (236, 8, "11", CorruptFileError, "truncated"),                   # one record more than the file has
    (256 + 216 * 13, 8, "99999999", CorruptFileError, "samples per data record|declares"),
    (256 + 216 * 13, 8, "-5", CorruptFileError, "samples per data record"),
    (192, 44, "EDF+D", UnsupportedFormatError, "discontinuous"),
    (236, 8, "abc", CorruptFileError, "unreadable header"),
])
def test_damaged_headers_refused_quickly(tmp_path, start, size, value, error, match):
    path = _edited_header(tmp_path, start, size, value)
    t0 = time.perf_counter()
    with pytest.raises(error, match=match) as info:
        read_ecg(path)
    assert time.perf_counter() - t0 < 2.0 and "(unexpected " not in str(info.value)


def test_truncated_data_refused(tmp_path):
    path = tmp_path / "cut.edf"
    path.write_bytes(EDF.read_bytes()[:100_000])
    with pytest.raises(CorruptFileError, match="truncated"):
        read_ecg(path)


def test_predict_folders_pick_up_scp_edf_bdf(tmp_path):
    from engine.batch import iter_inputs
    for name in ("r.edf", "s.BDF", "t.scp", "u.SCP", "notes.txt"):
        (tmp_path / name).write_text("")
    found = sorted(Path(i.path).name for i in iter_inputs([str(tmp_path)]))
    assert found == ["r.edf", "s.BDF", "t.scp", "u.SCP"]
