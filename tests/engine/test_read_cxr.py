"""Chest X-ray reading: the real SIIM JPEG-compressed DICOM and NIH PNGs, plus tiny
DICOM / PNG / JPEG files generated here with known pixel values (MONOCHROME1,
VOI window, rescale, 16-bit, colour)."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.dataset import FileDataset, FileMetaDataset
from pydicom.encaps import generate_frames
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from engine.errors import CorruptFileError, UnsupportedFormatError
from engine.io import read_cxr

DATA = Path(__file__).resolve().parents[1] / "data" / "cxr"
SIIM = next((DATA / "dicom").glob("*.dcm"))
NIH = DATA / "png" / "nih"
DX_STORAGE = "1.2.840.10008.5.1.4.1.1.1.1"


def make_dicom(path: Path, pixels: np.ndarray, bits_stored: int, photometric: str = "MONOCHROME2",
               **elements) -> Path:
    """Write a minimal uncompressed DX DICOM holding `pixels` (uint8 or uint16 [H, W])."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = DX_STORAGE
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID, ds.SOPInstanceUID, ds.Modality = DX_STORAGE, meta.MediaStorageSOPInstanceUID, "DX"
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, photometric
    ds.BitsAllocated = pixels.dtype.itemsize * 8
    ds.BitsStored, ds.HighBit, ds.PixelRepresentation = bits_stored, bits_stored - 1, 0
    for key, value in elements.items():
        setattr(ds, key, value)
    ds.PixelData = pixels.astype(pixels.dtype.newbyteorder("<")).tobytes()
    ds.save_as(path, enforce_file_format=True)
    return path


VALUES_8 = np.array([[0, 255, 100, 200], [50, 150, 25, 75]], dtype=np.uint8)


def test_monochrome1_is_inverted(tmp_path):
    mono2 = read_cxr(make_dicom(tmp_path / "m2.dcm", VALUES_8, 8, "MONOCHROME2"))
    mono1 = read_cxr(make_dicom(tmp_path / "m1.dcm", VALUES_8, 8, "MONOCHROME1"))
    np.testing.assert_allclose(mono2.pixels, VALUES_8 / 255.0, atol=1e-6)
    np.testing.assert_allclose(mono1.pixels, 1.0 - VALUES_8 / 255.0, atol=1e-6)
    assert mono1.pixels[0, 0] == pytest.approx(1.0)  # stored 0 is white in MONOCHROME1
    assert mono1.meta["photometric"] == "MONOCHROME1"


def test_voi_window_on_12_bit_image(tmp_path):
    values = np.array([[0, 1000, 1536, 1800], [2048, 2300, 2560, 4095]], dtype=np.uint16)
    image = read_cxr(make_dicom(tmp_path / "w.dcm", values, 12, WindowCenter=2048,
                                WindowWidth=1024, ViewPosition="AP", ImagerPixelSpacing=[0.15, 0.15]))
    # DICOM PS3.3 C.11.2.1.2.1 linear window, output range 0..4095 scaled to [0, 1]
    c, w = 2048.0, 1024.0
    expected = np.clip((values - (c - 0.5)) / (w - 1) + 0.5, 0.0, 1.0)
    expected[values <= c - 0.5 - (w - 1) / 2] = 0.0
    expected[values > c - 0.5 + (w - 1) / 2] = 1.0
    np.testing.assert_allclose(image.pixels, expected, atol=1e-6)
    assert image.pixels[1, 0] == pytest.approx(0.5 + 0.5 / 1023, abs=1e-6)  # x = 2048
    assert image.pixels[0, 3] == pytest.approx((1800 - 2047.5) / 1023 + 0.5, abs=1e-6)
    assert image.meta["voi"] == "window" and image.view_position == "AP"
    assert image.pixel_spacing_mm == (0.15, 0.15)


