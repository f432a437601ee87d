"""Reading and writing still images safely.

Reading turns every file the user can throw at us (JPEG, PNG in any bit depth or colour type, WebP,
TIFF, BMP) into one shape: H x W x 3 RGB codes as stored (uint8, or uint16 for 16-bit files), upright
according to its EXIF orientation, plus the file's own alpha channel when it has one; ``rgb`` gives them as
float32 in [0, 1]. The codes are kept because a 100-megapixel photo takes 300 MB as uint8 and 1.2 GB as
float32: the rest of the pipeline converts a strip or a tile at a time. Anything wrong with the file (missing, empty, not an image,
truncated, too large) becomes a one-line :class:`~mattecli.errors.MatteError` naming the file, never a
half-grey picture: Pillow decodes every file fully and strictly, and 16-bit files, whose colour
precision Pillow would drop, are decoded a second time by OpenCV once Pillow has vouched for them.

Writing is atomic: a writer fills a hidden temporary file in the destination folder and moves it into
place only when it is complete, so an interrupted run never leaves a half-written picture behind, and
an existing file is never replaced unless the caller asked for it.

OpenCV is imported inside the functions that use it so that importing this module stays cheap for the
command line's start-up.
"""

from __future__ import annotations

import glob
import io
import os
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from mattecli.atomic import atomic_output, describe_error
from mattecli.errors import MatteError

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff", ".bmp"})
"""File name endings treated as images when expanding folders and glob patterns (any letter case)."""

MAX_PIXELS = 178_000_000
"""Largest image we decode (about 178 megapixels, enough for 150 MP medium-format cameras). It sits
just below Pillow's own hard limit (twice ``Image.MAX_IMAGE_PIXELS``); the float32 copy of such an image
alone takes 2 GB, and anything larger is more likely a decompression bomb than a photograph."""

STRIP_PIXELS = 1 << 20
"""Pixels per strip when converting big arrays (:func:`to_uint8`, :func:`to_uint16`): float temporaries stay
at a few MB instead of several times the image."""

_PILLOW_FORMATS = frozenset({"JPEG", "MPO", "PNG", "WEBP", "TIFF", "BMP"})  # MPO: multi-picture JPEG
_SUPPORTED_TEXT = "JPEG, PNG, WebP, TIFF or BMP"
_EXIF_ORIENTATION_TAG = 0x0112
_TIFF_BITS_PER_SAMPLE_TAG = 258
_SIXTEEN_BIT_SUFFIXES = frozenset({".png", ".tif", ".tiff"})
_ALPHA_SUFFIXES = frozenset({".png", ".webp", ".tif", ".tiff"})


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


def unit_float(values: np.ndarray) -> np.ndarray:
    """Integer codes as float32 in [0, 1]: uint8 over 255, uint16 over 65535 (multiplied by the float32
    reciprocal, the one conversion every reader and strip uses, so pieces match wholes bit for bit).
    float32 passes through unchanged (not copied), other floats are cast; other dtypes are a ValueError."""
    values = np.asarray(values)
    if values.dtype == np.uint8:
        return _to_unit(values, 255.0)
    if values.dtype == np.uint16:
        return _to_unit(values, 65535.0)
    if np.issubdtype(values.dtype, np.floating):
        return values.astype(np.float32, copy=False)
    raise ValueError(f"expected uint8, uint16 or float pixels, got {values.dtype}")


# --------------------------------------------------------------------------------------------------
# Reading


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
        with warnings.catch_warnings():
            # Images between Pillow's warning and error thresholds are legitimate here; our own
            # MAX_PIXELS check below is the guard.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as picture:
                return _decode(picture, data, path)
    except MatteError:
        raise
    except Image.DecompressionBombError:
        raise MatteError(_too_large_message(), name) from None
    except UnidentifiedImageError:
        raise MatteError(f"not an image (or not one we can read: {_SUPPORTED_TEXT})", name) from None
    except (OSError, SyntaxError, ValueError, EOFError) as error:
        # Pillow reports truncated and corrupt data this way ("image file is truncated", "broken
        # PNG file", ...); include its words, they tell the user what is wrong with the file.
        raise MatteError(f"cannot decode image ({describe_error(error)})", name) from None


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
    if info.st_size == 0:
        raise MatteError("is an empty file (0 bytes)", path)
    if not os.access(path, os.R_OK):
        raise MatteError("cannot read (permission denied)", path)


def _decode(picture: Image.Image, data: bytes, path: Path) -> LoadedImage:
    """Check format and size from the header, then decode fully (strictly) and orient upright."""
    if picture.format not in _PILLOW_FORMATS:
        raise MatteError(f"unsupported image format {picture.format} (supported: {_SUPPORTED_TEXT})", path)
    width, height = picture.size
    if width * height > MAX_PIXELS:
        raise MatteError(_too_large_message(width, height), path)
    orientation = _exif_orientation(picture)
    # Full decode now: Pillow raises on truncated or corrupt data (LOAD_TRUNCATED_IMAGES stays off).
    picture.load()
    if _is_sixteen_bit(picture, data):
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
    gray = channels in (1, 2)  # gray or gray + alpha; colour comes as BGR(A) from OpenCV
    rgb = np.repeat(pixels[:, :, :1], 3, axis=2) if gray else pixels[:, :, 2::-1]
    alpha = pixels[:, :, channels - 1] if channels in (2, 4) else None
    return np.ascontiguousarray(rgb), None if alpha is None else np.ascontiguousarray(alpha)


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


