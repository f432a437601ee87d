"""Encoding and writing outputs atomically (mattecli.image.encoding)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import child_env, jpeg_blocks, pixel_pattern, run_as_unprivileged
from PIL import Image

from mattecli.atomic import atomic_output
from mattecli.errors import MatteError
from mattecli.image.decoding import read_image
from mattecli.image.encoding import (
    encode_alpha,
    encode_rgb,
    encode_rgba,
    write_alpha,
    write_rgb,
    write_rgba_png,
)


def _as_unit(values: np.ndarray, scale: float = 255.0) -> np.ndarray:
    return values.astype(np.float32) / scale


# ---------------------------------------------------------------------------------------------
# Writing


def test_write_rgba_png_round_trip(tmp_path: Path) -> None:
    rgb = _as_unit(pixel_pattern())
    alpha = np.linspace(0, 1, 60, dtype=np.float32).reshape(6, 10)
    written = write_rgba_png(tmp_path / "out" / "cut.png", rgb, alpha)
    assert written == tmp_path / "out" / "cut.png"
    back = np.asarray(Image.open(written))
    assert back.shape == (6, 10, 4) and back.dtype == np.uint8
    np.testing.assert_array_equal(back[..., :3], pixel_pattern())
    np.testing.assert_array_equal(back[..., 3], np.rint(alpha * 255).astype(np.uint8))


@pytest.mark.parametrize("name", ["cut.webp", "cut.tif"])
def test_write_rgba_other_formats_keep_alpha_exactly(tmp_path: Path, name: str) -> None:
    rgb = _as_unit(pixel_pattern())
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
    pixels = jpeg_blocks()
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
        write_rgba_png(target, _as_unit(pixel_pattern()), np.ones((6, 10), np.float32))
    assert target.read_bytes() == b"precious"
    assert sorted(os.listdir(tmp_path)) == ["cut.png"]
    write_rgba_png(target, _as_unit(pixel_pattern()), np.ones((6, 10), np.float32), overwrite=True)
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
    """In a child process that, even as root, meets folder permissions (it used to skip as root)."""
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    code = (
        "import sys, numpy as np\n"
        "from mattecli.errors import MatteError\n"
        "from mattecli.image.encoding import write_rgb\n"
        "try:\n"
        "    write_rgb(sys.argv[1], np.zeros((4, 6, 3), np.uint8))\n"
        "except MatteError as error:\n"
        "    print(error)\n"
    )
    try:
        out = run_as_unprivileged(
            [sys.executable, "-c", code, str(locked / "c.png")],
            env=child_env(),
            capture_output=True,
            text=True,
        )
        assert out.returncode == 0, out.stderr
        assert out.stdout.strip() == f"{locked}: cannot write to this folder (Permission denied)"
        assert os.listdir(locked) == []
    finally:
        locked.chmod(0o700)


def test_writers_take_uint8_colour_and_float_alpha(tmp_path: Path) -> None:
    rgb = pixel_pattern(height=20, width=30)
    alpha = np.linspace(0, 1, 600, dtype=np.float32).reshape(20, 30)
    written = write_rgba_png(tmp_path / "cut.png", rgb, alpha)
    assert written.read_bytes() == encode_rgba(rgb, alpha, ".png")
    back = np.asarray(Image.open(written))
    np.testing.assert_array_equal(back[..., :3], rgb)
    np.testing.assert_array_equal(back[..., 3], np.rint(alpha * 255).astype(np.uint8))
    assert write_rgb(tmp_path / "c.png", rgb).read_bytes() == encode_rgb(rgb, ".png")
    assert write_alpha(tmp_path / "a.png", alpha).read_bytes() == encode_alpha(alpha, ".png")
