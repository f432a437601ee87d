"""Putting a cut-out onto something: colours, background images, checkerboards and preview sheets.

The arithmetic is float32 in [0, 1] (images H x W x 3, alpha H x W or H x W x 1) until the final
:func:`to_uint8` / :func:`to_uint16`, so compositing never rounds twice. Inputs may also be uint8 or uint16
codes (scaled by their range, not taken as floats): big photos are kept as uint8, and
``composite(..., dtype=np.uint8)`` works a strip of rows at a time, so a 100-megapixel composite needs no
full-size float temporaries.
"""

from __future__ import annotations

import functools
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mattecli.errors import MatteError
from mattecli.image.conversion import to_uint8, to_uint16, unit_float
from mattecli.image.decoding import read_image
from mattecli.image.formats import IMAGE_SUFFIXES

__all__ = [
    "NAMED_COLOURS",
    "Backdrop",
    "blend",
    "checkerboard",
    "composite",
    "cover_resize",
    "parse_color",
    "preview_sheet",
    "read_background",
    "resolve_background",
    "to_uint8",
    "to_uint16",
]

NAMED_COLOURS: dict[str, tuple[int, int, int]] = {
    # CSS colour keywords (so "green" is the web's #008000; "lime" is pure #00ff00).
    "white": (255, 255, 255),
    "black": (0, 0, 0),
    "red": (255, 0, 0),
    "green": (0, 128, 0),
    "lime": (0, 255, 0),
    "blue": (0, 0, 255),
    "navy": (0, 0, 128),
    "gray": (128, 128, 128),
    "grey": (128, 128, 128),
    "silver": (192, 192, 192),
    "yellow": (255, 255, 0),
    "cyan": (0, 255, 255),
    "aqua": (0, 255, 255),
    "magenta": (255, 0, 255),
    "fuchsia": (255, 0, 255),
    "orange": (255, 165, 0),
    "purple": (128, 0, 128),
    "pink": (255, 192, 203),
    "brown": (165, 42, 42),
    "teal": (0, 128, 128),
    "maroon": (128, 0, 0),
    "olive": (128, 128, 0),
}

CHECKER_LIGHT = 0.8
CHECKER_DARK = 0.6
MAX_PREVIEW_WIDTH = 3000
"""A preview sheet wider than this is scaled down: it is for looking at, not for measuring."""

STRIP_PIXELS = 1 << 20
"""Pixels per strip when compositing into integers: the float temporaries stay at a few MB."""

_OUTPUT_DTYPES = {np.dtype(np.uint8): to_uint8, np.dtype(np.uint16): to_uint16, np.dtype(np.float32): None}

_HEX = re.compile(r"#?([0-9a-f]{3}|[0-9a-f]{6})")
_COLOUR_NAMES = ", ".join(sorted(NAMED_COLOURS))


def parse_color(text: str) -> tuple[float, float, float]:
    """RGB in [0, 1] from a CSS colour name or a hex code (#rgb / #rrggbb, the '#' optional)."""
    key = text.strip().lower()
    if key in NAMED_COLOURS:
        return _unit(NAMED_COLOURS[key])
    if key in ("transparent", "none"):
        raise MatteError("a background must be opaque; leave the background out to keep transparency", text)
    match = _HEX.fullmatch(key)
    if match is None:
        raise MatteError(f"not a colour; use a name ({_COLOUR_NAMES}), #rgb or #rrggbb", text)
    digits = match.group(1)
    if len(digits) == 3:
        digits = "".join(digit * 2 for digit in digits)
    return _unit(tuple(int(digits[i : i + 2], 16) for i in (0, 2, 4)))


def _unit(code: tuple[int, ...]) -> tuple[float, float, float]:
    red, green, blue = (value / 255.0 for value in code)
    return red, green, blue


@dataclass(frozen=True)
class Backdrop:
    """A background ready to use: one colour, or an image decoded once (for a whole batch or clip)."""

    colour: tuple[float, float, float] | None = None
    image: np.ndarray | None = field(default=None, compare=False, repr=False)

    def fill(self, height: int, width: int) -> np.ndarray:
        """The background for a frame of this size: a colour broadcast (a read-only view), or the image
        cover-resized (a new array, never stretched)."""
        if self.image is None:
            return np.broadcast_to(np.asarray(self.colour, np.float32), (height, width, 3))
        return cover_resize(self.image, (height, width))

    def pixels(self, height: int, width: int) -> np.ndarray:
        """What :func:`composite` takes for a frame of this size: a colour as one RGB value (float32, 3),
        which it broadcasts without a full-size copy, or the image cover-resized."""
        if self.image is None:
            return np.asarray(self.colour, np.float32)
        return cover_resize(self.image, (height, width))


