"""Encoding and writing still images: RGBA cut-outs, RGB composites and grayscale mattes.

Encoding happens in memory (OpenCV, BGR order, 16 bits for PNG and TIFF mattes) so that a caller can
encode everything it will write before writing anything: an image that fails leaves no file behind.
Writing is atomic: a writer fills a hidden temporary file in the destination folder and moves it into
place only when it is complete, so an interrupted run never leaves a half-written picture behind, and an
existing file is never replaced unless the caller asked for it. Floats become uint8 (or uint16) through
:mod:`mattecli.image.conversion`, a strip of rows at a time.

OpenCV is imported inside the function that uses it so that importing this module stays cheap for the
command line's start-up.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mattecli.atomic import atomic_output, describe_error
from mattecli.errors import MatteError
from mattecli.image.conversion import row_strips, to_uint8, to_uint16
from mattecli.image.formats import (
    ALPHA_SUFFIXES,
    IMAGE_SUFFIXES,
    SIXTEEN_BIT_SUFFIXES,
    normal_suffix,
    suffix_list,
)


def write_rgba_png(path: str | Path, rgb: np.ndarray, alpha: np.ndarray, overwrite: bool = False) -> Path:
    """Write an 8-bit RGBA cut-out: ``rgb`` H x W x 3 and ``alpha`` H x W (float or uint8).

    PNG is the usual choice; .tif and .webp (written lossless) also keep the alpha channel.
    """
    path = Path(path)
    return write_bytes(path, _encode_rgba(rgb, alpha, path.suffix, name=path), overwrite)


def write_alpha(path: str | Path, alpha: np.ndarray, depth: int = 8, overwrite: bool = False) -> Path:
    """Write a matte as a grayscale image; ``depth=16`` keeps full precision (PNG or TIFF only)."""
    path = Path(path)
    return write_bytes(path, _encode_alpha(alpha, path.suffix, depth, name=path), overwrite)


def write_rgb(path: str | Path, rgb: np.ndarray, overwrite: bool = False, quality: int = 95) -> Path:
    """Write an 8-bit RGB image; the format follows the suffix (JPEG and WebP use ``quality``)."""
    path = Path(path)
    return write_bytes(path, _encode_rgb(rgb, path.suffix, quality, name=path), overwrite)


def encode_rgba(rgb: np.ndarray, alpha: np.ndarray, suffix: str, name: str | Path | None = None) -> bytes:
    """An 8-bit RGBA cut-out encoded as ``suffix`` (.png, .webp lossless or .tif), in memory."""
    return _encode_rgba(rgb, alpha, suffix, name).tobytes()


def encode_alpha(alpha: np.ndarray, suffix: str, depth: int = 8, name: str | Path | None = None) -> bytes:
    """A grayscale matte encoded as ``suffix``; ``depth=16`` keeps full precision (PNG or TIFF only)."""
    return _encode_alpha(alpha, suffix, depth, name).tobytes()


def encode_rgb(rgb: np.ndarray, suffix: str, quality: int = 95, name: str | Path | None = None) -> bytes:
    """An 8-bit RGB image encoded as ``suffix`` (JPEG and WebP use ``quality``), in memory."""
    return _encode_rgb(rgb, suffix, quality, name).tobytes()


# The encoders below return OpenCV's buffer itself: the writers save it as it is, and only the public
# encode_* functions copy it into bytes (for a 100 MP cut-out that copy alone is a few hundred MB).


def _encode_rgba(rgb: np.ndarray, alpha: np.ndarray, suffix: str, name: str | Path | None) -> np.ndarray:
    suffix = normal_suffix(suffix)
    if suffix not in ALPHA_SUFFIXES:
        raise MatteError("a cut-out with transparency must be saved as .png, .webp or .tif", name)
    colour = _check_rgb(rgb)
    matte = _check_alpha(alpha, colour.shape[:2])
    # Filled a strip at a time: the 8-bit BGRA picture is the only full-size array made here.
    bgra = np.empty((*colour.shape[:2], 4), np.uint8)
    for rows in row_strips(colour):
        bgra[rows, :, :3] = to_uint8(colour[rows])[:, :, ::-1]
        bgra[rows, :, 3] = to_uint8(matte[rows])
    return _encode(bgra, suffix, quality=101, name=name)  # WebP above 100 means lossless


def _encode_alpha(alpha: np.ndarray, suffix: str, depth: int, name: str | Path | None) -> np.ndarray:
    suffix = normal_suffix(suffix)
    if depth not in (8, 16):
        raise ValueError(f"depth must be 8 or 16, got {depth}")
    if suffix not in IMAGE_SUFFIXES:
        raise MatteError(f"cannot tell the image format from the name (use {suffix_list()})", name)
    if depth == 16 and suffix not in SIXTEEN_BIT_SUFFIXES:
        raise MatteError("a 16-bit matte must be saved as .png or .tif", name)
    matte = _check_alpha(alpha, None)
    pixels = to_uint16(matte) if depth == 16 else to_uint8(matte)
    return _encode(pixels, suffix, quality=101, name=name)


def _encode_rgb(rgb: np.ndarray, suffix: str, quality: int, name: str | Path | None) -> np.ndarray:
    suffix = normal_suffix(suffix)
    if suffix not in IMAGE_SUFFIXES:
        raise MatteError(f"cannot tell the image format from the name (use {suffix_list()})", name)
    if not 1 <= quality <= 100:
        raise ValueError(f"quality must be between 1 and 100, got {quality}")
    colour = _check_rgb(rgb)
    bgr = np.empty(colour.shape, np.uint8)
    for rows in row_strips(colour):
        bgr[rows] = to_uint8(colour[rows])[:, :, ::-1]
    return _encode(bgr, suffix, quality=quality, name=name)


def _check_rgb(rgb: np.ndarray) -> np.ndarray:
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"rgb must be H x W x 3, got shape {rgb.shape}")
    return rgb


def _check_alpha(alpha: np.ndarray, size: tuple[int, ...] | None) -> np.ndarray:
    alpha = np.asarray(alpha)
    if alpha.ndim == 3 and alpha.shape[2] == 1:
        alpha = alpha[:, :, 0]
    if alpha.ndim != 2:
        raise ValueError(f"alpha must be H x W, got shape {alpha.shape}")
    if size is not None and alpha.shape != tuple(size):
        raise ValueError(f"alpha shape {alpha.shape} does not match the image {tuple(size)}")
    return alpha


def _encode(pixels: np.ndarray, suffix: str, quality: int, name: str | Path | None) -> np.ndarray:
    """Encode in memory with OpenCV (BGR order; 16 bits for PNG/TIFF).

    Encoding to bytes first and writing them ourselves also avoids OpenCV's trouble with non-ASCII
    paths on Windows.
    """
    import cv2

    parameters: list[int] = []
    if suffix in (".jpg", ".jpeg"):
        # Full-resolution chroma: 4:2:0 would smear colour across the sharp edges of a cut-out.
        parameters = [
            cv2.IMWRITE_JPEG_QUALITY,
            min(int(quality), 100),
            cv2.IMWRITE_JPEG_SAMPLING_FACTOR,
            cv2.IMWRITE_JPEG_SAMPLING_FACTOR_444,
        ]
    elif suffix == ".webp":
        parameters = [cv2.IMWRITE_WEBP_QUALITY, int(quality)]
    encoded_ok, encoded = cv2.imencode(suffix, np.ascontiguousarray(pixels), parameters)
    if not encoded_ok:
        raise MatteError(f"could not encode the image as {suffix}", name)
    return encoded


def write_bytes(path: Path, data: bytes | np.ndarray, overwrite: bool) -> Path:
    """Write encoded bytes atomically (nothing appears under ``path`` unless all of it was written; folders
    are made as needed); an existing file is kept unless ``overwrite``."""
    with atomic_output(path, overwrite) as temporary:
        try:
            with open(temporary, "wb") as stream:
                stream.write(data)
        except OSError as error:
            raise MatteError(f"cannot write ({describe_error(error)})", path) from None
    return path
