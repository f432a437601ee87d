"""Foreground colour estimation: it must undo background bleeding, and every code path must agree."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from mattecli import foreground as fg_module
from mattecli.foreground import estimate_foreground, estimate_foreground_torch

RED = np.array([0.9, 0.15, 0.1], np.float32)
GREEN = np.array([0.1, 0.8, 0.2], np.float32)
BLUE = np.array([0.1, 0.2, 0.9], np.float32)


def _soft_edge_scene(height: int = 48, width: int = 96, ramp: int = 12):
    """A red subject on the left fading out over ``ramp`` columns, in front of a background that
    shades from green (top) to blue (bottom). Returns image, alpha, true foreground, background."""
    foreground = np.broadcast_to(RED, (height, width, 3)).astype(np.float32)
    shade = np.linspace(0, 1, height, dtype=np.float32)[:, None, None]
    background = np.broadcast_to((1 - shade) * GREEN + shade * BLUE, (height, width, 3))
    columns = np.arange(width, dtype=np.float32)
    alpha = np.clip((width / 2 + ramp / 2 - columns) / ramp, 0, 1)[None, :].repeat(height, 0)
    image = alpha[..., None] * foreground + (1 - alpha[..., None]) * background
    return image.astype(np.float32), alpha, foreground, background.astype(np.float32)


def _reference(image: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Blur fusion written out plainly from the paper's formula (Forte & Pitié 2021), for comparison
    with the optimised in-place, strip-wise implementation."""

    def one_pass(foreground, background, weights, window):
        def blur(x):
            return cv2.blur(x, (window, window), borderType=cv2.BORDER_CONSTANT)

        a = weights[..., None]
        # Our one deliberate change: eps * F in the numerator (the previous estimate, not black,
        # where a window holds no foreground at all).
        mean_fg = (blur(foreground * a) + 1e-5 * foreground) / (blur(weights)[..., None] + 1e-5)
        mean_bg = blur(background * (1 - a)) / (blur(1 - weights)[..., None] + 1e-5)
        estimate = mean_fg + a * (image - a * mean_fg - (1 - a) * mean_bg)
        return np.clip(estimate, 0, 1), mean_bg

    first, mean_bg = one_pass(image, image, alpha, 90)
    return one_pass(first, mean_bg, alpha, 6)[0]


def test_soft_edge_colour_is_recovered() -> None:
    image, alpha, truth, _ = _soft_edge_scene()
    estimate = estimate_foreground(image, alpha)
    assert estimate.shape == image.shape and estimate.dtype == np.float32
    soft = (alpha > 0) & (alpha < 1)
    raw_error = np.abs(image - truth)[soft].mean()
    estimate_error = np.abs(estimate - truth)[soft].mean()
    assert raw_error > 0.25  # the scene really is contaminated
    assert estimate_error < raw_error / 3, (raw_error, estimate_error)
    # Contamination is worst where alpha is low; there the gain must be largest.
    faint = (alpha > 0) & (alpha < 0.3)
    assert np.abs(estimate - truth)[faint].mean() < np.abs(image - truth)[faint].mean() / 4


def test_opaque_pixels_are_unchanged_and_transparent_ones_take_nearby_foreground() -> None:
    image, alpha, truth, background = _soft_edge_scene()
    estimate = estimate_foreground(image, alpha)
    opaque = alpha == 1
    np.testing.assert_array_equal(estimate[opaque], image[opaque])
    # Fully transparent pixels next to the subject get its (blurred) colour, not black and not the
    # background: resampling the cut-out later then pulls no dark or green fringe into the edge.
    near = (alpha == 0) & (np.arange(alpha.shape[1]) < 70)[None, :]
    assert near.any()
    to_foreground = np.abs(estimate[near] - truth[near]).mean()
    to_background = np.abs(estimate[near] - background[near]).mean()
    assert to_foreground < to_background / 2
    assert estimate[near].max(axis=-1).min() > 0.3


def test_matches_the_plain_formula_on_random_data() -> None:
    rng = np.random.default_rng(0)
    image = rng.random((70, 110, 3), dtype=np.float32)
    alpha = rng.random((70, 110), dtype=np.float32)
    alpha[:10] = 1.0
    alpha[-10:] = 0.0
    np.testing.assert_allclose(estimate_foreground(image, alpha), _reference(image, alpha), atol=2e-5)


