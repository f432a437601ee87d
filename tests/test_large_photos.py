"""Large photos (issue 21): the global pass decides what is the person, full-resolution work stays in the
band where it is unsure, and big photos go through the pipeline in bounded memory."""

from __future__ import annotations

import tracemalloc

import cv2
import numpy as np
import pytest
from conftest import synthetic_scene, trained_tiny_net

from mattecli.errors import MatteError
from mattecli.foreground import estimate_foreground, estimate_foreground_where_needed
from mattecli.inference import Matter
from mattecli.refinement import band_margin, band_weights, upsampled_window
from mattecli.tiling import resize, working_size

MAX_SIZE, TILE = 64, 96


def speckled_scene(height: int, width: int) -> np.ndarray:
    """The red figure of :func:`synthetic_scene` on a background sprinkled with 4 px specks of the figure's
    red every 16 px. Seen whole (at the working size) the specks average away into background the global
    pass is sure of; seen through one full-resolution tile they look like bits of the figure. (The tiny
    test network tells figure from background by colour, so this is the mirror image of a torso whose
    texture looks like background at tile scale: the same tiles-overrule-the-global-pass failure.)"""
    image, alpha = synthetic_scene(height, width)
    ys, xs = np.mgrid[0:height, 0:width]
    specks = (ys % 16 < 4) & (xs % 16 < 4) & (alpha < 0.01)
    image[specks] = [0.9, 0.3, 0.2]
    return (image * 255 + 0.5).astype(np.uint8)


def global_matte(matter: Matter, pixels: np.ndarray) -> np.ndarray:
    """The global pass upsampled to full size: what every pixel outside the band must keep."""
    height, width = pixels.shape[:2]
    return resize(matter._global_pass_image(pixels, fast_shrink=True), height, width)


@pytest.mark.parametrize("refinement", ["band", "guided", "band+guided"])
def test_refinement_keeps_confident_pixels_and_refines_the_band(refinement: str) -> None:
    pixels = speckled_scene(360, 480)
    net = trained_tiny_net()
    matter = Matter(net, device="cpu", max_size=MAX_SIZE, tile_size=TILE, refinement=refinement)
    coarse = global_matte(matter, pixels)
    small_height = working_size(360, 480, MAX_SIZE)[0]
    weights = band_weights(coarse, band_margin(360 / small_height))
    confident, band = weights == 0, weights > 0
    assert confident.mean() > 0.05 and band.mean() > 0.05, "the scene must have both"

    alpha = matter.predict_alpha(pixels)
    np.testing.assert_array_equal(alpha[confident], coarse[confident])
    assert np.abs(alpha - coarse)[band].max() > 0.05, "the band must be refined"

    # The old tiled refinement turned specks the global pass was sure were background into foreground.
    old = Matter(net, device="cpu", max_size=MAX_SIZE, tile_size=TILE, refinement="tiles").predict_alpha(
        pixels
    )
    assert np.abs(old - coarse)[confident].max() > 0.1


def test_an_unknown_refinement_is_refused_with_the_choices() -> None:
    with pytest.raises(MatteError, match=r"refinement must be one of tiles, band, guided, band\+guided"):
        Matter(trained_tiny_net(), device="cpu", refinement="sharp")


def test_upsampled_window_matches_a_whole_resize() -> None:
    rng = np.random.default_rng(0)
    coefficients = rng.random((24, 32, 4), dtype=np.float32)
    whole = cv2.resize(coefficients, (250, 190), interpolation=cv2.INTER_LINEAR)
    window = upsampled_window(coefficients, (40, 120, 100, 250), 190, 250)
    assert window.shape == (80, 150, 4)
    # The same bilinear samples up to OpenCV's 1/32-pixel interpolation grid.
    assert np.abs(window - whole[40:120, 100:250]).max() < 0.02


def test_decontamination_where_needed_equals_the_whole_image_in_uint8() -> None:
    image, alpha = synthetic_scene(700, 1100, seed=3)
    pixels = (image * 255 + 0.5).astype(np.uint8)
    alpha[alpha > 0.999] = 0.9995  # a network's "opaque": rounds to 255, not exactly 1
    whole = estimate_foreground(pixels, alpha, out=np.empty(pixels.shape, np.uint8))
    tiled = estimate_foreground_where_needed(pixels, alpha, out=np.empty(pixels.shape, np.uint8), tile=128)
    visible = alpha >= 0.5 / 255
    assert np.abs(whole.astype(int) - tiled)[visible].max() <= 1
    assert (whole != tiled).any(axis=2)[visible].mean() < 1e-3
    # Exactly alpha 0 or 1: nothing to round, equal bit for bit.
    exact = np.where(alpha > 0.999, 1.0, alpha).astype(np.float32)
    whole = estimate_foreground(pixels, exact, out=np.empty(pixels.shape, np.uint8))
    tiled = estimate_foreground_where_needed(pixels, exact, out=np.empty(pixels.shape, np.uint8), tile=128)
    np.testing.assert_array_equal(whole, tiled)


def test_a_12_megapixel_photo_goes_through_in_bounded_memory() -> None:
    height, width = 3000, 4000
    image, _ = synthetic_scene(300, 400, seed=7)
    pixels = cv2.resize((image * 255 + 0.5).astype(np.uint8), (width, height), interpolation=cv2.INTER_CUBIC)
    matter = Matter(trained_tiny_net(), device="cpu", max_size=MAX_SIZE)
    tracemalloc.start()
    try:
        result = matter.matte(pixels)
        rgba = result.rgba()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert rgba.shape == (height, width, 4) and rgba.dtype == np.uint8
    print(f"peak {peak / 1e6:.0f} MB, {peak / (height * width):.1f} B/px")
    assert rgba[:, :, 3].min() < 30 and rgba[:, :, 3].max() > 150, "a figure on a background"
    # numpy's allocations (the matte 4 B/px, foreground 3, RGBA 4, band masks 1 each): a float32 RGB copy
    # of the photo alone would be 12 B/px.
    assert peak / (height * width) < 14
