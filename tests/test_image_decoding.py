"""Decoding every supported image kind (mattecli.image.decoding): formats, bit depths, EXIF orientation,
one-line errors for broken files, and the stored codes of big images."""

from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import jpeg_blocks, pixel_pattern
from PIL import Image, ImageOps

from mattecli.errors import MatteError
from mattecli.image import decoding
from mattecli.image.conversion import unit_float
from mattecli.image.decoding import read_image


def _as_unit(values: np.ndarray, scale: float = 255.0) -> np.ndarray:
    return values.astype(np.float32) / scale


# ---------------------------------------------------------------------------------------------
# Reading: formats


@pytest.mark.parametrize(
    ("name", "save_kwargs"),
    [("a.png", {}), ("a.bmp", {}), ("a.tif", {}), ("a.webp", {"lossless": True}), ("A.PNG", {})],
)
def test_lossless_rgb_round_trip(tmp_path: Path, name: str, save_kwargs: dict) -> None:
    pixels = pixel_pattern()
    Image.fromarray(pixels).save(tmp_path / name, **save_kwargs)
    loaded = read_image(tmp_path / name)
    assert loaded.rgb.dtype == np.float32
    assert loaded.rgb.shape == (6, 10, 3)
    np.testing.assert_allclose(loaded.rgb, _as_unit(pixels), atol=1e-6)
    assert loaded.alpha is None
    assert loaded.bit_depth == 8
    assert loaded.path == tmp_path / name


def test_jpeg_decodes_to_the_stored_colours(tmp_path: Path) -> None:
    pixels = jpeg_blocks()
    Image.fromarray(pixels).save(tmp_path / "a.jpg", quality=95, subsampling=0)
    loaded = read_image(tmp_path / "a.jpg")
    assert loaded.rgb.shape == (32, 48, 3)
    assert np.abs(loaded.rgb * 255 - pixels).max() < 3.0  # lossy, but no shift or channel swap
    np.testing.assert_allclose(loaded.rgb, _as_unit(np.asarray(Image.open(tmp_path / "a.jpg"))))


@pytest.mark.parametrize(
    ("name", "save_kwargs"), [("a.png", {}), ("a.webp", {"lossless": True, "exact": True})]
)
def test_rgba_keeps_alpha(tmp_path: Path, name: str, save_kwargs: dict) -> None:
    pixels = pixel_pattern(channels=4)
    pixels[..., 3] = np.linspace(0, 255, 10, dtype=np.uint8)[None, :]  # every alpha level differs
    Image.fromarray(pixels, "RGBA").save(tmp_path / name, **save_kwargs)
    loaded = read_image(tmp_path / name)
    np.testing.assert_allclose(loaded.rgb, _as_unit(pixels[..., :3]), atol=1e-6)
    assert loaded.alpha is not None and loaded.alpha.shape == (6, 10)
    np.testing.assert_allclose(loaded.alpha, _as_unit(pixels[..., 3]), atol=1e-6)


def test_gray_png_becomes_three_equal_channels(tmp_path: Path) -> None:
    gray = pixel_pattern(channels=1)[..., 0]
    Image.fromarray(gray, "L").save(tmp_path / "g.png")
    loaded = read_image(tmp_path / "g.png")
    for channel in range(3):
        np.testing.assert_allclose(loaded.rgb[..., channel], _as_unit(gray), atol=1e-6)
    assert loaded.alpha is None


def test_gray_alpha_png(tmp_path: Path) -> None:
    pixels = pixel_pattern(channels=2)
    Image.fromarray(pixels, "LA").save(tmp_path / "ga.png")
    loaded = read_image(tmp_path / "ga.png")
    np.testing.assert_allclose(loaded.rgb[..., 1], _as_unit(pixels[..., 0]), atol=1e-6)
    assert loaded.alpha is not None
    np.testing.assert_allclose(loaded.alpha, _as_unit(pixels[..., 1]), atol=1e-6)


@pytest.mark.parametrize("transparent_index", [None, 2])
def test_palette_png(tmp_path: Path, transparent_index: int | None) -> None:
    palette = np.array([[255, 0, 0], [0, 255, 0], [0, 0, 255], [10, 20, 30]], dtype=np.uint8)
    indices = (np.arange(24).reshape(4, 6) % 4).astype(np.uint8)
    picture = Image.fromarray(indices, "P")
    picture.putpalette(palette.flatten().tolist())
    options = {} if transparent_index is None else {"transparency": transparent_index}
    picture.save(tmp_path / "p.png", **options)
    loaded = read_image(tmp_path / "p.png")
    np.testing.assert_allclose(loaded.rgb, _as_unit(palette[indices]), atol=1e-6)
    if transparent_index is None:
        assert loaded.alpha is None
    else:
        assert loaded.alpha is not None
        np.testing.assert_array_equal(loaded.alpha, (indices != transparent_index).astype(np.float32))