def _to_unit(values: np.ndarray, scale: float) -> np.ndarray:
    """Integer codes to contiguous float32 in [0, 1] (a new array)."""
    result = values.astype(np.float32)
    result *= np.float32(1.0 / scale)
    return result


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


# --------------------------------------------------------------------------------------------------
# Finding input files


def collect_inputs(inputs: Iterable[str], recursive: bool = True) -> list[tuple[Path, Path]]:
    """Expand files, folders and glob patterns into (image path, relative path) pairs.

    The relative path is the file's place below the folder (or the fixed part of the glob pattern)
    it was found in, so an output folder can mirror the input's sub-folders; a file named directly
    has just its name. Folders contribute files with an image suffix, skipping hidden files (editor
    and macOS "._" droppings, our own temporary files). The result is sorted by path and holds each
    file once. Raises MatteError for a path that does not exist or a folder or pattern with no images.
    """
    found: dict[Path, tuple[Path, Path]] = {}
    for text in inputs:
        for source, relative in _expand_one(text, recursive):
            found.setdefault(_identity(source), (source, relative))
    return sorted(found.values(), key=lambda pair: (str(pair[0]).lower(), str(pair[0])))


def _expand_one(text: str, recursive: bool) -> list[tuple[Path, Path]]:
    path = Path(text).expanduser()
    if path.is_file():
        return [(path, Path(path.name))]
    if path.is_dir():
        images = _images_in_folder(path, recursive)
        if not images:
            raise MatteError(f"folder contains no images ({_suffix_list()})", path)
        return images
    if glob.has_magic(text):
        images = _images_matching(text, recursive)
        if not images:
            raise MatteError(f"pattern matches no images ({_suffix_list()})", text)
        return images
    raise MatteError("no such file or folder", path)


def _images_in_folder(folder: Path, recursive: bool) -> list[tuple[Path, Path]]:
    """Image files below ``folder`` (not following symlinked folders, which can loop)."""
    images = []
    for root, folders, files in os.walk(folder):
        folders[:] = sorted(name for name in folders if not name.startswith("."))
        if not recursive:
            folders.clear()
        for name in files:
            candidate = Path(root) / name
            if _looks_like_image(candidate) and candidate.is_file():
                images.append((candidate, candidate.relative_to(folder)))
    return images


def _images_matching(pattern: str, recursive: bool) -> list[tuple[Path, Path]]:
    """Images matching a glob pattern; folders it matches are expanded like folders on the line."""
    base = _fixed_prefix(pattern)
    images = []
    for match in sorted(glob.glob(os.path.expanduser(pattern), recursive=True)):
        candidate = Path(match)
        if candidate.is_dir():
            images.extend(
                (image, _relative_to(image, base)) for image, _ in _images_in_folder(candidate, recursive)
            )
        elif candidate.is_file() and _looks_like_image(candidate):
            images.append((candidate, _relative_to(candidate, base)))
    return images


def _fixed_prefix(pattern: str) -> Path:
    """The leading folders of a glob pattern that contain no wildcard ("shots/**/*.jpg" -> shots)."""
    parts = Path(os.path.expanduser(pattern)).parts
    fixed = []
    for part in parts[:-1]:
        if glob.has_magic(part):
            break
        fixed.append(part)
    return Path(*fixed) if fixed else Path()


def _relative_to(path: Path, base: Path) -> Path:
    try:
        return path.relative_to(base)
    except ValueError:
        return Path(path.name)