def read_background(spec: str, option: str | None = None) -> Backdrop:
    """The one reading of "a colour or an image file" (``--bg``, ``Matter.composite``, ``matte video``).

    A colour wins over a file of the same name (write ./white to mean the file); "transparent" and "none"
    are refused (a background is opaque); a folder, a missing file and an unreadable image are one-line
    errors. ``option`` names the command-line option in the messages (``"--bg"``); None words them for
    the Python API. The image is decoded once per path and modification time (:func:`_decoded`).
    """
    try:
        return Backdrop(colour=parse_color(spec))
    except MatteError:
        if spec.strip().lower() in ("transparent", "none"):
            raise
    path = Path(spec).expanduser()
    if path.is_dir():
        raise MatteError(f"{option or 'the background'} is a folder; give an image file or a colour", path)
    if path.is_file():
        try:
            return Backdrop(image=_decoded(path, path.resolve(), path.stat().st_mtime_ns))
        except MatteError as error:
            raise MatteError(f"{error} ({option})" if option else str(error)) from None
    if path.suffix.lower() in IMAGE_SUFFIXES or os.sep in spec or "/" in spec:
        raise MatteError(f"no such file ({option})" if option else "no such background image", path)
    problem = f"{option} is not a colour or an image file" if option else "not a background"
    raise MatteError(f"{problem}; use a colour name ({_COLOUR_NAMES}), #rgb, #rrggbb or an image file", spec)


def resolve_background(spec: str, size: tuple[int, int]) -> np.ndarray:
    """An H x W x 3 float32 background (a new, writable array) from a colour or an image path (``size`` is
    (h, w)), read by :func:`read_background`: an image is scaled to cover the frame and centre-cropped."""
    return np.ascontiguousarray(read_background(spec).fill(*size))


@functools.lru_cache(maxsize=2)
def _decoded(path: Path, resolved: Path, mtime_ns: int) -> np.ndarray:
    """Decode a background image once per batch (keyed by the file and its modification time), not once
    per photo: 2,000 product shots over one backdrop would otherwise decode it 2,000 times. ``path`` is the
    name the user gave (what a message says); ``resolved`` and ``mtime_ns`` make the key exact."""
    del resolved, mtime_ns  # part of the cache key only
    loaded = read_image(path)
    _check_opaque(loaded)
    image = loaded.rgb
    image.setflags(write=False)
    return image


def _check_opaque(loaded) -> None:
    """A background with transparent pixels is refused: the colours hidden under them (often black, or
    whatever the editor left there) would show in the composite, and which flat colour the user wants them
    to be is theirs to say. An alpha channel that is fully opaque, as many PNGs carry, is fine."""
    alpha = loaded.alpha_pixels
    if alpha is None:
        return
    full = np.iinfo(alpha.dtype).max if alpha.dtype.kind in "ui" else 1.0
    see_through = int(np.count_nonzero(alpha < full))
    if see_through:
        share = 100.0 * see_through / alpha.size
        raise MatteError(
            f"the background image has transparent pixels ({share:.2g} % of it); a background must be "
            "opaque: flatten it onto a colour first",
            loaded.path,
        )


