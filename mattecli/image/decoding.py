"""Decoding still images: every file the user can throw at us becomes one shape.

JPEG, PNG in any bit depth or colour type, WebP, TIFF and BMP become H x W x 3 RGB codes as stored (uint8,
or uint16 for 16-bit files), upright according to their EXIF orientation, plus the file's own alpha channel
when it has one (:class:`LoadedImage`). The codes are kept because a 100-megapixel photo takes 300 MB as
uint8 and 1.2 GB as float32: the rest of the pipeline converts a strip or a tile at a time
(:mod:`mattecli.image.conversion`). Anything wrong with the file (missing, empty, not an image, truncated,
too large) becomes a one-line :class:`~mattecli.errors.MatteError` naming the file, never a half-grey
picture: Pillow decodes every file fully and strictly, and 16-bit files, whose colour precision Pillow
would drop, are decoded a second time by OpenCV once Pillow has vouched for them.

OpenCV is imported inside the function that uses it so that importing this module stays cheap for the
command line's start-up.
"""

from __future__ import annotations

import contextlib
import io
import os
import stat
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from mattecli.atomic import describe_error
from mattecli.errors import MatteError, MatteWarning
from mattecli.image.conversion import unit_float
from mattecli.image.formats import PILLOW_FORMATS, SUPPORTED_TEXT

MAX_PIXELS = 178_000_000
"""Largest image we decode (about 178 megapixels, enough for 150 MP medium-format cameras). It sits
just below Pillow's own hard limit (twice ``Image.MAX_IMAGE_PIXELS``); the float32 copy of such an image
alone takes 2 GB, and anything larger is more likely a decompression bomb than a photograph."""

BOMB_RATIO = 250
"""An image whose pixels take more than this many times its file's size (and over :data:`BOMB_MIN_BYTES`)
is refused from its header as a decompression bomb: a 144-megapixel 16-bit PNG of 1.1 MB (785 : 1) used to
take 6 GB of memory. Photographs compress far less (about 2-20 : 1), so none comes near."""

BOMB_MIN_BYTES = 256_000_000
"""Below this decoded size (H x W x 3 channels x 1 or 2 bytes) any ratio is accepted: small flat graphics
compress enormously and cost little."""

_EXIF_ORIENTATION_TAG = 0x0112
_TIFF_BITS_PER_SAMPLE_TAG = 258


@dataclass
class LoadedImage:
    """A decoded image: ``pixels`` is H x W x 3 RGB as stored (uint8, or uint16 for 16-bit files),
    ``alpha_pixels`` the file's own alpha channel (H x W, same dtype) or None, ``bit_depth`` the precision per
    channel in the file (8 or 16).

    ``rgb`` and ``alpha`` are the same as float32 in [0, 1], made on each access (four bytes per channel:
    code that handles big photos should work on ``pixels``, converting a piece at a time with
    :func:`unit_float`). ``pixels`` may be read-only: an 8-bit picture is Pillow's buffer, not a copy."""

    pixels: np.ndarray
    alpha_pixels: np.ndarray | None
    bit_depth: int
    path: Path

    @property
    def rgb(self) -> np.ndarray:
        """H x W x 3 float32 in [0, 1]."""
        return unit_float(self.pixels)

    @property
    def alpha(self) -> np.ndarray | None:
        """The file's alpha channel as H x W float32 in [0, 1], or None."""
        return None if self.alpha_pixels is None else unit_float(self.alpha_pixels)

    @property
    def height(self) -> int:
        return int(self.pixels.shape[0])

    @property
    def width(self) -> int:
        return int(self.pixels.shape[1])


def read_image(path: str | Path) -> LoadedImage:
    """Decode an image file into upright RGB codes (and its alpha channel, if it has one).

    Raises MatteError naming the file when it is missing, a folder, empty, not an image, in a format
    we do not support, truncated or corrupt, or larger than :data:`MAX_PIXELS`.
    """
    path = Path(path)
    _check_is_nonempty_file(path)
    try:
        data = path.read_bytes()
    except OSError as error:
        raise MatteError(f"cannot read ({describe_error(error)})", path) from None
    return decode_image(data, path)


def decode_image(data: bytes, name: str | Path = "<stdin>") -> LoadedImage:
    """Decode an encoded image held in memory (a pipe, an upload) exactly as :func:`read_image` decodes a
    file; ``name`` is what error messages call it."""
    path = Path(name)
    if not data:
        raise MatteError("is empty (0 bytes)", name)
    try:
        with open_picture(data) as picture:
            return _decode(picture, data, path)
    except MatteError:
        raise
    except Image.DecompressionBombError:
        raise MatteError(_too_large_message(), name) from None
    except UnidentifiedImageError:
        raise MatteError(f"not an image (or not one we can read: {SUPPORTED_TEXT})", name) from None
    except (OSError, SyntaxError, ValueError, EOFError) as error:
        # Pillow reports truncated and corrupt data this way ("image file is truncated", "broken
        # PNG file", ...); include its words, they tell the user what is wrong with the file.
        raise MatteError(f"cannot decode image ({describe_error(error)})", name) from None


