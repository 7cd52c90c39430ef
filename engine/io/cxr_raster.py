"""Read a PNG or JPEG chest X-ray with Pillow into a `CxrImage`.

8-bit grey is divided by 255, 16-bit grey by 65535; colour (RGB, palette, CMYK
...) becomes grey by ITU-R 601 luma (0.299 R + 0.587 G + 0.114 B), the same
weights as Pillow's own "L" conversion. EXIF orientation is applied.

The declared size is checked against `engine.io.limits` (IMAGE_MAX_PIXELS) before any
pixel is decoded: a 280 KB PNG declaring 16384 x 16383 pixels is refused in
milliseconds instead of decoding to gigabytes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from engine.errors import UnsupportedFormatError
from engine.io.cxr_pixels import chroma, luma, minmax_to_unit
from engine.io.guard import corrupt_file_errors
from engine.io.limits import IMAGE_MAX_PIXELS, check_image_size
from engine.records import CxrImage, Source


def read_raster_cxr(path: Path, kind: str) -> CxrImage:
    """Read a PNG or JPEG image (`kind` "png" or "jpeg").

    Returns:
        CxrImage: `pixels` float32 `[H, W]` in [0, 1]; meta: mode (Pillow's),
        chroma (colour modes only, `cxr_pixels.chroma`),
        bits (8 or 16), width, height. No spacing or view (these files carry none).

    Raises:
        CorruptFileError: truncated or damaged image data, impossible size.
        UnsupportedFormatError: an image mode that is not grey or colour.
    """
    from PIL import Image, ImageOps

    Image.MAX_IMAGE_PIXELS = IMAGE_MAX_PIXELS  # Pillow's own bomb check, at our limit
    with corrupt_file_errors(  # Pillow: OSError (truncated), SyntaxError, DecompressionBombError ...
            path, lambda error: f"The image {path} is damaged or truncated and cannot be decoded "
                                f"({error}). Export the image again.",
            f"The image {path} declares more pixels than this program reads (at most "
            f"{IMAGE_MAX_PIXELS // 1_000_000} megapixels). The file is damaged, or not a chest "
            f"X-ray; export the image again.",
            too_large_types=(MemoryError, Image.DecompressionBombError)):
        with Image.open(path) as im:
            width, height = im.size  # declared in the file's header; nothing decoded yet
            check_image_size(height, width, str(path))
            im.load()
            im = ImageOps.exif_transpose(im)
            mode = im.mode
            pixels, bits = _to_grey(im, path)
            colour = chroma(np.asarray(im.convert("RGB"))) if mode in _COLOUR_MODES else None
    meta = {"mode": mode, "bits": bits, "width": int(pixels.shape[1]), "height": int(pixels.shape[0])}
    if colour is not None:
        meta["chroma"] = colour
    return CxrImage(pixels=pixels, meta=meta, source=Source(path=str(path), format=kind))


#: Pillow modes read as colour (converted to grey by luma; their `chroma` goes in meta).
_COLOUR_MODES = ("P", "PA", "RGB", "RGBA", "RGBa", "RGBX", "CMYK", "YCbCr", "LAB", "HSV")


def _to_grey(im, path: Path) -> tuple[np.ndarray, int]:
    """(float32 `[H, W]` in [0, 1], source bits per channel) of a loaded Pillow image."""
    mode = im.mode
    if mode.startswith("I;16"):
        return (np.asarray(im).astype(np.float32) / 65535.0), 16
    if mode == "I":
        arr = np.asarray(im)
        if arr.size and arr.min() >= 0 and arr.max() <= 65535:
            return (arr.astype(np.float32) / 65535.0), 16
        return _minmax(arr), 32
    if mode == "F":
        return _minmax(np.asarray(im)), 32
    if mode in ("1", "L", "LA", "La"):
        return (np.asarray(im.convert("L")).astype(np.float32) / 255.0), 8
    if mode in _COLOUR_MODES:
        grey = luma(np.asarray(im.convert("RGB")))
        return (np.clip(grey / 255.0, 0.0, 1.0).astype(np.float32)), 8
    raise UnsupportedFormatError(f"The image {path} uses the pixel mode {mode!r}, which is not "
                                 f"supported. Save it as 8- or 16-bit grey or RGB PNG/JPEG.")


def _minmax(arr: np.ndarray) -> np.ndarray:
    """float32 `[H, W]` in [0, 1] of an image without a fixed range: NaN and +-inf -> 0, then min..max."""
    return minmax_to_unit(np.nan_to_num(arr.astype(np.float64), nan=0.0, posinf=0.0, neginf=0.0))
