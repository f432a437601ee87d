"""Reading every supported image kind, finding inputs, and writing outputs atomically."""

from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image, ImageOps

from mattecli import media
from mattecli.errors import MatteError
from mattecli.media import (
    atomic_output,
    collect_inputs,
    read_image,
    write_alpha,
    write_rgb,
    write_rgba_png,
)


def _pattern(height: int = 6, width: int = 10, channels: int = 3, seed: int = 0) -> np.ndarray:
    """Small image whose every pixel differs, so any flip, rotation or channel swap shows."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, size=(height, width, channels), dtype=np.uint8)


def _blocks(height: int = 32, width: int = 48) -> np.ndarray:
    """Flat 16 x 16 blocks (one JPEG MCU each) of distinct colours: survive JPEG nearly unchanged."""
    rng = np.random.default_rng(1)
    colours = rng.integers(0, 256, size=(height // 16, width // 16, 3), dtype=np.uint8)
    return np.repeat(np.repeat(colours, 16, axis=0), 16, axis=1)


def _as_unit(values: np.ndarray, scale: float = 255.0) -> np.ndarray:
    return values.astype(np.float32) / scale


# ---------------------------------------------------------------------------------------------
# Reading: formats


@pytest.mark.parametrize(
    ("name", "save_kwargs"),
    [("a.png", {}), ("a.bmp", {}), ("a.tif", {}), ("a.webp", {"lossless": True}), ("A.PNG", {})],
)
def test_lossless_rgb_round_trip(tmp_path: Path, name: str, save_kwargs: dict) -> None:
    pixels = _pattern()
    Image.fromarray(pixels).save(tmp_path / name, **save_kwargs)
    loaded = read_image(tmp_path / name)
    assert loaded.rgb.dtype == np.float32
    assert loaded.rgb.shape == (6, 10, 3)
    np.testing.assert_allclose(loaded.rgb, _as_unit(pixels), atol=1e-6)
    assert loaded.alpha is None
    assert loaded.bit_depth == 8
    assert loaded.path == tmp_path / name


def test_jpeg_decodes_to_the_stored_colours(tmp_path: Path) -> None:
    pixels = _blocks()
    Image.fromarray(pixels).save(tmp_path / "a.jpg", quality=95, subsampling=0)
    loaded = read_image(tmp_path / "a.jpg")
    assert loaded.rgb.shape == (32, 48, 3)
    assert np.abs(loaded.rgb * 255 - pixels).max() < 3.0  # lossy, but no shift or channel swap
    np.testing.assert_allclose(loaded.rgb, _as_unit(np.asarray(Image.open(tmp_path / "a.jpg"))))


@pytest.mark.parametrize(
    ("name", "save_kwargs"), [("a.png", {}), ("a.webp", {"lossless": True, "exact": True})]
)
def test_rgba_keeps_alpha(tmp_path: Path, name: str, save_kwargs: dict) -> None:
    pixels = _pattern(channels=4)
    pixels[..., 3] = np.linspace(0, 255, 10, dtype=np.uint8)[None, :]  # every alpha level differs
    Image.fromarray(pixels, "RGBA").save(tmp_path / name, **save_kwargs)
    loaded = read_image(tmp_path / name)
    np.testing.assert_allclose(loaded.rgb, _as_unit(pixels[..., :3]), atol=1e-6)
    assert loaded.alpha is not None and loaded.alpha.shape == (6, 10)
    np.testing.assert_allclose(loaded.alpha, _as_unit(pixels[..., 3]), atol=1e-6)


def test_gray_png_becomes_three_equal_channels(tmp_path: Path) -> None:
    gray = _pattern(channels=1)[..., 0]
    Image.fromarray(gray, "L").save(tmp_path / "g.png")
    loaded = read_image(tmp_path / "g.png")
    for channel in range(3):
        np.testing.assert_allclose(loaded.rgb[..., channel], _as_unit(gray), atol=1e-6)
    assert loaded.alpha is None


def test_gray_alpha_png(tmp_path: Path) -> None:
    pixels = _pattern(channels=2)
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
    stored = _pattern(height=4, width=6)
    path = tmp_path / f"o{orientation}.png"
    _save_with_orientation(stored, path, orientation)
    expected = np.asarray(ImageOps.exif_transpose(Image.open(path)).convert("RGB"))
    loaded = read_image(path)
    np.testing.assert_allclose(loaded.rgb, _as_unit(expected), atol=1e-6)
    rotated = orientation >= 5
    assert loaded.rgb.shape[:2] == ((6, 4) if rotated else (4, 6))


def test_orientation_six_is_a_clockwise_quarter_turn(tmp_path: Path) -> None:
    """Checked by hand as well, not only against Pillow: the stored bottom-left goes top-left."""
    stored = _pattern(height=4, width=6)
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
    stored = _blocks()
    _save_with_orientation(stored, tmp_path / "camera.jpg", 6, quality=95)
    expected = np.asarray(ImageOps.exif_transpose(Image.open(tmp_path / "camera.jpg")))
    np.testing.assert_allclose(read_image(tmp_path / "camera.jpg").rgb, _as_unit(expected))

    rgba = _pattern(height=4, width=6, channels=4)
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
    Image.fromarray(_pattern(64, 80)).save(tmp_path / "whole.jpg")
    data = (tmp_path / "whole.jpg").read_bytes()
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) // 2])
    _expect_error(tmp_path / "cut.jpg", "truncated")


def test_truncated_png_is_an_error(tmp_path: Path) -> None:
    Image.fromarray(_pattern(64, 80)).save(tmp_path / "whole.png")
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
    Image.fromarray(_pattern()).save(tmp_path / "anim.gif")
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

    monkeypatch.setattr(media, "MAX_PIXELS", 100)
    Image.fromarray(_pattern(10, 11)).save(tmp_path / "over.png")
    _expect_error(tmp_path / "over.png", "too large")
    Image.fromarray(_pattern(10, 10)).save(tmp_path / "at_limit.png")
    assert read_image(tmp_path / "at_limit.png").rgb.shape == (10, 10, 3)


# ---------------------------------------------------------------------------------------------
# Finding inputs


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    for relative in ["shots/b.jpg", "shots/a.png", "shots/day2/c.JPG", "shots/day2/deep/d.webp"]:
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_bytes(b"x")
    (tmp_path / "shots/.hidden.png").write_bytes(b"x")
    (tmp_path / "shots/._a.png").write_bytes(b"x")
    (tmp_path / "shots/notes.txt").write_text("x")
    (tmp_path / "shots/.cache").mkdir()
    (tmp_path / "shots/.cache/e.png").write_bytes(b"x")
    (tmp_path / "empty").mkdir()
    return tmp_path


def test_folder_is_expanded_recursively_sorted_with_relative_paths(tree: Path) -> None:
    found = collect_inputs([str(tree / "shots")])
    assert [str(relative) for _, relative in found] == [
        "a.png",
        "b.jpg",
        os.path.join("day2", "c.JPG"),
        os.path.join("day2", "deep", "d.webp"),
    ]
    assert found[0][0] == tree / "shots" / "a.png"


def test_folder_without_recursion(tree: Path) -> None:
    found = collect_inputs([str(tree / "shots")], recursive=False)
    assert [relative.name for _, relative in found] == ["a.png", "b.jpg"]


def test_glob_files_and_duplicates(tree: Path) -> None:
    pattern = str(tree / "shots" / "**" / "*.webp")
    found = collect_inputs([pattern, str(tree / "shots" / "day2"), str(tree / "shots/a.png")])
    paths = [path for path, _ in found]
    assert paths == sorted(paths, key=lambda p: str(p).lower())
    assert len(paths) == len({p.resolve() for p in paths}) == 3  # d.webp reached twice, kept once
    relatives = {path.name: str(relative) for path, relative in found}
    assert relatives["a.png"] == "a.png"
    assert relatives["c.JPG"] == "c.JPG"  # relative to the folder named on the line
    assert relatives["d.webp"] == os.path.join("day2", "deep", "d.webp")  # below the fixed "shots/"


def test_collect_errors(tree: Path) -> None:
    with pytest.raises(MatteError, match="no such file or folder"):
        collect_inputs([str(tree / "nope.jpg")])
    with pytest.raises(MatteError, match="matches no images"):
        collect_inputs([str(tree / "shots" / "*.tiff")])
    with pytest.raises(MatteError, match="no images"):
        collect_inputs([str(tree / "empty")])


# ---------------------------------------------------------------------------------------------
# Writing


def test_write_rgba_png_round_trip(tmp_path: Path) -> None:
    rgb = _as_unit(_pattern())
    alpha = np.linspace(0, 1, 60, dtype=np.float32).reshape(6, 10)
    written = write_rgba_png(tmp_path / "out" / "cut.png", rgb, alpha)
    assert written == tmp_path / "out" / "cut.png"
    back = np.asarray(Image.open(written))
    assert back.shape == (6, 10, 4) and back.dtype == np.uint8
    np.testing.assert_array_equal(back[..., :3], _pattern())
    np.testing.assert_array_equal(back[..., 3], np.rint(alpha * 255).astype(np.uint8))


@pytest.mark.parametrize("name", ["cut.webp", "cut.tif"])
def test_write_rgba_other_formats_keep_alpha_exactly(tmp_path: Path, name: str) -> None:
    rgb = _as_unit(_pattern())
    alpha = np.linspace(0.1, 1, 60, dtype=np.float32).reshape(6, 10)
    loaded = read_image(write_rgba_png(tmp_path / name, rgb, alpha))
    assert loaded.alpha is not None
    np.testing.assert_allclose(loaded.alpha, np.rint(alpha * 255) / 255, atol=1e-6)
    np.testing.assert_allclose(loaded.rgb, rgb, atol=1e-6)  # lossless
    with pytest.raises(MatteError, match="transparency"):
        write_rgba_png(tmp_path / "cut.jpg", rgb, alpha)


def test_write_alpha_eight_and_sixteen_bit(tmp_path: Path) -> None:
    alpha = np.random.default_rng(5).random((5, 9)).astype(np.float32)
    write_alpha(tmp_path / "a8.png", alpha)
    write_alpha(tmp_path / "a16.png", alpha[:, :, None], depth=16)
    write_alpha(tmp_path / "a16.tif", alpha, depth=16)
    eight = cv2.imread(str(tmp_path / "a8.png"), cv2.IMREAD_UNCHANGED)
    assert eight.dtype == np.uint8 and eight.shape == (5, 9)
    np.testing.assert_array_equal(eight, np.rint(alpha * 255).astype(np.uint8))
    for name in ("a16.png", "a16.tif"):
        sixteen = cv2.imread(str(tmp_path / name), cv2.IMREAD_UNCHANGED)
        assert sixteen.dtype == np.uint16 and sixteen.shape == (5, 9)
        np.testing.assert_array_equal(sixteen, np.rint(alpha.astype(np.float64) * 65535))
    # And our own reader brings the 16-bit matte back at full precision.
    assert np.abs(read_image(tmp_path / "a16.png").rgb[..., 0] - alpha).max() < 1e-5
    smooth = np.linspace(0, 1, 32 * 32, dtype=np.float32).reshape(32, 32)
    write_alpha(tmp_path / "a8.jpg", smooth)  # lossy, but allowed at 8 bits
    assert np.abs(read_image(tmp_path / "a8.jpg").rgb[..., 0] - smooth).max() < 0.02
    with pytest.raises(MatteError, match="16-bit"):
        write_alpha(tmp_path / "a16.jpg", alpha, depth=16)
    assert not (tmp_path / "a16.jpg").exists()


def test_write_rgb_by_extension(tmp_path: Path) -> None:
    pixels = _blocks()
    write_rgb(tmp_path / "c.png", _as_unit(pixels))
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "c.png")), pixels)
    write_rgb(tmp_path / "c.jpg", _as_unit(pixels), quality=95)
    with Image.open(tmp_path / "c.jpg") as jpeg:
        assert jpeg.format == "JPEG"
        # 4:4:4 chroma: colours stay put even at sharp edges (no chroma subsampling bleed).
        assert np.abs(np.asarray(jpeg).astype(float) - pixels).max() < 3.0
    write_rgb(tmp_path / "c.webp", pixels)  # uint8 input passes through unchanged
    with Image.open(tmp_path / "c.webp") as webp:
        assert webp.format == "WEBP" and webp.size == (48, 32)
    with pytest.raises(MatteError, match="format"):
        write_rgb(tmp_path / "c.xyz", pixels)


def test_no_overwrite_without_permission(tmp_path: Path) -> None:
    target = tmp_path / "cut.png"
    target.write_bytes(b"precious")
    with pytest.raises(MatteError, match=r"exists \(use --overwrite\)"):
        write_rgba_png(target, _as_unit(_pattern()), np.ones((6, 10), np.float32))
    assert target.read_bytes() == b"precious"
    assert sorted(os.listdir(tmp_path)) == ["cut.png"]
    write_rgba_png(target, _as_unit(_pattern()), np.ones((6, 10), np.float32), overwrite=True)
    assert np.asarray(Image.open(target)).shape == (6, 10, 4)
    assert sorted(os.listdir(tmp_path)) == ["cut.png"]


def test_file_appearing_during_the_write_is_not_replaced(tmp_path: Path) -> None:
    target = tmp_path / "late.png"
    with pytest.raises(MatteError, match="exists"), atomic_output(target) as temporary:
        temporary.write_bytes(b"new")
        target.write_bytes(b"someone else's")
    assert target.read_bytes() == b"someone else's"
    assert sorted(os.listdir(tmp_path)) == ["late.png"]


def test_failed_write_leaves_nothing(tmp_path: Path) -> None:
    target = tmp_path / "out.png"
    with pytest.raises(RuntimeError), atomic_output(target) as temporary:
        assert temporary.parent == tmp_path and temporary.suffix == ".png"
        assert temporary.name.startswith(".")  # hidden: folder scans skip it
        temporary.write_bytes(b"half")
        raise RuntimeError("encoder crashed")
    assert os.listdir(tmp_path) == []


def test_output_gets_normal_permissions(tmp_path: Path) -> None:
    umask = os.umask(0o022)
    os.umask(umask)
    write_alpha(tmp_path / "m.png", np.zeros((3, 3), np.float32))
    assert (tmp_path / "m.png").stat().st_mode & 0o777 == 0o666 & ~umask


def test_destination_below_a_regular_file_is_an_error(tmp_path: Path) -> None:
    """Fails even for root, unlike a read-only folder."""
    blocker = tmp_path / "report.txt"
    blocker.write_text("not a folder")
    with pytest.raises(MatteError) as caught:
        write_alpha(blocker / "sub" / "m.png", np.zeros((3, 3), np.float32))
    assert str(blocker) in str(caught.value)
    assert sorted(os.listdir(tmp_path)) == ["report.txt"]


def test_read_only_folder_is_an_error(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        if os.access(locked, os.W_OK):
            pytest.skip("running with privileges that ignore folder permissions (root)")
        with pytest.raises(MatteError, match="cannot write to this folder") as caught:
            write_rgb(locked / "c.png", _as_unit(_pattern()))
        assert str(locked) in str(caught.value)
        assert os.listdir(locked) == []
    finally:
        locked.chmod(0o700)


# ---------------------------------------------------------------------------------------------
# Large images: stored precision, strip-wise conversion


def test_loaded_image_keeps_the_stored_codes(tmp_path: Path) -> None:
    """A 100 MP photo is 300 MB as uint8 but 1.2 GB as float32: the reader keeps the file's codes and converts
    on request (``rgb``), exactly as it converted before."""
    pixels = _pattern(channels=4)
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
    assert media.unit_float(deep.pixels).dtype == np.float32
    np.testing.assert_array_equal(media.unit_float(deep.pixels), deep.rgb)


def test_unit_float_and_to_uint8_in_strips_match_whole_arrays(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(7)
    values = rng.uniform(-0.2, 1.2, (50, 9)).astype(np.float32)
    values[0, :4] = [0.5 / 255, 1.5 / 255, 254.5 / 255, np.float32(0.5)]
    whole8, whole16 = np.rint(np.clip(values, 0, 1) * 255).astype(np.uint8), media.to_uint16(values)
    codes = rng.integers(0, 256, (50, 9, 3), dtype=np.uint8)
    monkeypatch.setattr(media, "STRIP_PIXELS", 9 * 4)  # 4-row strips
    np.testing.assert_array_equal(media.to_uint8(values), whole8)
    np.testing.assert_array_equal(media.to_uint16(values), whole16)
    np.testing.assert_array_equal(media.unit_float(codes), codes.astype(np.float32) * np.float32(1 / 255))
    floats = codes.astype(np.float32) / 255
    assert media.unit_float(floats) is floats  # float32 passes through
    with pytest.raises(ValueError, match="int32"):
        media.unit_float(codes.astype(np.int32))


def test_writers_take_uint8_colour_and_float_alpha(tmp_path: Path) -> None:
    rgb = _pattern(height=20, width=30)
    alpha = np.linspace(0, 1, 600, dtype=np.float32).reshape(20, 30)
    written = write_rgba_png(tmp_path / "cut.png", rgb, alpha)
    assert written.read_bytes() == media.encode_rgba(rgb, alpha, ".png")
    back = np.asarray(Image.open(written))
    np.testing.assert_array_equal(back[..., :3], rgb)
    np.testing.assert_array_equal(back[..., 3], np.rint(alpha * 255).astype(np.uint8))
    assert write_rgb(tmp_path / "c.png", rgb).read_bytes() == media.encode_rgb(rgb, ".png")
    assert write_alpha(tmp_path / "a.png", alpha).read_bytes() == media.encode_alpha(alpha, ".png")