@contextlib.contextmanager
def open_picture(data: bytes) -> Iterator[Image.Image]:
    """Pillow's view of encoded bytes (header read, pixels not yet), without its decompression-bomb
    warning: images between Pillow's warning and error thresholds are legitimate here, our own limits are
    the guard (:data:`MAX_PIXELS`; ``matte serve``'s ``--max-megapixels``, checked on the header). Pillow's
    errors (too large, not an image, a damaged header) pass to the caller."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        with Image.open(io.BytesIO(data)) as picture:
            yield picture


def _check_is_nonempty_file(path: Path) -> None:
    """Give the precise reason before any decoder does, since decoders only say 'cannot identify'."""
    try:
        info = path.stat()
    except FileNotFoundError:
        raise MatteError("no such file", path) from None
    except OSError as error:
        raise MatteError(f"cannot read ({describe_error(error)})", path) from None
    if path.is_dir():
        raise MatteError("is a folder, not an image file", path)
    if not stat.S_ISREG(info.st_mode):  # a named pipe or device: its size says nothing
        raise MatteError("is not a regular file (a pipe or device)", path)
    if info.st_size == 0:
        raise MatteError("is an empty file (0 bytes)", path)
    if not os.access(path, os.R_OK):
        raise MatteError("cannot read (permission denied)", path)


def _decode(picture: Image.Image, data: bytes, path: Path) -> LoadedImage:
    """Check format and size from the header, then decode fully (strictly) and orient upright."""
    if picture.format not in PILLOW_FORMATS:
        raise MatteError(f"unsupported image format {picture.format} (supported: {SUPPORTED_TEXT})", path)
    width, height = picture.size
    if width * height > MAX_PIXELS:
        raise MatteError(_too_large_message(width, height), path)
    sixteen_bit = _is_sixteen_bit(picture, data)
    _check_not_a_bomb(
        width * height * max(3, len(picture.getbands())) * (2 if sixteen_bit else 1), data, path
    )
    _warn_if_several_frames(picture, path)
    orientation = _exif_orientation(picture)
    # Full decode now: Pillow raises on truncated or corrupt data (LOAD_TRUNCATED_IMAGES stays off).
    picture.load()
    if sixteen_bit:
        # Pillow's 8-bit copy (4 bytes a pixel: 576 MB at 144 MP) goes before OpenCV makes the 16-bit one.
        picture.close()
        rgb, alpha = _decode_sixteen_bit(data, path)
        bit_depth = 16
    else:
        rgb, alpha = _pillow_pixels(picture, path)
        bit_depth = 8
    picture.close()  # Pillow's own copy of the pixels (4 bytes each for RGB) is not needed any more
    rgb = _apply_orientation(rgb, orientation)
    if alpha is not None:
        alpha = _apply_orientation(alpha[:, :, None], orientation)[:, :, 0]
    return LoadedImage(pixels=rgb, alpha_pixels=alpha, bit_depth=bit_depth, path=path)


def _check_not_a_bomb(decoded_bytes: int, data: bytes, path: Path) -> None:
    """Refuse, from the header, an image that would expand far beyond what any photograph does."""
    if decoded_bytes > BOMB_MIN_BYTES and decoded_bytes > BOMB_RATIO * len(data):
        raise MatteError(
            f"decodes to {decoded_bytes / 1e6:.0f} MB from a {len(data) / 1e6:.2g} MB file "
            f"({decoded_bytes / len(data):.0f} : 1), a decompression bomb rather than a photograph "
            f"(refused above {BOMB_RATIO} : 1 and {BOMB_MIN_BYTES / 1e6:.0f} MB)",
            path,
        )


def _warn_if_several_frames(picture: Image.Image, path: Path) -> None:
    """An animated WebP, PNG or GIF or a multi-page TIFF is matted from its first frame: say so."""
    try:
        frames = int(getattr(picture, "n_frames", 1))
    except Exception:  # a damaged frame table: the full decode below reports what matters
        return
    if frames > 1:
        kind = "pages" if picture.format == "TIFF" else "frames"
        warnings.warn(MatteWarning(f"{path}: has {frames} {kind}; only the first is used"), stacklevel=2)


def _too_large_message(width: int | None = None, height: int | None = None) -> str:
    size = f" ({width} x {height} = {width * height / 1e6:.0f} MP)" if width and height else ""
    return f"image is too large{size}; the limit is {MAX_PIXELS / 1e6:.0f} megapixels"


def _exif_orientation(picture: Image.Image) -> int:
    """EXIF orientation 1-8 (1 = already upright); unreadable or out-of-range values count as 1."""
    try:
        value = picture.getexif().get(_EXIF_ORIENTATION_TAG, 1)
    except Exception:  # a corrupt EXIF block must not make an otherwise fine photo unreadable
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def _is_sixteen_bit(picture: Image.Image, data: bytes) -> bool:
    """True for 16-bit PNG and TIFF files (Pillow would silently reduce their colour to 8 bits)."""
    if picture.format == "PNG":
        header = data[:26]
        # The IHDR chunk always comes first: bit depth is byte 24 of the file.
        return len(header) == 26 and header[12:16] == b"IHDR" and header[24] == 16
    if picture.format == "TIFF":
        bits = getattr(picture, "tag_v2", {}).get(_TIFF_BITS_PER_SAMPLE_TAG, 8)
        bits = bits if isinstance(bits, tuple) else (bits,)
        return 16 in bits
    return picture.mode.startswith("I;16")


def _decode_sixteen_bit(data: bytes, path: Path) -> tuple[np.ndarray, np.ndarray | None]:
    """Decode with OpenCV, which keeps 16 bits per channel (IMREAD_UNCHANGED never rotates)."""
    import cv2

    pixels = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_UNCHANGED)
    if pixels is None or pixels.dtype not in (np.uint8, np.uint16):
        raise MatteError("cannot decode this 16-bit image", path)
    if pixels.ndim == 2:
        pixels = pixels[:, :, None]
    channels = pixels.shape[2]
    alpha = np.ascontiguousarray(pixels[:, :, channels - 1]) if channels in (2, 4) else None
    if channels in (1, 2):  # gray or gray + alpha
        return np.repeat(pixels[:, :, :1], 3, axis=2), alpha
    if channels == 3:  # BGR from OpenCV, swapped in place: no second full-size copy
        return cv2.cvtColor(pixels, cv2.COLOR_BGR2RGB, dst=pixels), None
    return cv2.cvtColor(pixels, cv2.COLOR_BGRA2RGB), alpha


def _pillow_pixels(picture: Image.Image, path: Path) -> tuple[np.ndarray, np.ndarray | None]:
    """RGB (and alpha) codes from any 8-bit Pillow mode: gray, gray + alpha, palette, RGB(A), CMYK, ..."""
    mode = picture.mode
    if mode.startswith("I;16"):  # 16-bit gray that slipped past the header check
        gray = np.asarray(picture).astype(np.uint16)
        return np.repeat(gray[:, :, None], 3, axis=2), None
    if mode in ("I", "F"):
        raise MatteError("unsupported pixel format (32 bits per channel)", path)
    has_alpha = mode in ("RGBA", "LA", "PA", "La", "RGBa") or (mode == "P" and "transparency" in picture.info)
    if mode in ("L", "LA"):
        pixels = np.asarray(picture)
        gray = pixels if pixels.ndim == 2 else pixels[:, :, 0]
        rgb = np.repeat(gray[:, :, None], 3, axis=2)
        alpha = pixels[:, :, 1] if mode == "LA" else None
        return rgb, None if alpha is None else np.ascontiguousarray(alpha)
    target = "RGBA" if has_alpha else "RGB"
    pixels = np.asarray(picture if mode == target else picture.convert(target))
    if not has_alpha:
        return pixels, None
    return np.ascontiguousarray(pixels[:, :, :3]), np.ascontiguousarray(pixels[:, :, 3])


def _apply_orientation(pixels: np.ndarray, orientation: int) -> np.ndarray:
    """Turn an H x W x C array as stored into the upright picture that EXIF ``orientation`` says.

    Same transforms as Pillow's ``ImageOps.exif_transpose`` (2: mirror, 3: rotate 180, 4: flip,
    5: transpose, 6: rotate 90 clockwise, 7: transverse, 8: rotate 90 counter-clockwise).
    """
    transforms = {
        2: lambda a: a[:, ::-1],
        3: lambda a: a[::-1, ::-1],
        4: lambda a: a[::-1],
        5: lambda a: a.swapaxes(0, 1),
        6: lambda a: np.rot90(a, k=-1),
        7: lambda a: a.swapaxes(0, 1)[::-1, ::-1],
        8: lambda a: np.rot90(a, k=1),
    }
    if orientation not in transforms:
        return np.ascontiguousarray(pixels)
    return np.ascontiguousarray(transforms[orientation](pixels))
