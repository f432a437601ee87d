"""One way to render a matte: the cut-out, the matte alone or a composite, as pixels or as file bytes.

Every output of a :class:`~mattecli.inference.MatteResult` is made here: ``matte image`` (and its Python
API, :func:`mattecli.photo.pipeline.encode_result`), ``matte serve`` (:func:`mattecli.serve.render.render`)
and ``MatteResult.rgba`` / ``MatteResult.composite``. ``matte video`` composites whole batches of frames in
place but with the same formula, :func:`mattecli.compositing.blend`.

The kinds are ``matte image``'s: ``"rgba"`` (the cut-out, straight alpha), ``"composite"`` (RGB over a
background) and ``"alpha"`` (the matte alone). A background is resolved once, before rendering, into a
:class:`~mattecli.compositing.Backdrop` (:func:`mattecli.compositing.read_background`), or given as an array
(one RGB colour or an H x W x 3 image, float in [0, 1], uint8 or uint16).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mattecli.compositing import Backdrop, composite
from mattecli.image.conversion import row_strips, to_uint8

KINDS = ("rgba", "composite", "alpha")
#: Tags in the names of outputs, by kind (``NAME.matte.png``): ``matte image``'s defaults, serve's downloads.
OUTPUT_TAGS = {"rgba": ".matte", "composite": ".composite", "alpha": ".alpha"}


def render(
    result, kind: str, background: Backdrop | np.ndarray | None = None, *, dtype: type | np.dtype = np.uint8
) -> np.ndarray:
    """The pixels of one kind of output of ``result`` (a :class:`~mattecli.inference.MatteResult`).

    ``"rgba"``: H x W x 4 uint8, rounded as the encoders round, so they are the written file's pixels.
    ``"composite"``: H x W x 3 as ``dtype`` (uint8, uint16 or float32 in [0, 1]) over ``background``.
    ``"alpha"``: the matte, H x W float32 in [0, 1] (its bit depth is the encoder's choice).
    """
    if kind == "alpha":
        return result.alpha
    if kind == "rgba":
        height, width = result.alpha.shape
        rgba = np.empty((height, width, 4), np.uint8)
        # A strip at a time keeps the float temporaries small whatever the image size.
        for rows in row_strips(result.alpha):
            rgba[rows, :, :3] = to_uint8(result.foreground_pixels[rows])
            rgba[rows, :, 3] = to_uint8(result.alpha[rows])
        return rgba
    if kind != "composite":
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
    if background is None:
        raise ValueError("a composite needs a background")
    if isinstance(background, Backdrop):
        background = background.pixels(*result.alpha.shape)
    return composite(result.foreground_pixels, result.alpha, background, dtype=dtype)


def encode(
    result,
    kind: str,
    suffix: str,
    background: Backdrop | np.ndarray | None = None,
    *,
    depth: int = 8,
    name: str | Path | None = None,
) -> bytes:
    """One kind of output of ``result`` encoded as ``suffix`` (``.png``, ``.jpg``, ...): the bytes of the
    file. ``depth`` (8 or 16) applies to the matte alone; ``name`` is what an encoding error names."""
    from mattecli.image.encoding import encode_alpha, encode_rgb, encode_rgba

    if kind == "alpha":
        return encode_alpha(result.alpha, suffix, depth=depth, name=name)
    if kind == "rgba":
        # The encoder rounds strip by strip straight into its BGRA buffer, as render(..., "rgba") rounds.
        return encode_rgba(result.foreground_pixels, result.alpha, suffix, name=name)
    return encode_rgb(render(result, kind, background), suffix, name=name)
