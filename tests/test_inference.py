"""The Matter API: resolution policy, tiled refinement, batched frames."""

from __future__ import annotations

import itertools

import cv2
import numpy as np
import pytest
import torch
from conftest import make_tiny_net, synthetic_scene, trained_tiny_net

from mattecli.errors import MatteError
from mattecli.image.conversion import unit_float
from mattecli.inference import Matter
from mattecli.tiling import tile_windows, working_size


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


def test_float_input_outside_zero_one_is_refused_in_one_line() -> None:
    """8-bit codes passed as float (0..255) used to be clipped to a white picture and matted wrongly."""
    matter = Matter(make_tiny_net(spread=20.0), device="cpu", max_size=64)
    codes = (_scene(40, 56) * 255).astype(np.float32)
    with pytest.raises(MatteError) as caught:
        matter.matte(codes)
    message = str(caught.value)
    assert message.startswith("a float image must hold values in [0, 1], got ") and "divide" in message
    assert f"to {float(codes.max()):g}" in message and "\n" not in message
    with pytest.raises(MatteError, match=r"in \[0, 1\], got -1 to"):
        matter.predict_alpha(np.full((32, 32, 3), -1.0))
    rgba = np.concatenate([_scene(40, 56), np.full((40, 56, 1), 255.0, np.float32)], axis=2)
    with pytest.raises(MatteError, match="to 255 "):
        matter.matte(rgba)  # the alpha plane too
    # Resampling overshoot just outside [0, 1] is clipped, as before: the same matte as the clipped image.
    image = _scene(40, 56)
    overshoot = image.copy()
    overshoot[0, :4] = [[1.02, -0.01, 0.5]] * 4
    clipped = np.clip(overshoot, 0, 1)
    np.testing.assert_array_equal(matter.matte(overshoot).alpha, matter.matte(clipped).alpha)


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


# -- large images: strips and tiles give the whole-image result ------------------------------------


def _whole_image_refinement(matter: Matter, rgb: np.ndarray, codes: np.ndarray | None = None) -> np.ndarray:
    """predict_alpha with ``refinement="tiles"`` as it was computed before strips: full-size coarse, band,
    tile sums and weights. ``codes``: the uint8 picture, which large photos shrink as codes."""
    from mattecli.tiling import resize as _resize
    from mattecli.tiling import tile_weight as _tile_weight
    from mattecli.tiling import uncertain_band as _uncertain_band
    from mattecli.tiling import working_size

    height, width = rgb.shape[:2]
    small_size = working_size(height, width, matter.max_size)
    if codes is not None:
        shrunk = cv2.resize(codes, small_size[::-1], interpolation=cv2.INTER_AREA)
        small = torch.from_numpy(unit_float(shrunk)[None])
    else:
        small = torch.from_numpy(_resize(rgb, *small_size)[None])
    coarse_small = matter._forward(small.permute(0, 3, 1, 2)).numpy()[0, 0]
    coarse = _resize(coarse_small, height, width)
    band = _resize(_uncertain_band(coarse_small), height, width)
    total = np.zeros((height, width), np.float32)
    weight = np.zeros((height, width), np.float32)
    for y0, y1, x0, x1 in tile_windows(height, width, matter.tile_size, matter.tile_overlap):
        if not (band[y0:y1, x0:x1] > 0).any():
            continue
        tile = torch.from_numpy(np.ascontiguousarray(rgb[y0:y1, x0:x1])).permute(2, 0, 1)
        alpha = matter._forward_padded(tile[None])[0, 0].numpy()
        ramp = _tile_weight(y0, y1, x0, x1, height, width, matter.tile_overlap)
        total[y0:y1, x0:x1] += alpha * ramp
        weight[y0:y1, x0:x1] += ramp
    refined = np.divide(total, weight, out=np.zeros_like(total), where=weight > 0)
    refined -= coarse
    refined *= band
    refined += coarse
    return refined


