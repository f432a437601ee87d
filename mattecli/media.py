"""Old home of still-image reading and writing, now :mod:`mattecli.image` (decoding, encoding, inputs,
conversion): these names are re-exported from there.

Temporary: the lead removes it at merge (other branches still import ``mattecli.media``).
"""

from __future__ import annotations

from mattecli.image.conversion import STRIP_PIXELS, to_uint8, to_uint16, unit_float
from mattecli.image.decoding import MAX_PIXELS, LoadedImage, decode_image, read_image
from mattecli.image.encoding import (
    encode_alpha,
    encode_rgb,
    encode_rgba,
    write_alpha,
    write_rgb,
    write_rgba_png,
)
from mattecli.image.formats import IMAGE_SUFFIXES
from mattecli.image.inputs import collect_inputs

__all__ = [
    "IMAGE_SUFFIXES",
    "MAX_PIXELS",
    "STRIP_PIXELS",
    "LoadedImage",
    "collect_inputs",
    "decode_image",
    "encode_alpha",
    "encode_rgb",
    "encode_rgba",
    "read_image",
    "to_uint8",
    "to_uint16",
    "unit_float",
    "write_alpha",
    "write_rgb",
    "write_rgba_png",
]
