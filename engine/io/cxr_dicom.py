"""Read a DICOM chest X-ray (CR, DX, secondary capture ...) into a `CxrImage`.

Pipeline (pydicom does the pixel work): decode (any transfer syntax pydicom has
a decoder for: JPEG baseline/lossless, JPEG 2000, JPEG-LS, RLE via pylibjpeg),
first frame only, colour -> grey (ITU-R 601 luma), modality LUT (rescale slope /
intercept or LUT), VOI LUT or window (centre / width) when the file has one,
scaled to [0, 1] over the VOI output range (or the image's min..max when there is
no VOI), and MONOCHROME1 inverted so that larger is always brighter.

Before pixel data is decoded, the declared size (Rows x Columns, frames, samples per
pixel, bits allocated) is checked against `engine.io.limits` (IMAGE_MAX_PIXELS per frame,
IMAGE_MAX_DECODED_BYTES for what the decoder produces). Non-finite or zero rescale slopes,
non-finite intercepts and window parameters are refused as damaged files, and a decoded
image with any non-finite pixel is refused rather than shown or scored.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from engine.errors import CorruptFileError, UnsupportedFormatError
from engine.io.cxr_pixels import chroma, luma, minmax_to_unit, scale_to_unit
from engine.io.demographics import age_sex_meta
from engine.io.dicom_common import dicom_kind, open_dicom, sop_class_name, text_fields, text_value
from engine.io.guard import corrupt_file_errors
from engine.io.limits import IMAGE_MAX_DECODED_BYTES, check_image_size
from engine.records import CxrImage, Source

#: Bits allocated per sample that DICOM images use.
_BITS_ALLOCATED = (1, 8, 16, 32, 64)
#: Elements whose every value must be a finite number when present (scale factors and
#: window parameters: a NaN or infinite one would make every pixel NaN or the image flat).
_FINITE_KEYWORDS = ("RescaleSlope", "RescaleIntercept", "WindowCenter", "WindowWidth")


def read_dicom_cxr(path: Path) -> CxrImage:
    """Read a DICOM image file.

    Returns:
        CxrImage: `pixels` float32 `[H, W]` in [0, 1], larger = brighter;
        `pixel_spacing_mm` from PixelSpacing or ImagerPixelSpacing; `view_position`
        from ViewPosition; meta: modality, photometric, bits_stored,
        transfer_syntax, voi ("lut", "window" or "none"), body_part, view_position,
        view_code (ViewCodeSequence meaning), protocol_name, patient_orientation,
        series_description, chroma (colour images only, `cxr_pixels.chroma`), patient
        fields (patient_id, patient_name, birth_date, age, sex) and acquired / study_date.

    Raises:
        UnsupportedFormatError: an ECG waveform, a PDF or a non-image object, or a
            compressed transfer syntax with no decoder installed.
        CorruptFileError: damaged or truncated pixel data, impossible sizes.
    """
    ds = open_dicom(path, "chest X-ray")
    kind = dicom_kind(ds)
    if kind == "waveform":
        raise UnsupportedFormatError(f"{path} is a DICOM ECG waveform ({sop_class_name(ds)}), not "
                                     f"an image. Open it as an ECG.")
    if kind != "image":
        raise UnsupportedFormatError(f"{path} is a DICOM {sop_class_name(ds)} object with no image "
                                     f"pixels. Open a chest X-ray image (CR, DX or secondary capture).")
    return decode_dicom_cxr(ds, path)


def decode_dicom_cxr(ds, path: Path) -> CxrImage:
    """The `CxrImage` of an already parsed DICOM image data set `ds` (`pydicom.Dataset` whose
    `dicom_kind` is "image") read from `path`; as `read_dicom_cxr` (same errors)."""
    with corrupt_file_errors(
            path, lambda error: f"The DICOM image {path} could not be decoded ({error}). The file "
                                f"is damaged; export the image again.",
            f"The DICOM image {path} claims more pixels than can be read."):
        return _read(ds, path)


def _read(ds, path: Path) -> CxrImage:
    from pydicom.pixels import apply_modality_lut, apply_voi_lut, get_decoder

    rows, cols = int(ds.Rows), int(ds.Columns)
    spp = int(ds.get("SamplesPerPixel", 1) or 1)
    bits = int(ds.get("BitsAllocated", 0) or 0)
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    check_image_size(rows, cols, str(path))
    if spp not in (1, 3) or bits not in _BITS_ALLOCATED or frames < 1:
        raise CorruptFileError(f"The DICOM image {path} declares an impossible pixel format "
                               f"({spp} samples per pixel, {bits} bits allocated, {frames} "
                               f"frames). The file is damaged; export the image again.")
    decoded = rows * cols * spp * frames * max(bits, 8) // 8
    if decoded > IMAGE_MAX_DECODED_BYTES:
        raise CorruptFileError(
            f"The DICOM image {path} declares {frames} frames of {cols} x {rows} pixels, "
            f"{decoded / 2**20:,.0f} MiB decoded, more than this program reads (at most "
            f"{IMAGE_MAX_DECODED_BYTES // 2**20:,} MiB). Export the chest X-ray as a single "
            f"image.")
    _check_finite(ds, path)
    ts = ds.file_meta.get("TransferSyntaxUID", None) if hasattr(ds, "file_meta") else None
    if ts is not None and ts.is_compressed:
        decoder = get_decoder(ts)
        if not decoder.is_available:
            raise UnsupportedFormatError(
                f"{path} is compressed as {ts.name}, and no decoder for it is installed. "
                f"Install pylibjpeg with its libjpeg and openjpeg plugins (pip install "
                f"pylibjpeg pylibjpeg-libjpeg pylibjpeg-openjpeg).")
    elif "PixelData" in ds:
        need = rows * cols * spp * frames * bits // 8
        if len(ds.PixelData) < need:
            raise CorruptFileError(f"The DICOM image {path} is truncated: {rows} x {cols} pixels "
                                   f"need {need} bytes, the file has {len(ds.PixelData)}.")
    arr = ds.pixel_array
    if spp == 3:
        arr = arr[0] if arr.ndim == 4 else arr
        pixels = minmax_to_unit(luma(arr))
        voi = "none"
        colour = chroma(arr)
    else:
        arr = arr[0] if arr.ndim == 3 else arr
        values = apply_modality_lut(arr, ds).astype(np.float64, copy=False)
        voi, low, high = _voi_range(ds, values)
        if voi != "none":
            values = apply_voi_lut(values, ds, index=0, prefer_lut=True).astype(np.float64, copy=False)
        pixels = scale_to_unit(values, low, high)
    if arr.shape[:2] != (rows, cols):
        raise CorruptFileError(f"The DICOM image {path} decoded to {arr.shape}, not {rows} x {cols}.")
    if not np.isfinite(pixels).all():
        raise CorruptFileError(f"The DICOM image {path} decodes to pixels that are not numbers "
                               f"(NaN or infinite). The file is damaged; export the image again.")
    photometric = str(ds.get("PhotometricInterpretation", "") or "").upper()
    if photometric == "MONOCHROME1":
        pixels = 1.0 - pixels
    meta = _meta(ds, photometric, voi, ts)
    if spp == 3:
        meta["chroma"] = colour
    return CxrImage(pixels=np.ascontiguousarray(pixels, dtype=np.float32),
                    pixel_spacing_mm=_spacing(ds), view_position=text_value(ds, "ViewPosition"),
                    meta=meta, source=Source(path=str(path), format="dicom-cxr"))


def _check_finite(ds, path: Path) -> None:
    """Refuse non-finite rescale and window values, and a zero rescale slope.

    Raises:
        CorruptFileError: naming the element and its value."""
    for keyword in _FINITE_KEYWORDS:
        value = ds.get(keyword, None)
        if value is None or value == "":
            continue
        values = list(value) if not isinstance(value, (str, bytes)) and hasattr(value, "__iter__") \
            else [value]
        numbers = [float(v) for v in values]
        if not all(math.isfinite(v) for v in numbers) or keyword == "RescaleSlope" and 0.0 in numbers:
            raise CorruptFileError(f"The DICOM image {path} has an impossible {keyword} "
                                   f"({', '.join(map(str, values))}), so its grey levels cannot be "
                                   f"computed. The file is damaged; export the image again.")


def _voi_range(ds, values: np.ndarray) -> tuple[str, float, float]:
    """Which VOI transform applies and its output range (as pydicom computes it)."""
    lut_seq = ds.get("VOILUTSequence", None)
    if lut_seq:
        data = np.asarray(lut_seq[0].LUTData, dtype=np.float64).ravel()
        if data.size:
            return "lut", float(data.min()), float(data.max())
    if ds.get("WindowCenter", None) is not None and ds.get("WindowWidth", None) is not None:
        if ds.get("ModalityLUTSequence", None):
            bits = int(ds.ModalityLUTSequence[0].LUTDescriptor[2])
            y_min, y_max = 0.0, float(2 ** bits - 1)
        elif int(ds.get("PixelRepresentation", 0) or 0) == 0:
            y_min, y_max = 0.0, float(2 ** int(ds.BitsStored) - 1)
        else:
            y_min, y_max = float(-(2 ** (int(ds.BitsStored) - 1))), float(2 ** (int(ds.BitsStored) - 1) - 1)
        if ds.get("RescaleSlope", None) is not None and ds.get("RescaleIntercept", None) is not None:
            slope, intercept = float(ds.RescaleSlope), float(ds.RescaleIntercept)
            y_min, y_max = sorted((y_min * slope + intercept, y_max * slope + intercept))
        return "window", y_min, y_max
    return "none", float(values.min()), float(values.max())


def _spacing(ds) -> tuple[float, float] | None:
    for keyword in ("PixelSpacing", "ImagerPixelSpacing"):
        value = ds.get(keyword, None)
        try:
            row, col = float(value[0]), float(value[1])
        except (TypeError, ValueError, IndexError):
            continue
        if math.isfinite(row) and math.isfinite(col) and row > 0 and col > 0:
            return (row, col)
    return None


def _meta(ds, photometric: str, voi: str, ts) -> dict[str, Any]:
    meta: dict[str, Any] = {"modality": text_value(ds, "Modality"), "photometric": photometric,
                            "bits_stored": int(ds.get("BitsStored", 0) or 0), "voi": voi,
                            "transfer_syntax": ts.name if ts is not None else None,
                            "sop_class": sop_class_name(ds)}
    meta.update(text_fields(ds, (("patient_id", "PatientID"), ("study_date", "StudyDate"),
                                 ("body_part", "BodyPartExamined"),
                                 ("series_description", "SeriesDescription"),
                                 ("patient_name", "PatientName"), ("birth_date", "PatientBirthDate"),
                                 ("view_position", "ViewPosition"), ("protocol_name", "ProtocolName"),
                                 ("patient_orientation", "PatientOrientation"))))
    meta.update(age_sex_meta(text_value(ds, "PatientAge"), text_value(ds, "PatientSex")))
    acquired = text_value(ds, "AcquisitionDateTime") or " ".join(
        x for x in (text_value(ds, "AcquisitionDate") or text_value(ds, "StudyDate"),
                    text_value(ds, "AcquisitionTime") or text_value(ds, "StudyTime")) if x)
    if acquired:
        meta["acquired"] = acquired
    view_code = _view_code(ds)
    if view_code:
        meta["view_code"] = view_code
    return meta


def _view_code(ds) -> str | None:
    """CodeMeaning (else CodeValue) of the first ViewCodeSequence item, e.g. "postero-anterior"."""
    try:
        seq = ds.get("ViewCodeSequence", None)
        item = seq[0] if seq else None
    except Exception:  # a damaged sequence must not stop the read: the view is then unknown
        return None
    return (text_value(item, "CodeMeaning") or text_value(item, "CodeValue")) if item is not None else None