def test_refinement_in_strips_equals_the_whole_image_computation() -> None:
    matter = Matter(trained_tiny_net(), device="cpu", max_size=64, tile_size=96, refinement="tiles")
    image = _scene(230, 300, seed=5)  # 4 tile rows of 96 px: several strips, with carried overlaps
    as_uint8 = (image * 255 + 0.5).astype(np.uint8)
    rgb = as_uint8.astype(np.float32) * np.float32(1 / 255)
    calls: list[tuple[int, int]] = []
    alpha = matter.predict_alpha(as_uint8, on_tile=lambda done, total: calls.append((done, total)))
    assert alpha.dtype == np.float32 and alpha.shape == (230, 300)
    np.testing.assert_array_equal(alpha, _whole_image_refinement(matter, rgb, as_uint8))
    # Float input is shrunk as floats.
    np.testing.assert_array_equal(matter.predict_alpha(rgb), _whole_image_refinement(matter, rgb))
    # One call per refined tile, counting up to the number of tiles that were run.
    count = len(calls)
    assert 1 < count <= len(list(tile_windows(230, 300, 96, matter.tile_overlap)))
    assert calls == [(done, count) for done in range(1, count + 1)]


def test_refine_tiled_skips_tiles_with_nothing_needed_and_keeps_zeros_there() -> None:
    matter = Matter(make_tiny_net(spread=20.0), device="cpu", max_size=64, tile_size=64)
    image = _scene(150, 200, seed=6)
    needed = np.zeros((150, 200), bool)
    needed[:40, :40] = True
    full = matter.refine_tiled(image)
    partial = matter.refine_tiled(image, needed)
    np.testing.assert_array_equal(partial[:40, :40], full[:40, :40])
    assert (partial[100:, 150:] == 0).all()  # tiles there were never run


def test_no_refinement_calls_no_tiles() -> None:
    matter = Matter(make_tiny_net(spread=20.0), device="cpu", max_size=64)
    calls = []
    matter.matte(_scene(60, 90), on_tile=lambda done, total: calls.append(done))
    assert calls == []


# -- MatteResult: compact storage, documented API ------------------------------------------------


def test_matte_result_keeps_uint8_pixels_and_converts_on_demand() -> None:
    matter = Matter(make_tiny_net(spread=20.0), device="cpu", max_size=64)
    pixels = (_scene(40, 56, seed=7) * 255 + 0.5).astype(np.uint8)
    result = matter.matte(pixels)
    assert result.pixels.dtype == np.uint8 and result.foreground_pixels.dtype == np.uint8
    np.testing.assert_array_equal(result.pixels, pixels)
    unit = pixels.astype(np.float32) * np.float32(1 / 255)
    assert result.image.dtype == np.float32 and result.foreground.dtype == np.float32
    np.testing.assert_array_equal(result.image, unit)
    # The stored foreground is the float estimate rounded once, exactly as the PNG writer rounds it.
    from mattecli.image.conversion import to_uint8

    float_foreground = matter.estimate_foreground(unit, result.alpha)
    np.testing.assert_array_equal(result.foreground_pixels, to_uint8(float_foreground))
    np.testing.assert_array_equal(result.rgba()[..., :3], result.foreground_pixels)
    plain = matter.matte(pixels, decontaminate=False)
    np.testing.assert_array_equal(plain.foreground_pixels, pixels)
    # Float input keeps float storage: nothing is rounded that the caller did not round.
    floats = matter.matte(unit)
    assert floats.pixels.dtype == np.float32 and floats.foreground_pixels.dtype == np.float32
    np.testing.assert_allclose(floats.foreground, float_foreground, atol=1e-6)