def test_rescale_then_window_in_rescaled_units(tmp_path):
    values = np.array([[0, 500, 1000, 2000]], dtype=np.uint16)
    # rescaled = 2 * x - 1000: -1000, 0, 1000, 3000; window 0..2000 (centre 1000.5, width 2001)
    image = read_cxr(make_dicom(tmp_path / "r.dcm", values, 12, RescaleSlope=2, RescaleIntercept=-1000,
                                WindowCenter=1000.5, WindowWidth=2001, PixelSpacing=[0.2, 0.25]))
    assert image.pixels[0, 0] == 0.0 and image.pixels[0, 3] == 1.0
    # output range is the rescaled stored range -1000 .. 7190; x=1000 -> rescaled 1000
    y_min, y_max = -1000.0, 4095 * 2 - 1000.0
    y = ((1000 - 1000.0) / 2000 + 0.5) * (y_max - y_min) + y_min
    assert image.pixels[0, 2] == pytest.approx((y - y_min) / (y_max - y_min), abs=1e-6)
    assert image.pixel_spacing_mm == (0.2, 0.25)


def test_no_window_uses_image_range(tmp_path):
    values = np.array([[100, 300], [500, 900]], dtype=np.uint16)
    image = read_cxr(make_dicom(tmp_path / "n.dcm", values, 12))
    np.testing.assert_allclose(image.pixels, (values - 100) / 800.0, atol=1e-6)
    assert image.meta["voi"] == "none"


def test_siim_jpeg_baseline_dicom_matches_pillow_decode_of_its_bitstream():
    image = read_cxr(SIIM)
    assert image.pixels.shape == (1024, 1024) and image.pixels.dtype == np.float32
    assert image.view_position == "PA" and image.pixel_spacing_mm == (0.168, 0.168)
    assert image.meta["transfer_syntax"] == "JPEG Baseline (Process 1)"
    ds = pydicom.dcmread(SIIM)
    jpeg = next(generate_frames(ds.PixelData, number_of_frames=1))
    reference = np.asarray(Image.open(io.BytesIO(jpeg)).convert("L"), dtype=np.float64) / 255.0
    # bits stored 8, no VOI: min..max is 0..255, so pixels are the decoded bytes / 255;
    # different IDCT implementations may differ by 1 grey level
    diff = np.abs(image.pixels - reference)
    assert diff.max() <= 2 / 255 + 1e-6 and diff.mean() < 0.5 / 255
    assert 0.3 < image.pixels.mean() < 0.9  # a chest radiograph, not a blank frame


