"""The Matter API: resolution policy, tiled refinement, batched frames."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from conftest import make_tiny_net, synthetic_scene, trained_tiny_net

from mattecli.errors import MatteError
from mattecli.inference import Matter, tile_windows, working_size


def _scene(height: int, width: int, seed: int = 0) -> np.ndarray:
    return synthetic_scene(height, width, seed)[0]


@pytest.mark.parametrize(
    ("size", "max_size", "expected"),
    [
        ((1000, 1500), 512, (352, 512)),
        ((1500, 1000), 512, (512, 352)),
        ((50, 70), 512, (64, 96)),
        ((10, 10), 512, (32, 32)),
        ((4000, 6000), 800, (544, 800)),
    ],
)
def test_working_size_keeps_aspect_on_the_32_grid(size, max_size, expected) -> None:
    assert working_size(*size, max_size) == expected


def test_matte_returns_original_size_and_valid_ranges() -> None:
    matter = Matter(make_tiny_net(spread=20.0), device="cpu", max_size=64)
    image = _scene(75, 101)
    result = matter.matte(image)
    assert result.alpha.shape == (75, 101) and result.alpha.dtype == np.float32
    assert result.foreground.shape == (75, 101, 3)
    assert 0.0 <= result.alpha.min() and result.alpha.max() <= 1.0
    rgba = result.rgba()
    assert rgba.shape == (75, 101, 4) and rgba.dtype == np.uint8
    np.testing.assert_array_equal(rgba[..., 3], np.clip(result.alpha * 255 + 0.5, 0, 255).astype(np.uint8))
    # uint8 input gives the same matte as the equivalent float input.
    as_uint8 = (image * 255 + 0.5).astype(np.uint8)
    np.testing.assert_allclose(
        matter.matte(as_uint8).alpha, matter.matte(as_uint8.astype(np.float32) / 255).alpha, atol=1e-6
    )


def test_tile_windows_cover_the_image_with_overlap() -> None:
    windows = list(tile_windows(300, 700, 256, 64))
    covered = np.zeros((300, 700), int)
    for y0, y1, x0, x1 in windows:
        assert y1 - y0 <= 256 and x1 - x0 <= 256
        covered[y0:y1, x0:x1] += 1
    assert covered.min() >= 1
    xs = sorted({(x0, x1) for _, _, x0, x1 in windows})
    assert all(a[1] - b[0] >= 64 for a, b in itertools.pairwise(xs))
    assert list(tile_windows(100, 100, 256, 64)) == [(0, 100, 0, 100)]


def test_tiled_refinement_matches_untiled_pass() -> None:
    net = trained_tiny_net()
    image = _scene(300, 420, seed=1)
    untiled = Matter(net, device="cpu", max_size=64, tile_size=448).refine_tiled(image)
    tiled = Matter(net, device="cpu", max_size=64, tile_size=128).refine_tiled(image)
    assert untiled.std() > 0.05, "the test network must produce a structured matte"
    diff = np.abs(untiled - tiled)
    assert diff.mean() < 0.01 * untiled.std() + 2e-3
    assert np.quantile(diff, 0.99) < 0.05


def test_large_images_are_refined_and_stay_close_to_the_global_pass() -> None:
    net = trained_tiny_net()
    image = _scene(200, 260, seed=2)
    plain = Matter(net, device="cpu", max_size=64, refine=False).matte(image, decontaminate=False).alpha
    refined = Matter(net, device="cpu", max_size=64, tile_size=96).matte(image, decontaminate=False).alpha
    assert refined.shape == plain.shape == (200, 260)
    assert not np.allclose(refined, plain), "260 px > 2 x 64 px: refinement must run"
    # Outside the uncertain band the global pass decides.
    certain = (plain < 0.02) | (plain > 0.98)
    if certain.any():
        assert np.abs(refined - plain)[certain].max() < 0.5


def test_matte_frames_matches_single_images() -> None:
    matter = Matter(make_tiny_net(spread=20.0), device="cpu", max_size=64)
    frames = np.stack([(_scene(48, 66, seed=s) * 255).astype(np.uint8) for s in range(3)])
    alphas, foregrounds = matter.matte_frames(frames)
    assert alphas.shape == (3, 48, 66) and foregrounds.shape == (3, 48, 66, 3)
    for frame, alpha in zip(frames, alphas, strict=True):
        np.testing.assert_allclose(alpha, matter.matte(frame, decontaminate=False).alpha, atol=1e-5)
    alphas_only, none = matter.matte_frames(frames, decontaminate=False)
    assert none is None and np.allclose(alphas_only, alphas)


def test_bad_sizes_and_devices_are_refused() -> None:
    net = make_tiny_net()
    with pytest.raises(MatteError, match="multiple of 32"):
        Matter(net, device="cpu", max_size=100)
    if not torch.cuda.is_available():
        with pytest.raises(MatteError, match="CUDA is not available"):
            Matter(net, device="cuda")
    with pytest.raises(MatteError, match="unknown device"):
        Matter(net, device="tpu9")


def test_tta_averages_the_plain_and_mirrored_passes() -> None:
    net = make_tiny_net(spread=20.0)
    image = _scene(64, 96, seed=3)
    mirrored = np.ascontiguousarray(image[:, ::-1])
    plain = Matter(net, device="cpu", max_size=96)
    tta = Matter(net, device="cpu", max_size=96, tta=True)
    a_plain, a_mirror = plain.predict_alpha(image), plain.predict_alpha(mirrored)[:, ::-1]
    assert np.abs(a_plain - a_mirror).mean() > 1e-3, "the random network must not be mirror-symmetric"
    np.testing.assert_allclose(tta.predict_alpha(image), (a_plain + a_mirror) / 2, atol=1e-5)
    # So the TTA matte of the mirrored photo is the mirror of the TTA matte.
    np.testing.assert_allclose(tta.predict_alpha(mirrored)[:, ::-1], tta.predict_alpha(image), atol=1e-5)


def test_tta_applies_to_full_resolution_refinement_and_video_frames() -> None:
    net = trained_tiny_net()
    image = _scene(192, 256, seed=4)
    mirrored = np.ascontiguousarray(image[:, ::-1])
    # A tile larger than the image and sides on the 32 grid: one pass without padding, so the mirrored pass
    # sees exactly the mirrored pixels.
    plain = Matter(net, device="cpu", max_size=64, tile_size=288)
    tta = Matter(net, device="cpu", max_size=64, tile_size=288, tta=True)
    a_plain, a_mirror = plain.refine_tiled(image), plain.refine_tiled(mirrored)[:, ::-1]
    assert np.abs(a_plain - a_mirror).mean() > 1e-3
    np.testing.assert_allclose(tta.refine_tiled(image), (a_plain + a_mirror) / 2, atol=1e-5)

    frames = (np.stack([image[:48, :64], mirrored[:48, :64]]) * 255 + 0.5).astype(np.uint8)
    alphas, _ = tta.matte_frames(frames, decontaminate=False)
    for frame, alpha in zip(frames, alphas, strict=True):
        rgb = frame.astype(np.float32) / 255
        expected = (
            plain.predict_alpha(rgb) + plain.predict_alpha(np.ascontiguousarray(rgb[:, ::-1]))[:, ::-1]
        ) / 2
        np.testing.assert_allclose(alpha, expected, atol=1e-5)