def test_strips_give_the_same_result_as_one_piece() -> None:
    rng = np.random.default_rng(1)
    image = torch.from_numpy(rng.random((2, 3, 150, 40), dtype=np.float32))
    alpha = torch.from_numpy(rng.random((2, 1, 150, 40), dtype=np.float32))
    whole = estimate_foreground_torch(image, alpha, strip_pixels=10**9)
    for strip_pixels in (40, 40 * 7, 40 * 64):  # 1 row, a few rows, strips with partial overlap
        strips = estimate_foreground_torch(image, alpha, strip_pixels=strip_pixels)
        torch.testing.assert_close(strips, whole, atol=2e-5, rtol=0)


def test_torch_entry_point_handles_batches_and_matches_numpy() -> None:
    rng = np.random.default_rng(2)
    images = rng.random((2, 20, 30, 3), dtype=np.float32)
    alphas = rng.random((2, 20, 30), dtype=np.float32)
    batch = estimate_foreground_torch(
        torch.from_numpy(images).permute(0, 3, 1, 2), torch.from_numpy(alphas)[:, None].half()
    )
    assert batch.shape == (2, 3, 20, 30) and batch.dtype == torch.float32
    for index in range(2):
        single = estimate_foreground(images[index], alphas[index][..., None].astype(np.float16))
        np.testing.assert_allclose(batch[index].permute(1, 2, 0).numpy(), single, atol=1e-6)


def test_uint8_inputs_and_shape_errors() -> None:
    image, alpha, _, _ = _soft_edge_scene(height=16, width=32, ramp=8)
    as_bytes = estimate_foreground(
        np.rint(image * 255).astype(np.uint8), np.rint(alpha * 255).astype(np.uint8)
    )
    assert np.abs(as_bytes - estimate_foreground(image, alpha)).max() < 0.02
    with pytest.raises(ValueError, match="alpha shape"):
        estimate_foreground(image, alpha[:-1])
    with pytest.raises(ValueError, match="H x W x 3"):
        estimate_foreground(image[..., :2], alpha)
    with pytest.raises(ValueError, match="N x 1 x H x W"):
        estimate_foreground_torch(torch.zeros(1, 3, 8, 8), torch.zeros(1, 1, 8, 9))


def test_device_blur_matches_cpu_blur() -> None:
    """The cumulative-sum blur used on GPUs must equal OpenCV's box filter used on CPUs."""
    planes = torch.from_numpy(np.random.default_rng(3).random((2, 8, 37, 53), dtype=np.float32))
    for window in (1, 6, 7, 90):
        expected = torch.empty_like(planes)
        fg_module._box_blur_opencv(planes, window, expected)
        torch.testing.assert_close(fg_module._box_blur_cumsum(planes, window), expected, atol=1e-6, rtol=0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_gpu_result_matches_cpu() -> None:
    image, alpha, _, _ = _soft_edge_scene()
    on_cpu = estimate_foreground(image, alpha)
    on_gpu = estimate_foreground(image, alpha, device="cuda")
    np.testing.assert_allclose(on_gpu, on_cpu, atol=1e-5)
    tensor = estimate_foreground_torch(
        torch.from_numpy(image).permute(2, 0, 1)[None].cuda(), torch.from_numpy(alpha)[None, None].cuda()
    )
    assert tensor.device.type == "cuda"


def test_uint8_image_and_output_in_strips_match_the_float_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """Large photos stay uint8: each strip is converted on the way in and rounded on the way out, and that
    gives exactly what converting the whole image, estimating in float and rounding afterwards gives."""
    from mattecli.image.conversion import to_uint8

    image, alpha, _, _ = _soft_edge_scene(height=120, width=64, ramp=20)
    pixels = to_uint8(image)
    unit = pixels.astype(np.float32) * np.float32(1 / 255)  # how read_image converts uint8
    expected = to_uint8(estimate_foreground(unit, alpha))
    monkeypatch.setattr(fg_module, "STRIP_PIXELS", 64 * 7)  # 7-row strips: many, each with overlap
    out = np.zeros_like(pixels)
    returned = estimate_foreground(pixels, alpha, out=out)
    assert returned is out and out.dtype == np.uint8
    np.testing.assert_array_equal(out, expected)
    # Float output from uint8 input: the same numbers as the float input gives.
    np.testing.assert_array_equal(estimate_foreground(pixels, alpha), estimate_foreground(unit, alpha))
    with pytest.raises(ValueError, match="out"):
        estimate_foreground(pixels, alpha, out=np.zeros((120, 64, 3), np.int16))
    with pytest.raises(ValueError, match="out"):
        estimate_foreground(pixels, alpha, out=np.zeros((12, 64, 3), np.uint8))
