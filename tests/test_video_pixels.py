"""The video pipeline's in-place pixel path gives what the general compositing and media functions give.

``mattecli.video.pixels`` is the one fast path (in place, one multithreaded conversion) for frames on
their way to the encoder; these tests pin it to :func:`mattecli.compositing.composite` and
:func:`mattecli.image.conversion.to_uint8`, the definitions it must agree with.
"""

from __future__ import annotations

import numpy as np
import pytest

from mattecli.compositing import composite
from mattecli.image.conversion import to_uint8
from mattecli.video.pixels import check_mattes, encoder_pixels, unit_to_uint8


@pytest.fixture
def batch():
    rng = np.random.default_rng(3)
    frames = rng.integers(0, 256, (3, 17, 23, 3), dtype=np.uint8)
    alphas = rng.random((3, 17, 23), dtype=np.float32)
    alphas[0, 0, :2] = [0.0, 1.0]
    foreground = rng.random((3, 17, 23, 3), dtype=np.float32)
    background = rng.random((1, 17, 23, 3), dtype=np.float32)
    return frames, alphas, foreground, background


def test_unit_to_uint8_is_to_uint8(batch):
    _, alphas, foreground, _ = batch
    halves = (np.arange(256, dtype=np.float32) + 0.5) / 255  # every rounding boundary
    for values in (alphas, foreground, halves, np.float32([0.0, 1.0])):
        assert np.array_equal(unit_to_uint8(values), to_uint8(values))


def test_cut_out_pixels(batch):
    frames, alphas, foreground, _ = batch
    pixels = encoder_pixels("rgba", frames, alphas, foreground.copy(), None)
    assert pixels.dtype == np.uint8 and pixels.shape == (3, 17, 23, 4)
    assert np.array_equal(pixels[..., :3], to_uint8(foreground))
    assert np.array_equal(pixels[..., 3], to_uint8(alphas))
    plain = encoder_pixels("rgba", frames, alphas, None, None)  # no foreground estimate: the frame
    assert np.array_equal(plain[..., :3], frames)


def _composites(foreground: np.ndarray, alphas: np.ndarray, background: np.ndarray) -> np.ndarray:
    """The general definition, one frame at a time."""
    return np.stack(
        [to_uint8(composite(f, a, background[0])) for f, a in zip(foreground, alphas, strict=True)]
    )


def test_composite_pixels(batch):
    frames, alphas, foreground, background = batch
    expected = _composites(foreground, alphas, background)
    assert np.array_equal(encoder_pixels("rgb", frames, alphas, foreground.copy(), background), expected)
    expected = _composites(frames / np.float32(255), alphas, background)
    got = encoder_pixels("rgb", frames, alphas, None, background)
    assert np.abs(got.astype(np.int16) - expected).max() <= 1  # float rounding of x / 255 alone


def test_matte_pixels(batch):
    frames, alphas, _, _ = batch
    pixels = encoder_pixels("gray", frames, alphas, None, None)
    assert pixels.shape == (3, 17, 23, 1) and np.array_equal(pixels[..., 0], to_uint8(alphas))


def test_check_mattes_clips_and_squeezes(batch):
    frames, alphas, foreground, _ = batch
    alpha, fg = check_mattes(frames, (alphas[..., None] * 3 - 1).astype(np.float64), foreground + 0.5)
    assert alpha.shape == (3, 17, 23) and alpha.dtype == np.float32
    assert alpha.min() == 0.0 and alpha.max() == 1.0 and fg.max() == 1.0
    with pytest.raises(ValueError, match="alpha"):
        check_mattes(frames, alphas[:, :5], None)
    with pytest.raises(ValueError, match="foreground"):
        check_mattes(frames, alphas, foreground[..., :2])
