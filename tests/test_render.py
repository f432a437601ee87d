"""One way to render a result (:mod:`mattecli.render`): ``matte image``, ``matte serve``, ``MatteResult`` and
``matte video`` make the cut-out, the matte and composites by the same code and formula."""

from __future__ import annotations

import numpy as np
import pytest

from mattecli.compositing import Backdrop, blend, composite, read_background
from mattecli.image.decoding import decode_image
from mattecli.image.encoding import encode_alpha, encode_rgb, encode_rgba
from mattecli.inference import MatteResult
from mattecli.photo.outputs import OutputOptions
from mattecli.photo.pipeline import encode_result
from mattecli.render import encode, render
from mattecli.video.pixels import encoder_pixels


@pytest.fixture
def result() -> MatteResult:
    rng = np.random.default_rng(5)
    pixels = rng.integers(0, 256, (9, 13, 3), dtype=np.uint8)
    alpha = rng.random((9, 13), dtype=np.float32)
    foreground = rng.integers(0, 256, (9, 13, 3), dtype=np.uint8)
    return MatteResult(pixels, alpha, foreground)


def test_the_result_methods_are_the_render_step(result):
    np.testing.assert_array_equal(result.rgba(), render(result, "rgba"))
    for dtype in (np.uint8, np.uint16, np.float32):
        np.testing.assert_array_equal(
            result.composite("navy", dtype=dtype),
            render(result, "composite", read_background("navy"), dtype=dtype),
        )
    assert render(result, "alpha") is result.alpha
    with pytest.raises(ValueError, match="kind must be"):
        render(result, "sepia")


def test_a_colour_backdrop_gives_the_pixels_of_a_full_size_background(result):
    backdrop = read_background("#ff8000")
    full = np.ascontiguousarray(backdrop.fill(9, 13))
    np.testing.assert_array_equal(
        render(result, "composite", backdrop),
        composite(result.foreground_pixels, result.alpha, full, dtype=np.uint8),
    )


def test_matte_image_encodes_through_the_render_step(result):
    for options, suffix in (
        (OutputOptions(), ".png"),
        (OutputOptions(alpha_only=True, depth=16), ".png"),
        (OutputOptions(background="white"), ".jpg"),
    ):
        data = encode_result(result, options, suffix)
        background = read_background(options.background) if options.background else None
        assert data == encode(result, options.kind, suffix, background, depth=options.depth)
    assert encode(result, "rgba", ".png") == encode_rgba(result.foreground_pixels, result.alpha, ".png")
    assert encode(result, "alpha", ".png") == encode_alpha(result.alpha, ".png")
    white = Backdrop(colour=(1.0, 1.0, 1.0))
    assert encode(result, "composite", ".png", white) == encode_rgb(result.composite("white"), ".png")
    decoded = decode_image(encode(result, "rgba", ".png"))
    np.testing.assert_array_equal(decoded.pixels, result.rgba()[:, :, :3])


def test_video_composites_with_the_same_formula(result):
    frames = result.pixels[None]
    foreground = result.foreground[None]
    colour = np.asarray((0.2, 0.4, 0.6), np.float32)
    video = encoder_pixels("colour", frames, result.alpha[None], foreground.copy(), colour)
    np.testing.assert_array_equal(video[0], result.composite(colour))
    np.testing.assert_array_equal(
        blend(foreground[0], result.alpha, colour), composite(result.foreground, result.alpha, colour)
    )