def cover_resize(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Scale ``image`` uniformly so it covers ``size`` (h, w), then crop the centre to exactly that."""
    import cv2

    height, width = size
    source_height, source_width = image.shape[:2]
    scale = max(height / source_height, width / source_width)
    # ceil (minus a hair for float noise) so the scaled image is never a pixel short of the frame.
    scaled_width = max(width, math.ceil(source_width * scale - 1e-6))
    scaled_height = max(height, math.ceil(source_height * scale - 1e-6))
    if (scaled_height, scaled_width) != (source_height, source_width):
        interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
        image = cv2.resize(image, (scaled_width, scaled_height), interpolation=interpolation)
    top = (scaled_height - height) // 2
    left = (scaled_width - width) // 2
    return np.array(image[top : top + height, left : left + width], dtype=np.float32)  # a writable copy


def composite(
    fg: np.ndarray, alpha: np.ndarray, bg: np.ndarray, *, dtype: type | np.dtype = np.float32
) -> np.ndarray:
    """``alpha * fg + (1 - alpha) * bg`` as ``dtype`` (float32 in [0, 1], or rounded uint8 / uint16).

    ``fg`` is H x W x 3, ``alpha`` H x W or H x W x 1, ``bg`` an H x W x 3 image or one RGB colour; each may
    be float in [0, 1], uint8 or uint16 (scaled by its range). Raises ValueError for shapes that do not
    match and for other dtypes. Integer output is computed a strip of rows at a time and equals
    ``to_uint8(composite(...))`` exactly.
    """
    output = np.dtype(dtype)
    if output not in _OUTPUT_DTYPES:
        raise ValueError(f"dtype must be uint8, uint16 or float32, got {output}")
    fg, alpha, bg = np.asarray(fg), np.asarray(alpha), np.asarray(bg)
    if alpha.ndim == 3 and alpha.shape[2] == 1:
        alpha = alpha[:, :, 0]
    if fg.ndim != 3 or fg.shape[2] != 3:
        raise ValueError(f"foreground must be H x W x 3, got shape {fg.shape}")
    if alpha.shape != fg.shape[:2]:
        raise ValueError(f"alpha shape {alpha.shape} does not match foreground shape {fg.shape}")
    if bg.shape not in ((3,), fg.shape):
        raise ValueError(
            f"background must be one RGB colour or H x W x 3 like the foreground, got {bg.shape}"
        )
    colour = unit_float(bg) if bg.ndim == 1 else None
    rounding = _OUTPUT_DTYPES[output]
    if rounding is None:
        return _mix(unit_float(fg), unit_float(alpha), colour if colour is not None else unit_float(bg))
    out = np.empty(fg.shape, output)
    rows = max(1, STRIP_PIXELS // max(1, fg.shape[1]))
    for top in range(0, fg.shape[0], rows):
        strip = slice(top, top + rows)
        background = colour if colour is not None else unit_float(bg[strip])
        out[strip] = rounding(_mix(unit_float(fg[strip]), unit_float(alpha[strip]), background))
    return out


def _mix(fg: np.ndarray, alpha: np.ndarray, bg: np.ndarray) -> np.ndarray:
    return blend(fg, alpha, bg)


def blend(fg: np.ndarray, alpha: np.ndarray, bg: np.ndarray) -> np.ndarray:
    """The compositing equation, ``bg + alpha * (fg - bg)``, in float32 on float32 values in [0, 1]: the one
    formula every caller gets (:func:`composite`, ``matte video``'s batches of frames). ``alpha`` has one
    axis fewer than ``fg`` (H x W, or N x H x W for frames); ``bg`` broadcasts against ``fg``. One
    temporary array, worked on in place."""
    mix = np.subtract(fg, bg, dtype=np.float32)
    mix *= alpha[..., None]
    mix += bg
    return mix


def checkerboard(h: int, w: int, square: int = 16) -> np.ndarray:
    """The usual light/dark grey 'transparent' pattern, H x W x 3 float32, light in the top-left."""
    rows = (np.arange(h) // square)[:, None]
    columns = (np.arange(w) // square)[None, :]
    light = (rows + columns) % 2 == 0
    pattern = np.where(light, np.float32(CHECKER_LIGHT), np.float32(CHECKER_DARK))
    return np.repeat(pattern[:, :, None], 3, axis=2).astype(np.float32)


def preview_sheet(image: np.ndarray, alpha: np.ndarray, fg: np.ndarray) -> np.ndarray:
    """Input | matte | cut-out on a checkerboard, side by side, as uint8 RGB.

    Same height as the input unless the three panels together would be wider than
    :data:`MAX_PREVIEW_WIDTH`, in which case everything is scaled down first (cheaper, and it keeps
    the checkerboard squares a readable size).
    """
    image, fg, alpha = np.asarray(image), np.asarray(fg), np.asarray(alpha)
    if alpha.ndim == 3:
        alpha = alpha[:, :, 0]
    height, width = image.shape[:2]
    if 3 * width > MAX_PREVIEW_WIDTH:
        scale = MAX_PREVIEW_WIDTH / (3 * width)
        new_size = (max(1, round(width * scale)), max(1, round(height * scale)))
        image, fg, alpha = (_shrink(x, new_size) for x in (image, fg, alpha))
        height, width = image.shape[:2]
    image, fg, alpha = unit_float(image), unit_float(fg), unit_float(alpha)
    matte = np.repeat(alpha[:, :, None], 3, axis=2)
    cut_out = composite(fg, alpha, checkerboard(height, width))
    return to_uint8(np.concatenate([image, matte, cut_out], axis=1))


def _shrink(values: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Area-resize to ``size`` (w, h) one channel at a time, each made float only while it is resized:
    a preview of a 100 MP photo then never holds the photo as float32 (OpenCV's area filter gives the same
    numbers per channel as on all channels at once)."""
    import cv2

    planes = values[:, :, None] if values.ndim == 2 else values
    out = np.empty((size[1], size[0], planes.shape[2]), np.float32)
    for channel in range(planes.shape[2]):
        plane = np.ascontiguousarray(unit_float(planes[:, :, channel]))
        out[:, :, channel] = cv2.resize(plane, size, interpolation=cv2.INTER_AREA)
    return out[:, :, 0] if values.ndim == 2 else out
