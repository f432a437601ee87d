"""Colours, backgrounds, compositing arithmetic, checkerboards and preview sheets."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mattecli.compositing import (
    CHECKER_DARK,
    CHECKER_LIGHT,
    checkerboard,
    composite,
    cover_resize,
    parse_color,
    preview_sheet,
    resolve_background,
    to_uint8,
    to_uint16,
)
from mattecli.errors import MatteError


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("white", (255, 255, 255)),
        ("Black", (0, 0, 0)),
        (" red ", (255, 0, 0)),
        ("green", (0, 128, 0)),
        ("gray", (128, 128, 128)),
        ("grey", (128, 128, 128)),
        ("orange", (255, 165, 0)),
        ("#00ff00", (0, 255, 0)),
        ("00FF80", (0, 255, 128)),
        ("#f0a", (255, 0, 170)),
        ("abc", (170, 187, 204)),
    ],
)
def test_parse_color(text: str, expected: tuple[int, int, int]) -> None:
    parsed = parse_color(text)
    assert all(isinstance(value, float) for value in parsed)
    np.testing.assert_allclose(np.array(parsed) * 255, expected, atol=1e-9)


@pytest.mark.parametrize("text", ["chartreuse-ish", "#12345", "#ggg", "", "rgb(1,2,3)"])
def test_unknown_colours_say_what_is_accepted(text: str) -> None:
    with pytest.raises(MatteError) as caught:
        parse_color(text)
    message = str(caught.value)
    assert "#rrggbb" in message and "white" in message


def test_transparent_is_not_a_background() -> None:
    with pytest.raises(MatteError, match="opaque"):
        parse_color("transparent")


def test_composite_on_hand_made_pixels() -> None:
    fg = np.array([[[1.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.2, 0.4, 0.6]]], np.float32)
    bg = np.array([[[0.0, 0.0, 1.0], [0.0, 0.0, 1.0], [1.0, 1.0, 1.0]]], np.float32)
    alpha = np.array([[1.0, 0.25, 0.5]], np.float32)
    expected = np.array([[[1.0, 0.0, 0.0], [0.25, 0.0, 0.75], [0.6, 0.7, 0.8]]], np.float32)
    for matte in (alpha, alpha[..., None]):
        result = composite(fg, matte, bg)
        assert result.dtype == np.float32 and result.shape == (1, 3, 3)
        np.testing.assert_allclose(result, expected, atol=1e-6)
    # A single colour broadcasts as the background.
    np.testing.assert_allclose(composite(fg, alpha, np.array([0.0, 0.0, 1.0]))[0, 1], [0.25, 0, 0.75])


def test_colour_background_fills_the_frame() -> None:
    background = resolve_background("#ff8000", (5, 7))
    assert background.shape == (5, 7, 3) and background.dtype == np.float32
    np.testing.assert_allclose(background, np.broadcast_to([1.0, 128 / 255, 0.0], (5, 7, 3)))


def test_image_background_covers_without_distortion(tmp_path: Path) -> None:
    # 40 x 20 picture: a disc of radius 8 in the middle, so stretching would make it an ellipse.
    yy, xx = np.mgrid[0:20, 0:40]
    disc = ((yy - 9.5) ** 2 + (xx - 19.5) ** 2) <= 8**2
    pixels = np.where(disc[..., None], 255, 0).astype(np.uint8).repeat(3, axis=2)
    Image.fromarray(pixels).save(tmp_path / "bg.png")
    background = resolve_background(str(tmp_path / "bg.png"), (40, 40))  # square frame, 2x scale
    assert background.shape == (40, 40, 3)
    mask = background[..., 0] > 0.5
    rows, columns = np.nonzero(mask)
    height = rows.max() - rows.min() + 1
    width = columns.max() - columns.min() + 1
    assert abs(height - width) <= 1  # still round
    assert 30 <= height <= 36  # scaled by 2 (diameter 17 -> ~34), not squeezed
    assert abs(rows.mean() - 19.5) < 1 and abs(columns.mean() - 19.5) < 1  # centred crop


def test_cover_resize_shapes() -> None:
    image = np.random.default_rng(0).random((30, 50, 3)).astype(np.float32)
    for size in [(30, 50), (10, 10), (100, 20), (31, 49), (7, 200)]:
        assert cover_resize(image, size).shape == (*size, 3)
    np.testing.assert_array_equal(cover_resize(image, (30, 40)), image[:, 5:45])  # pure crop


def test_background_errors(tmp_path: Path) -> None:
    with pytest.raises(MatteError, match="no such background image"):
        resolve_background(str(tmp_path / "missing.jpg"), (4, 4))
    with pytest.raises(MatteError, match="image file"):
        resolve_background("sparkly", (4, 4))
    (tmp_path / "bad.png").write_text("not an image")
    with pytest.raises(MatteError, match="not an image"):
        resolve_background(str(tmp_path / "bad.png"), (4, 4))


def test_one_background_reader_serves_the_api_and_the_bg_option(tmp_path: Path) -> None:
    """``Matter.composite`` / ``matte video`` (resolve_background) and ``matte image --bg``
    (prepare_background) read a background by the same rules; only the wording names the option."""
    from mattecli.photo.backgrounds import prepare_background

    picture = tmp_path / "bg.png"
    Image.fromarray(np.arange(10 * 20 * 3, dtype=np.uint8).reshape(10, 20, 3)).save(picture)
    for spec in ("#ff8000", str(picture)):
        np.testing.assert_array_equal(resolve_background(spec, (6, 6)), prepare_background(spec).fill(6, 6))
    refusals = [
        ("transparent", "a background must be opaque", "a background must be opaque"),
        (str(tmp_path), "the background is a folder", "--bg is a folder"),
        (
            str(tmp_path / "gone.png"),
            "gone.png: no such background image",
            r"gone.png: no such file \(--bg\)",
        ),
        ("sparkly", "sparkly: not a background", "sparkly: --bg is not a colour or an image file"),
    ]
    for spec, api_message, option_message in refusals:
        with pytest.raises(MatteError, match=api_message):
            resolve_background(spec, (4, 4))
        with pytest.raises(MatteError, match=option_message):
            prepare_background(spec)


def test_checkerboard_pattern() -> None:
    board = checkerboard(5, 7, square=2)
    assert board.shape == (5, 7, 3) and board.dtype == np.float32
    light, dark = CHECKER_LIGHT, CHECKER_DARK
    expected_row0 = [light, light, dark, dark, light, light, dark]
    expected_row2 = [dark, dark, light, light, dark, dark, light]
    np.testing.assert_allclose(board[0, :, 0], expected_row0)
    np.testing.assert_allclose(board[1, :, 1], expected_row0)
    np.testing.assert_allclose(board[2, :, 2], expected_row2)
    assert light > dark
    np.testing.assert_array_equal(board[..., 0], board[..., 2])  # grey


def test_preview_sheet_layout() -> None:
    rng = np.random.default_rng(1)
    image = rng.random((20, 30, 3)).astype(np.float32)
    fg = rng.random((20, 30, 3)).astype(np.float32)
    alpha = np.zeros((20, 30), np.float32)
    alpha[:, :15] = 1.0
    sheet = preview_sheet(image, alpha, fg)
    assert sheet.shape == (20, 90, 3) and sheet.dtype == np.uint8
    np.testing.assert_array_equal(sheet[:, :30], to_uint8(image))
    np.testing.assert_array_equal(sheet[:, 30:45], 255)  # matte: opaque half white
    np.testing.assert_array_equal(sheet[:, 45:60], 0)  # transparent half black
    np.testing.assert_array_equal(sheet[:, 60:75], to_uint8(fg[:, :15]))  # cut-out where opaque
    np.testing.assert_array_equal(sheet[:, 75:90], to_uint8(checkerboard(20, 30)[:, 15:]))


def test_wide_preview_is_scaled_down() -> None:
    image = np.full((100, 1500, 3), 0.5, np.float32)
    sheet = preview_sheet(image, np.ones((100, 1500, 1), np.float32), image)
    assert sheet.shape == (67, 3000, 3)


def test_integer_conversions_round_and_clip() -> None:
    values = np.array([-0.5, 0.0, 0.6 / 255, 0.4 / 255, 0.5, 1.0, 1.7], np.float32)
    np.testing.assert_array_equal(to_uint8(values), [0, 0, 1, 0, 128, 255, 255])
    assert to_uint8(values).dtype == np.uint8
    np.testing.assert_array_equal(to_uint16(values[[0, 1, 4, 5, 6]]), [0, 0, 32768, 65535, 65535])
    assert to_uint16(values).dtype == np.uint16
    np.testing.assert_array_equal(to_uint16(np.array([0, 1, 255], np.uint8)), [0, 257, 65535])
    np.testing.assert_array_equal(to_uint8(np.array([0, 257, 65535], np.uint16)), [0, 1, 255])


def test_integer_inputs_are_scaled_not_taken_as_unit_floats() -> None:
    rng = np.random.default_rng(2)
    fg8 = rng.integers(0, 256, (9, 11, 3), dtype=np.uint8)
    bg8 = rng.integers(0, 256, (9, 11, 3), dtype=np.uint8)
    alpha = rng.random((9, 11)).astype(np.float32)
    fg, bg = fg8.astype(np.float32) / 255, bg8.astype(np.float32) / 255
    expected = bg + alpha[..., None] * (fg - bg)
    for fg_in, bg_in in [(fg8, bg8), (fg8.astype(np.uint16) * 257, bg8.astype(np.uint16) * 257), (fg, bg8)]:
        result = composite(fg_in, alpha, bg_in)
        assert result.dtype == np.float32 and result.max() <= 1.0
        np.testing.assert_allclose(result, expected, atol=1e-6)
    np.testing.assert_allclose(composite(fg, to_uint8(alpha), bg), expected, atol=0.5 / 255 + 1e-6)
    np.testing.assert_allclose(
        composite(fg, alpha, np.array([0, 0, 255], np.uint8))[..., 2],
        fg[..., 2] * alpha + 1 - alpha,
        atol=1e-6,
    )
    with pytest.raises(ValueError, match="int32"):
        composite(fg, alpha, bg8.astype(np.int32))


def test_uint8_composite_in_strips_is_the_rounded_float_composite(monkeypatch: pytest.MonkeyPatch) -> None:
    from mattecli import compositing

    rng = np.random.default_rng(3)
    fg = rng.random((40, 13, 3)).astype(np.float32)
    bg = rng.random((40, 13, 3)).astype(np.float32)
    alpha = rng.random((40, 13)).astype(np.float32)
    whole = to_uint8(composite(fg, alpha, bg))
    monkeypatch.setattr(compositing, "STRIP_PIXELS", 13 * 3)  # 3-row strips
    for background in (bg, np.array([0.2, 0.5, 0.9], np.float32)):
        strips = composite(fg, alpha, background, dtype=np.uint8)
        assert strips.dtype == np.uint8
        np.testing.assert_array_equal(strips, to_uint8(composite(fg, alpha, background)))
    np.testing.assert_array_equal(composite(fg, alpha, bg, dtype=np.uint8), whole)
    np.testing.assert_array_equal(
        composite(fg, alpha, bg, dtype=np.uint16), to_uint16(composite(fg, alpha, bg))
    )
    with pytest.raises(ValueError, match="dtype"):
        composite(fg, alpha, bg, dtype=np.int8)


def test_preview_sheet_takes_uint8_like_float(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(4)
    image = rng.integers(0, 256, (30, 1200, 3), dtype=np.uint8)  # wide: the sheet is scaled down
    fg = rng.integers(0, 256, (30, 1200, 3), dtype=np.uint8)
    alpha = rng.random((30, 1200)).astype(np.float32)
    unit = lambda x: x.astype(np.float32) * np.float32(1 / 255)  # noqa: E731
    np.testing.assert_array_equal(
        preview_sheet(image, alpha, fg), preview_sheet(unit(image), alpha, unit(fg))
    )
    small = (slice(None), slice(0, 200))
    np.testing.assert_array_equal(
        preview_sheet(image[small], alpha[small], fg[small]),
        preview_sheet(unit(image[small]), alpha[small], unit(fg[small])),
    )
