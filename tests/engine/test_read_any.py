"""`engine.io.dispatch.read_any` on the real sample files: the same record or image, and
the same typed errors and messages, as trying `read_ecg` then `read_cxr`; a DICOM is
parsed once."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.encaps import encapsulate

from engine.errors import CromotexError, UnsupportedFormatError
from engine.io import read_cxr, read_ecg
from engine.io.dispatch import read_any

DATA = Path(__file__).resolve().parents[1] / "data"
DICOM_ECG = DATA / "ecg" / "dicom" / "pydicom_waveform_ecg.dcm"
DICOM_CXR = next((DATA / "cxr" / "dicom").glob("*.dcm"))
PNG_CXR = DATA / "cxr" / "png" / "nih" / "00000001_000.png"
ECGS = [DATA / "ecg/wfdb/ludb/1.hea", DATA / "ecg/wfdb/ptbxl/00001_lr.dat",
        DATA / "ecg/wfdb/ptbxl/00001_lr", DATA / "ecg/wfdb_mat/cinc2021/HR06000.mat",
        DICOM_ECG]


def _ecg_then_cxr(path: Path):
    """The reference behaviour: an ECG first, else a chest X-ray, else the ECG's refusal."""
    try:
        return "ecg", read_ecg(path)
    except UnsupportedFormatError as ecg_exc:
        try:
            return "cxr", read_cxr(path)
        except UnsupportedFormatError:
            raise ecg_exc from None


def _outcome(read, path: Path):
    try:
        return read(path)
    except CromotexError as exc:
        return type(exc), str(exc)


@pytest.fixture(scope="module")
def jpeg(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("jpeg") / "cxr.jpg"
    Image.open(PNG_CXR).convert("L").save(path, quality=90)
    return path


@pytest.mark.parametrize("path", ECGS, ids=lambda p: p.name)
def test_ecgs_read_as_read_ecg_does(path):
    kind, record = read_any(path)
    expected = read_ecg(path)
    assert kind == "ecg"
    assert record.leads == expected.leads and record.fs == expected.fs
    np.testing.assert_array_equal(record.signal, expected.signal)
    assert record.source == expected.source
    assert record.meta.keys() == expected.meta.keys()


@pytest.mark.parametrize("name", ["dicom", "png", "jpeg"])
def test_chest_x_rays_read_as_read_cxr_does(name, jpeg):
    path = {"dicom": DICOM_CXR, "png": PNG_CXR, "jpeg": jpeg}[name]
    kind, image = read_any(path)
    expected = read_cxr(path)
    assert kind == "cxr"
    np.testing.assert_array_equal(image.pixels, expected.pixels)
    assert (image.pixel_spacing_mm, image.view_position, image.meta, image.source) == (
        expected.pixel_spacing_mm, expected.view_position, expected.meta, expected.source)


@pytest.mark.parametrize("path", [DICOM_ECG, DICOM_CXR], ids=["ecg", "cxr"])
def test_a_dicom_file_is_parsed_once(path, monkeypatch):
    calls = []
    dcmread = pydicom.dcmread

    def counting(*args, **kwargs):
        calls.append(args[0])
        return dcmread(*args, **kwargs)

    monkeypatch.setattr(pydicom, "dcmread", counting)
    read_any(path)
    assert len(calls) == 1  # the path, or its bytes read in memory (engine.io.dicom_common._source)


def _bad_files(tmp: Path) -> dict[str, Path]:
    """Damaged or wrong files made from the real samples."""
    files = {"missing": tmp / "nothing.hea", "folder": tmp}
    (tmp / "empty.dat").write_bytes(b"")
    (tmp / "notes.txt").write_text("not an ECG\n")
    (tmp / "cut_ecg.dcm").write_bytes(DICOM_ECG.read_bytes()[:5000])
    (tmp / "cut.png").write_bytes(PNG_CXR.read_bytes()[:3000])
    shutil.copy(DATA / "ecg/wfdb_mat/cinc2021/HR06000.mat", tmp / "alone.mat")
    ds = pydicom.dcmread(DICOM_ECG)
    ds.WaveformSequence[0].WaveformData = ds.WaveformSequence[0].WaveformData[:1000]
    ds.save_as(tmp / "short_waveform.dcm")
    ds = pydicom.dcmread(DICOM_ECG)
    del ds.WaveformSequence
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.104.1"
    ds.EncapsulatedDocument = b"%PDF-1.4\n"
    ds.save_as(tmp / "pdf.dcm")
    ds = pydicom.dcmread(DICOM_ECG)
    ds.WaveformSequence[0].SamplingFrequency = None
    ds.save_as(tmp / "no_rate.dcm")
    ds = pydicom.dcmread(DICOM_CXR)
    ds.Rows = 40000
    ds.save_as(tmp / "huge_image.dcm")
    ds = pydicom.dcmread(DICOM_CXR)
    ds.PixelData = encapsulate([b"\xff\xd8\xff\xe0 not a JPEG bitstream"])
    ds.save_as(tmp / "bad_pixels.dcm")
    for name in ("empty.dat", "notes.txt", "cut_ecg.dcm", "cut.png", "alone.mat",
                 "short_waveform.dcm", "pdf.dcm", "no_rate.dcm", "huge_image.dcm",
                 "bad_pixels.dcm"):
        files[name] = tmp / name
    return files


def test_bad_files_raise_the_same_typed_errors_and_messages(tmp_path):
    for name, path in _bad_files(tmp_path).items():
        got, expected = _outcome(read_any, path), _outcome(_ecg_then_cxr, path)
        assert isinstance(expected, tuple) and issubclass(expected[0], CromotexError), name
        assert got == expected, name


def test_the_decoders_own_damage_messages(tmp_path):
    files = _bad_files(tmp_path)
    assert "The DICOM ECG" in _outcome(read_any, files["no_rate.dcm"])[1]
    assert "could not be decoded" in _outcome(read_any, files["bad_pixels.dcm"])[1]