@pytest.mark.parametrize("name", ["deep.png", "deep.tif"])
def test_sixteen_bit_colour_keeps_precision(tmp_path: Path, name: str) -> None:
    rng = np.random.default_rng(2)
    rgb16 = rng.integers(0, 65536, size=(5, 7, 3), dtype=np.uint16)
    assert cv2.imwrite(str(tmp_path / name), rgb16[..., ::-1])  # OpenCV writes BGR
    loaded = read_image(tmp_path / name)
    assert loaded.bit_depth == 16
    np.testing.assert_array_equal(np.rint(loaded.rgb.astype(np.float64) * 65535), rgb16)
    # Precision finer than 8 bits really survived (an 8-bit decode would be a multiple of 257).
    assert np.any(np.rint(loaded.rgb * 65535).astype(np.int64) % 257 != 0)


def test_sixteen_bit_gray_and_rgba_png(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    gray16 = rng.integers(0, 65536, size=(4, 6), dtype=np.uint16)
    assert cv2.imwrite(str(tmp_path / "g16.png"), gray16)
    loaded = read_image(tmp_path / "g16.png")
    assert loaded.bit_depth == 16 and loaded.alpha is None
    np.testing.assert_array_equal(np.rint(loaded.rgb[..., 2].astype(np.float64) * 65535), gray16)

    bgra16 = rng.integers(0, 65536, size=(4, 6, 4), dtype=np.uint16)
    assert cv2.imwrite(str(tmp_path / "rgba16.png"), bgra16)
    loaded = read_image(tmp_path / "rgba16.png")
    assert loaded.alpha is not None
    np.testing.assert_array_equal(np.rint(loaded.rgb[..., 0].astype(np.float64) * 65535), bgra16[..., 2])
    np.testing.assert_array_equal(np.rint(loaded.alpha.astype(np.float64) * 65535), bgra16[..., 3])


# ---------------------------------------------------------------------------------------------
# Reading: EXIF orientation


def _save_with_orientation(pixels: np.ndarray, path: Path, orientation: int, **options) -> None:
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(pixels).save(path, exif=exif, **options)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_exif_orientation_is_applied(tmp_path: Path, orientation: int) -> None:
    stored = pixel_pattern(height=4, width=6)
    path = tmp_path / f"o{orientation}.png"
    _save_with_orientation(stored, path, orientation)
    expected = np.asarray(ImageOps.exif_transpose(Image.open(path)).convert("RGB"))
    loaded = read_image(path)
    np.testing.assert_allclose(loaded.rgb, _as_unit(expected), atol=1e-6)
    rotated = orientation >= 5
    assert loaded.rgb.shape[:2] == ((6, 4) if rotated else (4, 6))


def test_orientation_six_is_a_clockwise_quarter_turn(tmp_path: Path) -> None:
    """Checked by hand as well, not only against Pillow: the stored bottom-left goes top-left."""
    stored = pixel_pattern(height=4, width=6)
    _save_with_orientation(stored, tmp_path / "six.png", 6)
    _save_with_orientation(stored, tmp_path / "eight.png", 8)
    six = np.rint(read_image(tmp_path / "six.png").rgb * 255).astype(np.uint8)
    eight = np.rint(read_image(tmp_path / "eight.png").rgb * 255).astype(np.uint8)
    height, width = stored.shape[:2]
    for i in range(width):
        for j in range(height):
            np.testing.assert_array_equal(six[i, j], stored[height - 1 - j, i])
            np.testing.assert_array_equal(eight[i, j], stored[j, width - 1 - i])


def test_jpeg_orientation_and_alpha_orientation(tmp_path: Path) -> None:
    stored = jpeg_blocks()
    _save_with_orientation(stored, tmp_path / "camera.jpg", 6, quality=95)
    expected = np.asarray(ImageOps.exif_transpose(Image.open(tmp_path / "camera.jpg")))
    np.testing.assert_allclose(read_image(tmp_path / "camera.jpg").rgb, _as_unit(expected))

    rgba = pixel_pattern(height=4, width=6, channels=4)
    exif = Image.Exif()
    exif[0x0112] = 3
    Image.fromarray(rgba, "RGBA").save(tmp_path / "turned.png", exif=exif)
    loaded = read_image(tmp_path / "turned.png")
    assert loaded.alpha is not None
    np.testing.assert_allclose(loaded.alpha, _as_unit(rgba[::-1, ::-1, 3]), atol=1e-6)


# ---------------------------------------------------------------------------------------------
# Reading: bad input


def _expect_error(path: Path, words: str) -> None:
    with pytest.raises(MatteError) as caught:
        read_image(path)
    message = str(caught.value)
    assert str(path) in message
    assert words in message
    assert "\n" not in message


def test_truncated_jpeg_is_an_error(tmp_path: Path) -> None:
    Image.fromarray(pixel_pattern(64, 80)).save(tmp_path / "whole.jpg")
    data = (tmp_path / "whole.jpg").read_bytes()
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) // 2])
    _expect_error(tmp_path / "cut.jpg", "truncated")


