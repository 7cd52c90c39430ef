"""Chest X-ray preprocessing: `CxrImage` -> model input (TorchXRayVision convention).

Grey -> centre square crop -> 224 x 224 -> [-1024, 1024].

Resizing uses Pillow's BILINEAR filter on a 32-bit float image. Pillow's
resampling is a separable convolution whose triangle kernel is widened by the
scale factor when shrinking, so every source pixel contributes (an
antialiased, area-weighted average): correct for 1024 -> 224 and 3000 -> 224
alike, and plain bilinear interpolation when enlarging a small image.
"""

from __future__ import annotations

import logging

import numpy as np
from PIL import Image

from engine.constants import CXR_RANGE, CXR_SIZE
from engine.errors import PreprocessError
from engine.io.cxr_pixels import luma
from engine.io.limits import IMAGE_MAX_PIXELS
from engine.records import CxrImage

logger = logging.getLogger(__name__)


def to_grey(pixels: np.ndarray) -> np.ndarray:
    """Grey float64 `[H, W]` in [0, 1] from `[H, W]`, `[H, W, 1]`, `[H, W, 3]` or
    `[H, W, 4]` (alpha ignored); NaN -> 0, values clipped to [0, 1].

    Raises:
        PreprocessError: any other shape, or an empty image.
    """
    px = np.asarray(pixels, dtype=np.float64)
    if px.ndim == 3 and px.shape[2] == 1:
        px = px[:, :, 0]
    elif px.ndim == 3 and px.shape[2] in (3, 4):
        px = luma(px[:, :, :3])  # only if a colour array slips through: CxrImage.pixels is grey [H, W]
    if px.ndim != 2 or px.shape[0] < 1 or px.shape[1] < 1:
        raise PreprocessError(
            f"Chest X-ray pixel array has shape {np.shape(pixels)}; expected a 2-D grey image. "
            "Open the original DICOM, PNG or JPEG file.")
    px = np.nan_to_num(px, nan=0.0, posinf=1.0, neginf=0.0)
    return np.clip(px, 0.0, 1.0)


def centre_square(px: np.ndarray) -> np.ndarray:
    """The largest centred square of `px` `[H, W]`: side min(H, W); when the
    excess is odd the extra row / column is dropped at the bottom / right."""
    h, w = px.shape
    side = min(h, w)
    top = (h - side) // 2
    left = (w - side) // 2
    return px[top:top + side, left:left + side]


def preprocess_cxr(image: CxrImage) -> np.ndarray:
    """Model input for a chest X-ray.

    Args:
        image: `CxrImage` whose `pixels` are float `[H, W]` in [0, 1], larger = brighter.

    Returns:
        float32 `[1, CXR_SIZE, CXR_SIZE]` (`[1, 224, 224]`) in
        `CXR_RANGE` ([-1024, 1024]): value = 2048 * p - 1024 for grey level p.

    Raises:
        PreprocessError: the pixel array is not a non-empty grey (or colour) image, or
            there is not enough memory for it (a MemoryError becomes this typed error).
    """
    try:
        return _preprocess(image.pixels)
    except MemoryError as exc:
        raise PreprocessError(
            f"Not enough memory to prepare the chest X-ray of {np.shape(image.pixels)} pixels for "
            f"the model. Close other programs and try again, or use a smaller export of the "
            f"image (the readers accept up to {IMAGE_MAX_PIXELS // 1_000_000} megapixels).") from exc


def _preprocess(pixels: np.ndarray) -> np.ndarray:
    """`preprocess_cxr` of a pixel array. A 2-D image is cropped before `to_grey` (which is
    per pixel, so the result is the same) so that only the square is copied to float64."""
    px = np.asarray(pixels)
    if px.ndim == 2 and px.shape[0] >= 1 and px.shape[1] >= 1:
        px = centre_square(px)
    square = centre_square(to_grey(px)).astype(np.float32)
    if square.shape[0] != CXR_SIZE:
        resized = Image.fromarray(square).resize(
            (CXR_SIZE, CXR_SIZE), resample=Image.Resampling.BILINEAR)
        square = np.asarray(resized, dtype=np.float32)
    lo, hi = CXR_RANGE
    out = np.clip(square, 0.0, 1.0) * np.float32(hi - lo) + np.float32(lo)
    return np.clip(out, lo, hi).astype(np.float32, copy=False)[np.newaxis]
