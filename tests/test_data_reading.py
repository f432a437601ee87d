"""mattecli.data.reading decodes photos as ``matte image`` does (EXIF orientation applied) and mattes as
stored (8/16-bit, grey or colour), so training, ``matte eval`` and inference see the same pictures."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from mattecli.data import build_dataset
from mattecli.data.reading import SampleError, read_alpha, read_rgb, read_rgba
from mattecli.image.decoding import read_image

#: EXIF orientation 6: the stored pixels must be turned 90 degrees clockwise to be upright.
ROTATE_CW = 6


def stored_pixels(height: int = 24, width: int = 40) -> np.ndarray:
    """A picture whose orientation is visible: a bright left third, dark elsewhere, a red top row."""
    rgb = np.full((height, width, 3), 40, np.uint8)
    rgb[:, : width // 3] = 230
    rgb[:4, :, 0] = 255
    return rgb


def write_rotated_jpeg(path: Path, rgb: np.ndarray) -> Path:
    """A JPEG whose stored pixels are ``rgb`` and whose EXIF says: rotate 90 degrees clockwise."""
    exif = Image.Exif()
    exif[0x0112] = ROTATE_CW
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rgb).save(path, quality=95, exif=exif)
    return path


def test_an_exif_rotated_jpeg_is_read_upright_as_matte_image_reads_it(tmp_path: Path) -> None:
    path = write_rotated_jpeg(tmp_path / "photo.jpg", stored_pixels())
    rgb = read_rgb(path)
    assert rgb.shape == (40, 24, 3)  # stored 24 x 40, upright 40 x 24
    assert rgb.dtype == np.uint8
    np.testing.assert_array_equal(rgb, read_image(path).pixels)
    upright = np.rot90(stored_pixels(), k=-1)  # turned clockwise; equal up to JPEG's losses
    assert np.abs(rgb.astype(np.int16) - upright).mean() < 4


def test_training_and_eval_data_see_the_upright_photo_with_its_upright_matte(tmp_path: Path) -> None:
    root = tmp_path / "data"
    write_rotated_jpeg(root / "image" / "a.jpg", stored_pixels(64, 96))
    matte = np.zeros((96, 64), np.uint8)  # the matte of the upright picture: its top third
    matte[:32] = 255
    (root / "alpha").mkdir()
    assert cv2.imwrite(str(root / "alpha" / "a.png"), matte)
    item = build_dataset(root, size=64, train=False)[0]
    image, alpha = item["image"].numpy(), item["alpha"].numpy()[0]
    assert image.shape[1:] == alpha.shape
    assert alpha.shape[0] > alpha.shape[1]  # portrait, as upright
    bright = image.mean(axis=0) > 0.6
    assert (bright == (alpha > 0.5)).mean() > 0.9  # the bright part of the photo is where the matte is


def test_rgb_reading_keeps_grey_16_bit_and_rgba_files_as_before(tmp_path: Path) -> None:
    grey = (np.arange(30 * 20).reshape(30, 20) % 256).astype(np.uint8)
    assert cv2.imwrite(str(tmp_path / "grey.png"), grey)
    np.testing.assert_array_equal(read_rgb(tmp_path / "grey.png"), np.repeat(grey[:, :, None], 3, axis=2))
    deep = np.random.default_rng(0).integers(0, 65536, (10, 12, 3), dtype=np.uint16)
    assert cv2.imwrite(str(tmp_path / "deep.png"), deep)  # BGR on disk
    expected = (deep[:, :, ::-1].astype(np.float32) / 257.0 + 0.5).astype(np.uint8)
    np.testing.assert_array_equal(read_rgb(tmp_path / "deep.png"), expected)
    bgra = np.random.default_rng(1).integers(0, 256, (8, 9, 4), dtype=np.uint8)
    assert cv2.imwrite(str(tmp_path / "cut.png"), bgra)
    np.testing.assert_array_equal(read_rgb(tmp_path / "cut.png"), bgra[:, :, 2::-1])
    rgb, alpha = read_rgba(tmp_path / "cut.png")
    np.testing.assert_array_equal(rgb, bgra[:, :, 2::-1])
    np.testing.assert_array_equal(alpha, bgra[:, :, 3].astype(np.float32) * (1.0 / 255.0))


def test_mattes_are_read_as_stored_in_8_and_16_bits(tmp_path: Path) -> None:
    eight = (np.arange(16 * 16).reshape(16, 16) % 256).astype(np.uint8)
    sixteen = (np.arange(16 * 16).reshape(16, 16) * 257).astype(np.uint16)
    assert cv2.imwrite(str(tmp_path / "m8.png"), eight)
    assert cv2.imwrite(str(tmp_path / "m16.png"), sixteen)
    np.testing.assert_array_equal(read_alpha(tmp_path / "m8.png"), eight.astype(np.float32) * (1.0 / 255.0))
    np.testing.assert_array_equal(
        read_alpha(tmp_path / "m16.png"), sixteen.astype(np.float32) * (1.0 / 65535.0)
    )


@pytest.mark.parametrize("content", [b"", b"not an image at all"])
def test_unreadable_photos_are_one_sample_error_naming_the_file(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "broken.jpg"
    path.write_bytes(content)
    with pytest.raises(SampleError) as error:
        read_rgb(path)
    assert error.value.path == path
    assert str(error.value).startswith(f"{path}: ")
    with pytest.raises(SampleError):
        read_rgba(path)


def test_data_folders_and_matte_image_folders_count_the_same_files_as_images(tmp_path: Path) -> None:
    """One rule (``mattecli.image.inputs.looks_like_image``) says what an image file is for both."""
    from mattecli.data.reading import list_images
    from mattecli.image.inputs import collect_inputs

    names = ["a.PNG", "b.webp", "c.jpeg", "d.tif", "e.bmp", ".hidden.png", "._f.jpg", "notes.txt", "g.gif"]
    for name in names:
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "h.png").mkdir()  # a folder with an image's name is not an image
    listed = sorted(path.name for path in list_images(tmp_path).values())
    assert listed == ["a.PNG", "b.webp", "c.jpeg", "d.tif", "e.bmp"]
    assert sorted(path.name for path, _ in collect_inputs([str(tmp_path)], recursive=False)) == listed
