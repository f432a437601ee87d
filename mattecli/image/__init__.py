"""Still images, low level: formats, conversion, reading, writing and finding image files. The ``matte image``
command's pipeline built on them is :mod:`mattecli.photo` (``video/`` is the same for clips).

Example::

    from mattecli.image import read_image, write_rgba_png
    image = read_image("portrait.jpg")                   # upright RGB codes + the file's own alpha

Modules: :mod:`~mattecli.image.formats` (the format table: what is read, what holds alpha or 16 bits),
:mod:`~mattecli.image.conversion` (codes <-> float32 in [0, 1], the one uint8 rounding),
:mod:`~mattecli.image.decoding` (files and bytes -> :class:`~mattecli.image.decoding.LoadedImage`),
:mod:`~mattecli.image.encoding` (arrays -> PNG/JPEG/WebP/TIFF/BMP bytes and atomic files),
:mod:`~mattecli.image.inputs` (files, folders and globs -> image paths), and :mod:`~mattecli.image.arrays`
(what the inference API accepts as a picture). Nothing here imports the rest of the package but
:mod:`mattecli.errors` and :mod:`mattecli.atomic`.

The names below are imported on first use (PEP 562), so that importing the package costs nothing until a
name is used.
"""

from __future__ import annotations

from mattecli.lazy_exports import lazy_exports

_EXPORTS = {
    "ALPHA_SUFFIXES": "formats",
    "IMAGE_SUFFIXES": "formats",
    "SIXTEEN_BIT_SUFFIXES": "formats",
    "STRIP_PIXELS": "conversion",
    "to_uint8": "conversion",
    "to_uint16": "conversion",
    "unit_float": "conversion",
    "MAX_PIXELS": "decoding",
    "LoadedImage": "decoding",
    "decode_image": "decoding",
    "read_image": "decoding",
    "encode_alpha": "encoding",
    "encode_rgb": "encoding",
    "encode_rgba": "encoding",
    "write_alpha": "encoding",
    "write_bytes": "encoding",
    "write_rgb": "encoding",
    "write_rgba_png": "encoding",
    "collect_inputs": "inputs",
}


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = sorted(_EXPORTS)