def test_composite_returns_uint8_by_default_and_float_on_request() -> None:
    matter = Matter(make_tiny_net(spread=20.0), device="cpu", max_size=64)
    result = matter.matte((_scene(40, 56, seed=8) * 255 + 0.5).astype(np.uint8))
    fg, alpha = result.foreground, result.alpha[..., None]
    blue = np.array([0.0, 0.0, 1.0], np.float32)
    expected = blue + alpha * (fg - blue)
    for background in (
        "blue",
        "#0000ff",
        blue,
        np.array([0, 0, 255], np.uint8),
        np.array([0, 0, 65535], np.uint16),
    ):
        out = result.composite(background)
        assert out.dtype == np.uint8 and out.shape == (40, 56, 3), background
        assert np.abs(out.astype(np.float32) - expected * 255).max() <= 0.5 + 1e-3, background
        as_float = result.composite(background, dtype=np.float32)
        assert as_float.dtype == np.float32
        np.testing.assert_allclose(as_float, expected, atol=1e-6)
    # A full-size background in any of the three encodings, scaled by its own range.
    rng = np.random.default_rng(0)
    picture = rng.integers(0, 256, (40, 56, 3), dtype=np.uint8)
    unit = picture.astype(np.float32) / 255
    expected = unit + alpha * (fg - unit)
    for background in (picture, picture.astype(np.uint16) * 257, unit):
        np.testing.assert_allclose(result.composite(background, dtype=np.float32), expected, atol=1e-6)
        assert result.composite(background).max() <= 255
    with pytest.raises(ValueError, match="background"):
        result.composite(picture[:10])
    with pytest.raises(ValueError, match="dtype"):
        result.composite("white", dtype=np.int32)


def test_composite_refuses_a_float_background_of_8_bit_codes() -> None:
    """composite(np.array([0., 128., 255.])) was clipped to (0, 1, 1): cyan instead of a blue, silently,
    where the same mistake in an input image is refused."""
    matter = Matter(make_tiny_net(spread=20.0), device="cpu", max_size=64)
    result = matter.matte((_scene(40, 56, seed=8) * 255 + 0.5).astype(np.uint8))
    for background in (np.array([0.0, 128.0, 255.0]), np.full((40, 56, 3), 255.0, np.float32)):
        with pytest.raises(
            ValueError, match=r"float background must hold values in \[0, 1\], got [0-9]+ to 255"
        ):
            result.composite(background)
    with pytest.raises(ValueError, match="got nan to nan"):
        result.composite(np.full(3, np.nan))


# -- the input's own alpha ---------------------------------------------------------------------


def test_input_alpha_multiplies_the_matte(tmp_path) -> None:
    from PIL import Image

    from mattecli.image.decoding import read_image

    matter = Matter(make_tiny_net(spread=20.0), device="cpu", max_size=64)
    rgb = (_scene(48, 64, seed=9) * 255 + 0.5).astype(np.uint8)
    rgba = np.dstack([rgb, np.full((48, 64), 255, np.uint8)])
    rgba[:, :32, 3] = 0  # left half transparent
    rgba[:, 32:40, 3] = 128
    Image.fromarray(rgba, "RGBA").save(tmp_path / "half.png")
    ignored = matter.matte(rgb).alpha
    assert ignored[:, :32].max() > 0.05, "the network alone does not see the transparency"
    expected = ignored * (rgba[..., 3].astype(np.float32) / 255)
    for source in (
        tmp_path / "half.png",
        str(tmp_path / "half.png"),
        read_image(tmp_path / "half.png"),
        rgba,
    ):
        alpha = matter.matte(source).alpha
        assert (alpha[:, :32] == 0).all()
        np.testing.assert_allclose(alpha, expected, atol=1e-6)
        np.testing.assert_array_equal(matter.matte(source, keep_input_alpha=False).alpha, ignored)
    assert (matter.matte(tmp_path / "half.png").rgba()[:, :32, 3] == 0).all()


