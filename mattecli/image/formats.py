"""The still-image formats mattecli reads and writes, and what each can hold: the one table of them.

Decoding (which Pillow formats are accepted), input collection (which file names count as images),
encoding (which suffixes keep an alpha channel or 16 bits) and ``matte image``'s output rules all read the
sets below, so a format is added or refused in one place.
"""

from __future__ import annotations

#: Output suffix -> the format's name in messages.
FORMAT_NAMES = {
    ".png": "PNG",
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".webp": "WebP",
    ".tif": "TIFF",
    ".tiff": "TIFF",
    ".bmp": "BMP",
}

#: Suffix -> the format's media type (HTTP ``Content-Type``), for ``matte serve``'s responses.
MEDIA_TYPES = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".webp": "image/webp",
    ".tif": "image/tiff",
    ".tiff": "image/tiff",
    ".bmp": "image/bmp",
}

IMAGE_SUFFIXES = frozenset(FORMAT_NAMES)
"""File name endings treated as images when expanding folders and glob patterns (any letter case)."""

ALPHA_SUFFIXES = frozenset({".png", ".webp", ".tif", ".tiff"})
"""Formats that keep an alpha channel (cut-outs)."""

SIXTEEN_BIT_SUFFIXES = frozenset({".png", ".tif", ".tiff"})
"""Formats that keep 16 bits per channel (``--depth 16`` mattes)."""

PILLOW_FORMATS = frozenset({"JPEG", "MPO", "PNG", "WEBP", "TIFF", "BMP"})
"""Pillow's names (as a file's header says) of the formats we decode; MPO is a multi-picture JPEG."""

SUPPORTED_TEXT = "JPEG, PNG, WebP, TIFF or BMP"
"""The decodable formats, for messages."""


def normal_suffix(suffix: str) -> str:
    """``PNG``, ``.PNG`` -> ``.png`` (an empty suffix stays empty)."""
    suffix = suffix.lower()
    return suffix if suffix.startswith(".") or not suffix else "." + suffix


def suffix_list() -> str:
    """The image suffixes, sorted, for messages (".bmp, .jpeg, .jpg, ...")."""
    return ", ".join(sorted(IMAGE_SUFFIXES))
