"""Still images: ``matte image`` and the reading, writing and planning behind it (``video/`` is the same
for clips).

Example::

    from mattecli import Matter
    from mattecli.image import OutputOptions, plan_jobs, read_image, run_jobs, write_rgba_png
    image = read_image("portrait.jpg")                   # upright RGB codes + the file's own alpha
    summary = run_jobs(Matter(), plan_jobs(["shots/"], "cut/", OutputOptions()), OutputOptions())

Modules: :mod:`~mattecli.image.formats` (the format table: what is read, what holds alpha or 16 bits),
:mod:`~mattecli.image.conversion` (codes <-> float32 in [0, 1], the one uint8 rounding),
:mod:`~mattecli.image.decoding` (files and bytes -> :class:`~mattecli.image.decoding.LoadedImage`),
:mod:`~mattecli.image.encoding` (arrays -> PNG/JPEG/WebP/TIFF/BMP bytes and atomic files),
:mod:`~mattecli.image.inputs` (files, folders and globs -> image paths), :mod:`~mattecli.image.arrays`
(what the inference API accepts as a picture), :mod:`~mattecli.image.outputs` (``matte image``'s output
options, format rules and names), :mod:`~mattecli.image.backgrounds` (``--bg``),
:mod:`~mattecli.image.planning` (inputs -> jobs, refused before the model loads) and
:mod:`~mattecli.image.pipeline` (running the jobs).

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
    "OUTPUT_TAGS": "outputs",
    "OutputOptions": "outputs",
    "check_output_options": "outputs",
    "format_refusal": "outputs",
    "is_own_output": "outputs",
    "preview_path": "outputs",
    "Backdrop": "backgrounds",
    "prepare_background": "backgrounds",
    "STDIN": "planning",
    "STDOUT": "planning",
    "ImageJob": "planning",
    "plan_jobs": "planning",
    "BatchSummary": "pipeline",
    "encode_result": "pipeline",
    "process_image": "pipeline",
    "run_jobs": "pipeline",
}


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = sorted(_EXPORTS)
