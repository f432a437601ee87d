"""What the inference API accepts as a picture, checked once at the door.

:meth:`~mattecli.inference.Matter.matte` takes an image path, a :class:`~mattecli.image.decoding.LoadedImage`
or an H x W x 3 (RGB) / H x W x 4 (RGBA) array of uint8, uint16 or float in [0, 1]. The functions here turn
all of them into the form the inference code keeps (integer codes as they are, float as float32 clipped to
[0, 1]) or raise a one-line :class:`~mattecli.errors.MatteError` saying what is wrong. Integer codes are
kept, not converted, because a 100-megapixel photo is 300 MB as uint8 and 1.2 GB as float32.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from mattecli.errors import MatteError
from mattecli.image.conversion import row_strips, unit_float
from mattecli.image.decoding import LoadedImage, read_image


def as_pixels(image: object) -> tuple[np.ndarray, np.ndarray | None]:
    """(H x W x 3 RGB, H x W alpha or None) from a path, a LoadedImage or an RGB(A) array."""
    if isinstance(image, (str, os.PathLike)):
        image = read_image(Path(image))
    if isinstance(image, LoadedImage):
        return image.pixels, image.alpha_pixels
    if not isinstance(image, np.ndarray):
        raise MatteError(
            "expected an image path, a LoadedImage or an H x W x 3 (RGB) or H x W x 4 (RGBA) numpy array, "
            f"got {type(image).__name__}"
        )
    if image.ndim != 3 or image.shape[-1] not in (3, 4):
        raise MatteError(f"expected an H x W x 3 (RGB) or H x W x 4 (RGBA) image, got shape {image.shape}")
    pixels = check_rgb(image[:, :, :3])
    if image.shape[-1] == 3:
        return pixels, None
    return pixels, check_codes(image[:, :, 3])


def check_rgb(image: object) -> np.ndarray:
    """The picture as the inference code keeps it: uint8 and uint16 as they are, float as float32 in [0, 1]
    (clipped into a copy only when it strays slightly out of range). Raises MatteError for a wrong type,
    shape or dtype, an empty image, NaN, or float values well outside [0, 1] (such as 0..255)."""
    if not isinstance(image, np.ndarray):
        raise MatteError(f"expected an H x W x 3 numpy array, got {type(image).__name__}")
    if image.ndim != 3 or image.shape[-1] != 3:
        raise MatteError(f"expected an H x W x 3 RGB image, got shape {image.shape}")
    return check_codes(image)


#: How far outside [0, 1] float input may stray (resampling overshoot) before it is refused; it is clipped.
FLOAT_SLACK = 0.05


def check_codes(values: np.ndarray) -> np.ndarray:
    """An image or alpha plane: non-empty, uint8/uint16 (kept) or float in [0, 1] (float32; within
    :data:`FLOAT_SLACK` of the range clipped, further out refused; no NaN)."""
    if values.shape[0] == 0 or values.shape[1] == 0:
        raise MatteError(f"image is empty ({values.shape[0]} x {values.shape[1]} pixels)")
    if values.dtype in (np.uint8, np.uint16):
        return values
    if not np.issubdtype(values.dtype, np.floating):
        raise MatteError(f"image must be uint8, uint16 or float in [0, 1], got {values.dtype}")
    low, high = values.min(), values.max()  # NaN anywhere makes both NaN
    if np.isnan(low) or np.isnan(high):
        raise MatteError("image contains NaN values")
    if low < -FLOAT_SLACK or high > 1 + FLOAT_SLACK:
        # Most often 8-bit codes as float (0..255), which would matte as a white, blown-out picture.
        raise MatteError(
            f"a float image must hold values in [0, 1], got {float(low):g} to {float(high):g} "
            "(divide 8-bit codes by 255, or pass the uint8 array)"
        )
    values = values.astype(np.float32, copy=False)
    # float32 already in [0, 1] is used as it is: a copy of a 100 MP float picture is 1.2 GB.
    return np.clip(values, 0.0, 1.0) if low < 0 or high > 1 else values


def multiply_alpha(alpha: np.ndarray, input_alpha: np.ndarray) -> None:
    """``alpha *= input alpha`` in place, a strip at a time (uint8/uint16/float input alpha)."""
    for rows in row_strips(alpha):
        alpha[rows] *= unit_float(input_alpha[rows])
