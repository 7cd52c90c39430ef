"""Pixel conventions shared by the chest X-ray readers (DICOM and PNG/JPEG).

Every reader hands `CxrImage.pixels` over as float32 `[H, W]` in [0, 1], larger
= brighter; colour becomes grey by the same luma weights and any range becomes
[0, 1] by the same scaling, whichever file format the image came in.
"""

from __future__ import annotations

import math

import numpy as np

#: ITU-R BT.601 luma weights (R, G, B), the same as Pillow's own "L" conversion.
LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float64)


def luma(rgb: np.ndarray) -> np.ndarray:
    """Grey float64 `[H, W]` of colour `[H, W, 3]`, in the input's units (0.299 R + 0.587 G + 0.114 B)."""
    return rgb.astype(np.float64) @ LUMA


def chroma(rgb: np.ndarray) -> float:
    """How coloured an image `[H, W, 3]` (any numeric range) is: the mean of max(R, G, B) -
    min(R, G, B) over the pixels, divided by the image's value range; 0 for a grey image saved
    as RGB, ~0.1 or more for a photograph or a coloured screenshot. Sampled on a grid of at most
    ~256 x 256 pixels."""
    step = max(1, int(math.ceil(max(rgb.shape[0], rgb.shape[1]) / 256)))
    x = np.asarray(rgb[::step, ::step, :3], dtype=np.float64)
    span = float(x.max() - x.min()) if x.size else 0.0
    if span <= 0:
        return 0.0
    return float(np.mean(x.max(axis=2) - x.min(axis=2)) / span)


def scale_to_unit(values: np.ndarray, low: float, high: float) -> np.ndarray:
    """float32 `(values - low) / (high - low)`, clipped to [0, 1], same shape as `values`;
    all 0 when the range is flat or not finite."""
    if not (math.isfinite(low) and math.isfinite(high)) or high <= low:
        return np.zeros(values.shape, dtype=np.float32)
    return np.clip((values - low) / (high - low), 0.0, 1.0).astype(np.float32)


def minmax_to_unit(values: np.ndarray) -> np.ndarray:
    """float32, same shape: the array's own min..max scaled to 0..1 (`scale_to_unit`)."""
    return scale_to_unit(values, float(values.min()), float(values.max()))