# -- user errors -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("image", "words"),
    [
        (np.zeros((0, 0, 3), np.uint8), "empty"),
        (np.zeros((5, 0, 3), np.float32), "empty"),
        ([[[0, 0, 0]]], "list"),
        (None, "NoneType"),
        (np.zeros((4, 4), np.uint8), "shape"),
        (np.zeros((4, 4, 2), np.uint8), "shape"),
        (np.zeros((4, 4, 3), bool), "bool"),
        (np.zeros((4, 4, 3), np.int64), "int64"),
        (np.full((4, 4, 3), np.nan, np.float32), "NaN"),
    ],
)
def test_bad_images_are_one_line_matte_errors(image, words: str) -> None:
    matter = Matter(make_tiny_net(), device="cpu", max_size=64)
    with pytest.raises(MatteError, match=words) as caught:
        matter.matte(image)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"max_size": 0}, "max_size must be a positive multiple of 32, got 0"),
        ({"max_size": -32}, "max_size must be a positive multiple of 32, got -32"),
        ({"max_size": 500}, "max_size must be a positive multiple of 32, got 500"),
        ({"tile_size": 0}, "tile_size must be a positive multiple of 32, got 0"),
        ({"max_size": 512.0}, "max_size must be a positive multiple of 32, got 512.0"),
    ],
)
def test_sizes_are_checked_not_defaulted(options: dict, message: str) -> None:
    with pytest.raises(MatteError) as caught:
        Matter(make_tiny_net(), device="cpu", **options)
    assert str(caught.value) == message


@pytest.mark.parametrize("name", ["xpu", "hip", "vulkan", "xla", "mtia", "meta", "ipu", "lazy"])
def test_unusable_device_types_are_matte_errors(name: str) -> None:
    available = getattr(getattr(torch, name, None), "is_available", lambda: False)
    if name == "xpu" and available():
        pytest.skip("this machine has an XPU")
    for device in (name, torch.device(name)):
        with pytest.raises(MatteError, match=name) as caught:
            Matter(make_tiny_net(), device=device)
        assert "\n" not in str(caught.value)


def test_rgba_and_input_alpha_in_strips_match_whole_arrays(monkeypatch: pytest.MonkeyPatch) -> None:
    import mattecli.image.conversion as conversion

    matter = Matter(make_tiny_net(spread=20.0), device="cpu", max_size=64)
    rgba_in = (np.random.default_rng(10).random((37, 23, 4)) * 255).astype(np.uint8)
    rgba_in[..., :3] = (_scene(37, 23, seed=10) * 255 + 0.5).astype(np.uint8)
    whole = matter.matte(rgba_in)
    monkeypatch.setattr(conversion, "STRIP_PIXELS", 23 * 4)  # 4-row strips
    strips = matter.matte(rgba_in)
    np.testing.assert_array_equal(strips.alpha, whole.alpha)
    np.testing.assert_array_equal(
        strips.alpha, matter.matte(rgba_in[..., :3]).alpha * (rgba_in[..., 3] * np.float32(1 / 255))
    )
    expected = np.dstack(
        [whole.foreground_pixels, np.clip(whole.alpha * 255.0 + 0.5, 0, 255).astype(np.uint8)]
    )
    np.testing.assert_array_equal(strips.rgba(), expected)
    floats = Matter(make_tiny_net(spread=20.0), device="cpu", max_size=64).matte(
        rgba_in[..., :3] / np.float32(255)
    )
    np.testing.assert_array_equal(
        floats.rgba()[..., :3], np.clip(floats.foreground * 255.0 + 0.5, 0, 255).astype(np.uint8)
    )


def test_rgba_is_the_written_png_even_on_rounding_ties() -> None:
    """``rgba()`` rounds as the PNG writer does (ties to even), so the array is the file's pixels."""
    import cv2

    from mattecli.image.encoding import encode_rgba
    from mattecli.inference import MatteResult

    candidates = ((np.arange(255) + 0.5) / 255).astype(np.float32)
    scaled = candidates * np.float32(255)
    ties = candidates[(scaled % 1 == 0.5) & (np.floor(scaled) % 2 == 0)][:96].reshape(8, 12)
    foreground = np.dstack([ties, ties[::-1], ties[:, ::-1]])
    result = MatteResult(foreground, ties, foreground)
    written = cv2.imdecode(
        np.frombuffer(encode_rgba(foreground, ties, ".png"), np.uint8), cv2.IMREAD_UNCHANGED
    )
    np.testing.assert_array_equal(result.rgba(), written[..., [2, 1, 0, 3]])