def test_nih_pngs_open_with_their_sizes():
    with open(NIH / "labels.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    for row in rows:
        image = read_cxr(NIH / row["Image Index"])
        with Image.open(NIH / row["Image Index"]) as im:
            reference = np.asarray(im.convert("L"), dtype=np.float64) / 255.0
        np.testing.assert_allclose(image.pixels, reference, atol=1e-6)
        assert image.meta["bits"] == 8 and image.source.format == "png"
        assert image.pixels.std() > 0.05


def test_16_bit_png_keeps_full_precision(tmp_path):
    with Image.open(NIH / "00000001_000.png") as im:
        grey8 = np.asarray(im.convert("L"))
    values16 = grey8.astype(np.uint16) * 257 + 3  # uses the low byte too
    values16[0, 0] = 65535
    Image.fromarray(values16).save(tmp_path / "x16.png")
    image = read_cxr(tmp_path / "x16.png")
    assert image.meta["bits"] == 16
    np.testing.assert_allclose(image.pixels, values16 / 65535.0, atol=1e-6)


def test_colour_jpeg_becomes_grey(tmp_path):
    with Image.open(NIH / "00027426_000.png") as im:
        grey = np.asarray(im.convert("L"))
    Image.fromarray(np.stack([grey] * 3, axis=-1)).save(tmp_path / "c.jpg", quality=95)
    image = read_cxr(tmp_path / "c.jpg")
    assert image.pixels.shape == grey.shape and image.source.format == "jpeg"
    assert np.abs(image.pixels - grey / 255.0).mean() < 2 / 255  # lossy, but the same picture
    solid = np.zeros((8, 8, 3), np.uint8)
    solid[..., 0] = 255  # pure red -> luma 0.299
    Image.fromarray(solid).save(tmp_path / "red.png")
    np.testing.assert_allclose(read_cxr(tmp_path / "red.png").pixels, 0.299, atol=1e-6)


def test_damaged_images(tmp_path):
    raw = (NIH / "00000001_000.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(CorruptFileError):
        read_cxr(tmp_path / "cut.png")
    path = make_dicom(tmp_path / "t.dcm", np.zeros((64, 64), np.uint16), 12)
    ds = pydicom.dcmread(path)
    ds.PixelData = ds.PixelData[:1000]
    ds.save_as(path)
    with pytest.raises(CorruptFileError, match="truncated"):
        read_cxr(path)
    (tmp_path / "a.txt").write_text("hello")
    with pytest.raises(UnsupportedFormatError, match="not an image format"):
        read_cxr(tmp_path / "a.txt")


# --- issue 15: non-finite scale factors and size limits ----------------------------------

def _siim_with(path: Path, **values: str) -> Path:
    """A copy of the real SIIM DICOM with DS elements set to `values` (text as written in
    the file, e.g. "NaN"), written raw so that pydicom's checks do not refuse them."""
    from pydicom.dataelem import DataElement
    from pydicom.datadict import tag_for_keyword

    ds = pydicom.dcmread(SIIM)
    for keyword, text in values.items():
        ds[tag_for_keyword(keyword)] = DataElement(tag_for_keyword(keyword), "DS", text,
                                                   validation_mode=0)
    raw = io.BytesIO()
    with pydicom.config.disable_value_validation():
        ds.save_as(raw, enforce_file_format=True)
    path.write_bytes(raw.getvalue())
    return path


@pytest.mark.parametrize("values", [
    {"WindowCenter": "NaN", "WindowWidth": "400"}, {"WindowCenter": "128", "WindowWidth": "inf"},
    {"WindowCenter": "128", "WindowWidth": "NaN"}, {"WindowCenter": "-inf", "WindowWidth": "256"},
    {"RescaleSlope": "NaN", "RescaleIntercept": "0"}, {"RescaleSlope": "1", "RescaleIntercept": "inf"},
    {"RescaleSlope": "0", "RescaleIntercept": "0"},
    {"WindowCenter": "128\\NaN", "WindowWidth": "256\\256"}])
def test_non_finite_window_or_rescale_refused(tmp_path, values):
    """read_cxr refuses a non-finite window or rescale value (and a zero slope) as a damaged
    file instead of returning NaN or flat pixels (before: all-NaN pixels for a NaN width)."""
    with pytest.raises(CorruptFileError, match="impossible (Window|Rescale)"):
        read_cxr(_siim_with(tmp_path / "x.dcm", **values))


def test_finite_window_on_real_dicom_still_read(tmp_path):
    image = read_cxr(_siim_with(tmp_path / "x.dcm", WindowCenter="128", WindowWidth="256",
                                RescaleSlope="1", RescaleIntercept="0"))
    plain = read_cxr(SIIM)
    assert image.meta["voi"] == "window" and np.isfinite(image.pixels).all()
    np.testing.assert_allclose(image.pixels, plain.pixels, atol=1 / 255 + 1e-6)


def test_declared_size_over_limits_refused_before_decoding(tmp_path):
    """A DICOM declaring more than 100 megapixels, or more decoded bytes than the limit in
    its frames, is refused from its header (the pixel data is not even present)."""
    from engine.io.limits import IMAGE_MAX_DECODED_BYTES

    ds = pydicom.dcmread(SIIM)
    ds.Rows, ds.Columns = 20000, 20000
    ds.save_as(tmp_path / "big.dcm")
    with pytest.raises(CorruptFileError, match="at most 100 megapixels"):
        read_cxr(tmp_path / "big.dcm")
    ds = pydicom.dcmread(SIIM)
    ds.NumberOfFrames = IMAGE_MAX_DECODED_BYTES // (1024 * 1024) + 1
    ds.save_as(tmp_path / "frames.dcm")
    with pytest.raises(CorruptFileError, match="at most 1,024 MiB"):
        read_cxr(tmp_path / "frames.dcm")