def test_truncated_png_is_an_error(tmp_path: Path) -> None:
    Image.fromarray(pixel_pattern(64, 80)).save(tmp_path / "whole.png")
    data = (tmp_path / "whole.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    _expect_error(tmp_path / "cut.png", "cannot decode")


def test_truncated_sixteen_bit_png_is_an_error(tmp_path: Path) -> None:
    rgb16 = np.random.default_rng(4).integers(0, 65536, size=(64, 80, 3), dtype=np.uint16)
    cv2.imwrite(str(tmp_path / "whole.png"), rgb16)
    data = (tmp_path / "whole.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    _expect_error(tmp_path / "cut.png", "cannot decode")


def test_empty_missing_folder_text_and_unsupported(tmp_path: Path) -> None:
    (tmp_path / "empty.jpg").write_bytes(b"")
    _expect_error(tmp_path / "empty.jpg", "empty")
    (tmp_path / "notes.jpg").write_text("this is not a picture\n")
    _expect_error(tmp_path / "notes.jpg", "not an image")
    _expect_error(tmp_path / "missing.png", "no such file")
    (tmp_path / "folder.png").mkdir()
    _expect_error(tmp_path / "folder.png", "folder")
    Image.fromarray(pixel_pattern()).save(tmp_path / "anim.gif")
    _expect_error(tmp_path / "anim.gif", "unsupported image format GIF")


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG that declares a size but has no pixel data: enough to test the size guard cheaply."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body) & 0xFFFFFFFF
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IEND", b"")


def test_size_guard(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "bomb.png").write_bytes(_png_header_only(30000, 30000))  # 900 MP
    _expect_error(tmp_path / "bomb.png", "too large")

    monkeypatch.setattr(decoding, "MAX_PIXELS", 100)
    Image.fromarray(pixel_pattern(10, 11)).save(tmp_path / "over.png")
    _expect_error(tmp_path / "over.png", "too large")
    Image.fromarray(pixel_pattern(10, 10)).save(tmp_path / "at_limit.png")
    assert read_image(tmp_path / "at_limit.png").rgb.shape == (10, 10, 3)


# ---------------------------------------------------------------------------------------------
# Large images: stored precision


def test_loaded_image_keeps_the_stored_codes(tmp_path: Path) -> None:
    """A 100 MP photo is 300 MB as uint8 but 1.2 GB as float32: the reader keeps the file's codes and converts
    on request (``rgb``), exactly as it converted before."""
    pixels = pixel_pattern(channels=4)
    Image.fromarray(pixels, "RGBA").save(tmp_path / "a.png")
    loaded = read_image(tmp_path / "a.png")
    assert loaded.pixels.dtype == np.uint8 and loaded.alpha_pixels.dtype == np.uint8
    np.testing.assert_array_equal(loaded.pixels, pixels[..., :3])
    np.testing.assert_array_equal(loaded.alpha_pixels, pixels[..., 3])
    np.testing.assert_array_equal(loaded.rgb, pixels[..., :3].astype(np.float32) * np.float32(1 / 255))
    assert (loaded.height, loaded.width) == (6, 10)
    rgb16 = np.random.default_rng(6).integers(0, 65536, size=(5, 7, 3), dtype=np.uint16)
    assert cv2.imwrite(str(tmp_path / "deep.png"), rgb16[..., ::-1])
    deep = read_image(tmp_path / "deep.png")
    assert deep.pixels.dtype == np.uint16 and deep.alpha_pixels is None and deep.alpha is None
    np.testing.assert_array_equal(deep.pixels, rgb16)
    assert unit_float(deep.pixels).dtype == np.float32
    np.testing.assert_array_equal(unit_float(deep.pixels), deep.rgb)


# ------------------------------------------------------------------------------- decompression bombs


def test_a_sixteen_bit_bomb_is_refused_from_its_header_without_decoding(tmp_path: Path) -> None:
    """Issue 24: a 144 MP 16-bit PNG of 1.1 MB took 6 GB. Here 49 MP of flat 16-bit gray (294 MB as the
    pipeline keeps it, RGB uint16) in a file of a few hundred KB: refused in one line, in a process that
    stays far below what decoding it would take (the 16-bit decode alone is over 500 MB)."""
    import subprocess
    import sys

    path = tmp_path / "bomb.png"
    assert cv2.imwrite(str(path), np.full((7000, 7000), 30000, np.uint16), [cv2.IMWRITE_PNG_COMPRESSION, 9])
    size = path.stat().st_size
    assert size < 1_000_000
    code = (
        "import sys\n"
        "from mattecli.errors import MatteError\n"
        "from mattecli.image.decoding import read_image\n"
        "try:\n"
        "    read_image(sys.argv[1])\n"
        "except MatteError as error:\n"
        "    print(error)\n"
        "status = open('/proc/self/status').read()\n"  # VmHWM: this process's peak (ru_maxrss spans exec)
        "print(int(status.split('VmHWM:')[1].split()[0]) // 1024)\n"
    )
    out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, check=True)
    message, peak_mb = out.stdout.splitlines()
    assert message == (
        f"{path}: decodes to 294 MB from a {size / 1e6:.2g} MB file ({294_000_000 / size:.0f} : 1), a "
        "decompression bomb rather than a photograph (refused above 250 : 1 and 256 MB)"
    )
    assert int(peak_mb) < 300, peak_mb


def test_the_bomb_rule_needs_both_size_and_ratio(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(decoding, "BOMB_MIN_BYTES", 500_000)
    flat = tmp_path / "flat.png"
    cv2.imwrite(str(flat), np.full((400, 400, 3), 1000, np.uint16), [cv2.IMWRITE_PNG_COMPRESSION, 9])
    with pytest.raises(MatteError, match=r"flat\.png: decodes to 1 MB from a "):  # 0.96 MB, a few KB file
        read_image(flat)
    noisy = tmp_path / "noisy.png"
    rng = np.random.default_rng(0)
    cv2.imwrite(str(noisy), rng.integers(0, 65536, (400, 400, 3), dtype=np.uint16))  # compresses ~1 : 1
    assert read_image(noisy).pixels.shape == (400, 400, 3)
    monkeypatch.setattr(decoding, "BOMB_MIN_BYTES", 256_000_000)
    assert read_image(flat).pixels.dtype == np.uint16  # small: any ratio is fine


def test_sixteen_bit_colour_decodes_in_rgb_order(tmp_path: Path) -> None:
    """The in-place BGR -> RGB swap of the 16-bit decode keeps every channel where it belongs."""
    rng = np.random.default_rng(3)
    rgb = rng.integers(0, 65536, (5, 7, 3), dtype=np.uint16)
    rgba = np.concatenate([rgb, rng.integers(0, 65536, (5, 7, 1), dtype=np.uint16)], axis=2)
    cv2.imwrite(str(tmp_path / "c.png"), rgb[:, :, ::-1])
    cv2.imwrite(str(tmp_path / "a.png"), rgba[:, :, [2, 1, 0, 3]])
    colour = read_image(tmp_path / "c.png")
    np.testing.assert_array_equal(colour.pixels, rgb)
    assert colour.alpha_pixels is None and colour.pixels.flags["C_CONTIGUOUS"]
    with_alpha = read_image(tmp_path / "a.png")
    np.testing.assert_array_equal(with_alpha.pixels, rgb)
    np.testing.assert_array_equal(with_alpha.alpha_pixels, rgba[:, :, 3])


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="POSIX named pipes")
def test_a_named_pipe_is_not_called_an_empty_file(tmp_path: Path) -> None:
    """Matter().matte('pipe.jpg') (or --bg pipe.png) said 'is an empty file (0 bytes)'."""
    fifo = tmp_path / "pipe.jpg"
    os.mkfifo(fifo)
    with pytest.raises(MatteError, match=r"pipe\.jpg: is not a regular file \(a pipe or device\)"):
        decoding.read_image(fifo)