def _looks_like_image(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith(".")


def _identity(path: Path) -> Path:
    """The same file reached twice (folder and glob, ./a and a) must be processed once."""
    try:
        return path.resolve()
    except OSError:
        return path.absolute()


def _suffix_list() -> str:
    return ", ".join(sorted(IMAGE_SUFFIXES))


# --------------------------------------------------------------------------------------------------
# Writing


def to_uint8(values: np.ndarray) -> np.ndarray:
    """Float in [0, 1] to uint8 with rounding and clipping (uint8 passes through, uint16 is scaled).

    Converted a strip of rows at a time: a whole 100-megapixel matte would need three float temporaries of
    400 MB each on the way."""
    values = np.asarray(values)
    if values.dtype == np.uint8:
        return values
    if values.dtype == np.uint16:
        return ((values.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)
    out = np.empty(values.shape, np.uint8)
    for rows in _strips(values):
        out[rows] = np.rint(np.clip(values[rows], 0.0, 1.0) * 255.0)
    return out


def to_uint16(values: np.ndarray) -> np.ndarray:
    """Float in [0, 1] to uint16 with rounding and clipping (uint16 passes through, uint8 is scaled)."""
    values = np.asarray(values)
    if values.dtype == np.uint16:
        return values
    if values.dtype == np.uint8:
        return values.astype(np.uint16) * 257
    out = np.empty(values.shape, np.uint16)
    for rows in _strips(values):
        out[rows] = np.rint(np.clip(values[rows], 0.0, 1.0).astype(np.float64) * 65535.0)
    return out


def _strips(values: np.ndarray) -> list[slice]:
    """Row ranges of about :data:`STRIP_PIXELS` elements each (the whole array when it has no rows)."""
    if values.ndim == 0 or len(values) == 0:
        return [slice(None)]
    rows = max(1, STRIP_PIXELS // max(1, values.size // len(values)))
    return [slice(top, top + rows) for top in range(0, len(values), rows)]


def write_rgba_png(path: str | Path, rgb: np.ndarray, alpha: np.ndarray, overwrite: bool = False) -> Path:
    """Write an 8-bit RGBA cut-out: ``rgb`` H x W x 3 and ``alpha`` H x W (float or uint8).

    PNG is the usual choice; .tif and .webp (written lossless) also keep the alpha channel.
    """
    path = Path(path)
    return _write_bytes(path, _encode_rgba(rgb, alpha, path.suffix, name=path), overwrite)


def write_alpha(path: str | Path, alpha: np.ndarray, depth: int = 8, overwrite: bool = False) -> Path:
    """Write a matte as a grayscale image; ``depth=16`` keeps full precision (PNG or TIFF only)."""
    path = Path(path)
    return _write_bytes(path, _encode_alpha(alpha, path.suffix, depth, name=path), overwrite)


def write_rgb(path: str | Path, rgb: np.ndarray, overwrite: bool = False, quality: int = 95) -> Path:
    """Write an 8-bit RGB image; the format follows the suffix (JPEG and WebP use ``quality``)."""
    path = Path(path)
    return _write_bytes(path, _encode_rgb(rgb, path.suffix, quality, name=path), overwrite)


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
    suffix = _normal_suffix(suffix)
    if suffix not in _ALPHA_SUFFIXES:
        raise MatteError("a cut-out with transparency must be saved as .png, .webp or .tif", name)
    colour = _check_rgb(rgb)
    matte = _check_alpha(alpha, colour.shape[:2])
    # Filled a strip at a time: the 8-bit BGRA picture is the only full-size array made here.
    bgra = np.empty((*colour.shape[:2], 4), np.uint8)
    for rows in _strips(colour):
        bgra[rows, :, :3] = to_uint8(colour[rows])[:, :, ::-1]
        bgra[rows, :, 3] = to_uint8(matte[rows])
    return _encode(bgra, suffix, quality=101, name=name)  # WebP above 100 means lossless


def _encode_alpha(alpha: np.ndarray, suffix: str, depth: int, name: str | Path | None) -> np.ndarray:
    suffix = _normal_suffix(suffix)
    if depth not in (8, 16):
        raise ValueError(f"depth must be 8 or 16, got {depth}")
    if suffix not in IMAGE_SUFFIXES:
        raise MatteError(f"cannot tell the image format from the name (use {_suffix_list()})", name)
    if depth == 16 and suffix not in _SIXTEEN_BIT_SUFFIXES:
        raise MatteError("a 16-bit matte must be saved as .png or .tif", name)
    matte = _check_alpha(alpha, None)
    pixels = to_uint16(matte) if depth == 16 else to_uint8(matte)
    return _encode(pixels, suffix, quality=101, name=name)


def _encode_rgb(rgb: np.ndarray, suffix: str, quality: int, name: str | Path | None) -> np.ndarray:
    suffix = _normal_suffix(suffix)
    if suffix not in IMAGE_SUFFIXES:
        raise MatteError(f"cannot tell the image format from the name (use {_suffix_list()})", name)
    if not 1 <= quality <= 100:
        raise ValueError(f"quality must be between 1 and 100, got {quality}")
    colour = _check_rgb(rgb)
    bgr = np.empty(colour.shape, np.uint8)
    for rows in _strips(colour):
        bgr[rows] = to_uint8(colour[rows])[:, :, ::-1]
    return _encode(bgr, suffix, quality=quality, name=name)


def _normal_suffix(suffix: str) -> str:
    suffix = suffix.lower()
    return suffix if suffix.startswith(".") or not suffix else "." + suffix


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


def _write_bytes(path: Path, data: bytes | np.ndarray, overwrite: bool) -> Path:
    """Write encoded bytes atomically (nothing appears under ``path`` unless all of it was written)."""
    with atomic_output(path, overwrite) as temporary:
        try:
            with open(temporary, "wb") as stream:
                stream.write(data)
        except OSError as error:
            raise MatteError(f"cannot write ({describe_error(error)})", path) from None
    return path
