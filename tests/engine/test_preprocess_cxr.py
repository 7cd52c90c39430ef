"""Chest X-ray preprocessing: real images and synthetic images with known answers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from engine.constants import CXR_RANGE, CXR_SIZE
from engine.errors import PreprocessError
from engine.io import read_cxr
from engine.preprocess import preprocess_cxr
from engine.records import CxrImage

DATA = Path(__file__).resolve().parents[1] / "data" / "cxr"
NIH = sorted((DATA / "png" / "nih").glob("*.png"))


def read(path: Path) -> CxrImage:
    return read_cxr(path)


def image(px: np.ndarray) -> CxrImage:
    return CxrImage(pixels=np.asarray(px, dtype=np.float32))


@pytest.mark.parametrize("path", NIH, ids=lambda p: p.stem)
def test_real_images_shape_dtype_range_and_mean(path: Path) -> None:
    img = read(path)
    out = preprocess_cxr(img)
    assert out.shape == (1, CXR_SIZE, CXR_SIZE) and out.dtype == np.float32
    assert out.min() >= CXR_RANGE[0] and out.max() <= CXR_RANGE[1]
    # NIH images are square: resizing averages, so the mean grey level is kept
    expect = 2048 * float(np.mean(img.pixels)) - 1024
    assert float(out.mean()) == pytest.approx(expect, abs=3.0)
    assert out.std() > 100  # an X-ray, not a uniform field


def test_constant_images_map_to_range_ends_and_centre() -> None:
    for value, expect in ((0.0, -1024.0), (1.0, 1024.0), (0.5, 0.0), (0.25, -512.0)):
        out = preprocess_cxr(image(np.full((700, 500), value)))
        np.testing.assert_allclose(out, expect, atol=1e-3)


@pytest.mark.parametrize("shape", [(600, 900), (900, 600), (3000, 2500), (150, 180)])
def test_centred_disc_stays_centred(shape: tuple[int, int]) -> None:
    h, w = shape
    yy, xx = np.mgrid[:h, :w]
    radius = min(h, w) / 4
    disc = ((yy - (h - 1) / 2) ** 2 + (xx - (w - 1) / 2) ** 2 <= radius ** 2).astype(np.float32)
    out = preprocess_cxr(image(disc))[0] + 1024  # >= 0, proportional to brightness
    oy, ox = np.mgrid[:CXR_SIZE, :CXR_SIZE]
    cy, cx = (oy * out).sum() / out.sum(), (ox * out).sum() / out.sum()
    centre = (CXR_SIZE - 1) / 2
    assert cy == pytest.approx(centre, abs=0.6) and cx == pytest.approx(centre, abs=0.6)
    # disc area scales with (224 / side)^2
    area = out.sum() / 2048
    assert area == pytest.approx(np.pi * (radius * CXR_SIZE / min(h, w)) ** 2, rel=0.03)


def test_horizontal_gradient_maps_to_expected_values() -> None:
    """p(col) = (col + 0.5) / 1000 on a 1000-wide square image: output column j
    (centre at source (j + 0.5) * 1000 / 224) holds 2048 * (j + 0.5) / 224 - 1024;
    symmetric filtering keeps a linear ramp exact away from the borders."""
    side = 1000
    ramp = (np.arange(side) + 0.5) / side
    out = preprocess_cxr(image(np.tile(ramp, (side, 1))))[0]
    expect = 2048 * (np.arange(CXR_SIZE) + 0.5) / CXR_SIZE - 1024
    np.testing.assert_allclose(out[:, 2:-2], np.tile(expect[2:-2], (CXR_SIZE, 1)), atol=0.05)
    assert (np.abs(out - expect) < 10).all()  # border columns within a fraction of a step
    assert (out == out[:1]).all()  # rows identical


def test_wide_gradient_is_cropped_to_its_centre() -> None:
    """800 x 1200 image with p = col / 1199: the crop keeps columns 200..999."""
    h, w = 800, 1200
    px = np.tile(np.arange(w) / (w - 1), (h, 1))
    out = preprocess_cxr(image(px))[0]
    src_centre = 200 + (np.arange(CXR_SIZE) + 0.5) * h / CXR_SIZE - 0.5
    expect = 2048 * src_centre / (w - 1) - 1024
    np.testing.assert_allclose(out[112, 2:-2], expect[2:-2], atol=0.05)


def test_downsampling_is_antialiased() -> None:
    """A 1-pixel checkerboard (above the output Nyquist) averages to mid-grey;
    point sampling would keep +-1024."""
    yy, xx = np.mgrid[:1024, :1024]
    out = preprocess_cxr(image((yy + xx) % 2))
    assert abs(float(out.mean())) < 1.0 and float(np.abs(out).max()) < 60.0


def test_colour_array_is_made_grey_and_bad_shapes_raise() -> None:
    grey = np.random.default_rng(0).random((300, 300)).astype(np.float32)
    rgb = np.repeat(grey[:, :, None], 3, axis=2)
    np.testing.assert_allclose(preprocess_cxr(image(rgb)), preprocess_cxr(image(grey)), atol=1e-2)
    with pytest.raises(PreprocessError):
        preprocess_cxr(image(np.zeros((4, 5, 6))))
    with pytest.raises(PreprocessError):
        preprocess_cxr(image(np.zeros((0, 10))))
    nan = grey.copy()
    nan[10:20, 10:20] = np.nan
    assert np.isfinite(preprocess_cxr(image(nan))).all()


def test_out_of_memory_becomes_a_typed_error() -> None:
    """An image too large for memory (a 200,000 x 200,000 view of one value: no memory
    until preprocessing copies it) gives PreprocessError naming the size, not MemoryError
    (which stopped `cromotex predict --cxr` without writing its line; issue 15)."""
    pixels = np.broadcast_to(np.float32(0.5), (200_000, 200_000))
    with pytest.raises(PreprocessError, match=r"Not enough memory.*\(200000, 200000\)") as info:
        preprocess_cxr(CxrImage(pixels=pixels))
    assert isinstance(info.value.__cause__, MemoryError)
