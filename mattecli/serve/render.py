"""What a ``POST /v1/matte`` request asks for, and turning a matte into the bytes it gets back.

The options mirror ``matte image`` where they make sense for a single upload: the kind of output
(``output=cutout|matte|composite``), the background colour of a composite (``bg=white`` or ``bg=#hex``), the
encoding (``format=png|webp|jpg``) and ``decontaminate``. A background is a colour only: a request can never
name a file on the server.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from mattecli.errors import MatteError
from mattecli.image.formats import ALPHA_SUFFIXES, FORMAT_NAMES, MEDIA_TYPES
from mattecli.render import OUTPUT_TAGS

#: ``output=`` -> the kind of ``matte image`` output it is (whose name tag a download carries).
KINDS = {"cutout": "rgba", "matte": "alpha", "composite": "composite"}
OUTPUTS = tuple(KINDS)
#: ``format=`` -> file suffix: the formats a browser shows (``jpeg`` is another name for ``jpg``).
FORMATS = {"png": ".png", "webp": ".webp", "jpg": ".jpg", "jpeg": ".jpg"}
PARAMETERS = ("output", "bg", "format", "decontaminate")
DEFAULT_BACKGROUND = "white"

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}
_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class RenderOptions:
    """One request's choice of output; ``background`` is an RGB colour in [0, 1] for composites."""

    output: str = "cutout"
    background: tuple[float, float, float] | None = None
    format: str = "png"
    decontaminate: bool = True

    @property
    def suffix(self) -> str:
        return FORMATS[self.format]

    @property
    def media_type(self) -> str:
        return MEDIA_TYPES[self.suffix]

    def filename(self, upload_name: str) -> str:
        """``photo.jpg`` -> ``photo.matte.png`` (``.composite``, ``.alpha`` for the other kinds), safe to
        put in a Content-Disposition header."""
        stem = upload_name.rsplit("/", 1)[-1].rsplit("\\", 1)[-1]
        stem = stem.rsplit(".", 1)[0] if "." in stem.lstrip(".") else stem
        stem = _UNSAFE_NAME.sub("_", stem).strip("._")[:80] or "image"
        return f"{stem}{OUTPUT_TAGS[KINDS[self.output]]}{self.suffix}"


def parse_options(pairs: Iterable[tuple[str, str]]) -> RenderOptions:
    """Options from query or form fields; a later value wins. Raises MatteError (HTTP 400) on an unknown
    parameter, a bad value, or a combination that cannot be written (a transparent JPEG)."""
    values: dict[str, str] = {}
    for key, value in pairs:
        if key not in PARAMETERS:
            raise MatteError(f"unknown parameter {key!r} (use {', '.join(PARAMETERS)})")
        values[key] = value.strip()
    output = values.get("output", "").lower() or ("composite" if values.get("bg") else "cutout")
    if output not in OUTPUTS:
        raise MatteError(f"output must be one of {', '.join(OUTPUTS)}, got {output!r}")
    format_name = values.get("format", "png").lower() or "png"
    if format_name not in FORMATS:
        raise MatteError(f"format must be one of png, webp, jpg, got {format_name!r}")
    background = _background(output, values.get("bg"))
    suffix = FORMATS[format_name]
    if KINDS[output] == "rgba" and suffix not in ALPHA_SUFFIXES:
        raise MatteError(
            f"{FORMAT_NAMES[suffix]} has no transparency: use format=png or webp, or bg=COLOUR for a composite"
        )
    return RenderOptions(output, background, format_name, _boolean("decontaminate", values, True))


def _background(output: str, text: str | None) -> tuple[float, float, float] | None:
    if output != "composite":
        if text:
            raise MatteError(f"bg= makes a composite; it does not apply to output={output}")
        return None
    from mattecli.compositing import parse_color

    return parse_color(text or DEFAULT_BACKGROUND)


def _boolean(name: str, values: dict[str, str], default: bool) -> bool:
    text = values.get(name, "").lower()
    if not text:
        return default
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise MatteError(f"{name} must be true or false, got {values[name]!r}")


def render(image, alpha: np.ndarray, options: RenderOptions) -> bytes:
    """Encode the requested output for a decoded upload (:class:`~mattecli.image.decoding.LoadedImage`) and
    the network's matte (H x W float32) as ``matte image`` writes it: colours are decontaminated with the
    network's matte, then the upload's own alpha channel (if any) is multiplied in, so that what was
    transparent stays transparent."""
    from mattecli.compositing import Backdrop
    from mattecli.foreground import estimate_foreground
    from mattecli.image.conversion import unit_float
    from mattecli.inference import MatteResult
    from mattecli.render import encode

    pixels = image.pixels
    foreground = pixels
    if options.decontaminate and options.output != "matte":
        # uint8 pictures get uint8 colours, converted a strip at a time (no full-size float copy).
        out = np.empty(pixels.shape, np.uint8) if pixels.dtype == np.uint8 else None
        foreground = estimate_foreground(pixels, alpha, out=out)
    if image.alpha_pixels is not None:
        alpha = alpha * unit_float(image.alpha_pixels)
    background = Backdrop(colour=options.background) if options.background is not None else None
    return encode(MatteResult(pixels, alpha, foreground), KINDS[options.output], options.suffix, background)
