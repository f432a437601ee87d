"""Decoding training images, mattes, trimaps and RGBA cut-outs into numpy arrays.

Photos and cut-outs are decoded by :func:`mattecli.image.decoding.read_image`, the decoder of ``matte image``: EXIF
orientation applied, the same pixels whatever reads them (training, ``matte eval``, ``matte pack``,
inference). Mattes and trimaps are greyscale data, not photos: they are read as stored (8 or 16 bits, no
orientation) through ``np.fromfile`` + ``cv2.imdecode`` (not ``cv2.imread``, so that non-ASCII paths work on
every platform). An unreadable or truncated file of either kind surfaces as one :class:`SampleError` that
the dataset can log once and skip, instead of a ``None`` that fails later. Colour images stay ``uint8``
(cheapest to crop and resize); mattes become ``float32`` in [0, 1].
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from mattecli.errors import MatteError
from mattecli.image.conversion import to_uint8, unit_float
from mattecli.image.decoding import LoadedImage, read_image
from mattecli.image.inputs import looks_like_image  # data folders list what ``matte image`` reads


class SampleError(Exception):
    """One training sample cannot be used (the dataset logs it once and moves to another sample)."""

    def __init__(self, path: str | Path, problem: str) -> None:
        self.path = Path(path)
        self.problem = problem
        super().__init__(f"{path}: {problem}")


def list_images(folder: Path) -> dict[str, Path]:
    """Map file stem -> path for the image files directly inside ``folder`` (sorted, first suffix wins)."""
    found: dict[str, Path] = {}
    if not folder.is_dir():
        return found
    for path in sorted(folder.iterdir()):
        if path.is_file() and looks_like_image(path):
            found.setdefault(path.stem, path)
    return found


def _read_photo(path: Path) -> LoadedImage:
    """A photo or cut-out as ``matte image`` decodes it (upright), or raise SampleError."""
    try:
        return read_image(path)
    except MatteError as error:
        prefix = f"{path}: "
        text = str(error)
        raise SampleError(path, text[len(prefix) :] if text.startswith(prefix) else text) from None


def _writable(pixels: np.ndarray) -> np.ndarray:
    """The decoder may hand out Pillow's read-only buffer; the data pipeline owns its arrays."""
    return pixels if pixels.flags.writeable else pixels.copy()


def _decode(path: Path) -> np.ndarray:
    """Decode a matte or trimap file as stored (keeping depth and channels), or raise SampleError."""
    try:
        data = np.fromfile(str(path), dtype=np.uint8)
    except OSError as exc:
        raise SampleError(path, f"cannot read file ({exc.strerror or exc})") from exc
    image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if image is None or image.size == 0:
        raise SampleError(path, "cannot decode image (unreadable or truncated file)")
    return image


def _to_uint8(image: np.ndarray) -> np.ndarray:
    """Bring 16-bit or float images down to uint8 so every colour path downstream sees one type."""
    if image.dtype == np.uint8:
        return image
    if image.dtype == np.uint16:
        return to_uint8(image)  # the integer rule gives what (x / 257 + 0.5) did, for every 16-bit code
    return to_uint8(image.astype(np.float32), half_up=True)


def _to_unit_float(channel: np.ndarray) -> np.ndarray:
    """A single channel as float32 in [0, 1], whatever its bit depth."""
    if channel.dtype in (np.uint8, np.uint16):
        return unit_float(channel)
    return np.clip(channel.astype(np.float32), 0.0, 1.0)


def read_rgb(path: Path) -> np.ndarray:
    """An H x W x 3 uint8 RGB image, upright (grey is expanded, an alpha channel is dropped)."""
    return _writable(_to_uint8(_read_photo(path).pixels))


def read_alpha(path: Path) -> np.ndarray:
    """An H x W float32 matte in [0, 1]; colour mattes are converted to grey."""
    image = _decode(path)
    if image.ndim == 3:
        if image.shape[2] == 1:
            image = image[:, :, 0]
        else:
            image = cv2.cvtColor(_to_uint8(image[:, :, :3]), cv2.COLOR_BGR2GRAY)
    return _to_unit_float(image)


def read_trimap(path: Path) -> np.ndarray:
    """An H x W float32 trimap with exactly the values 0, 0.5 and 1 (thresholds at 1/3 and 2/3)."""
    grey = read_alpha(path)
    trimap = np.full(grey.shape, 0.5, dtype=np.float32)
    trimap[grey < 1.0 / 3.0] = 0.0
    trimap[grey > 2.0 / 3.0] = 1.0
    return trimap


def read_rgba(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """An RGBA cut-out as (H x W x 3 uint8 RGB, H x W float32 alpha), upright; a file without alpha is an
    error."""
    loaded = _read_photo(path)
    if loaded.alpha_pixels is None:
        raise SampleError(path, "cut-out has no alpha channel (expected an RGBA image)")
    return _writable(_to_uint8(loaded.pixels)), _to_unit_float(loaded.alpha_pixels)
