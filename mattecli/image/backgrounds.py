"""``--bg`` for ``matte image``: a colour or an image, checked and decoded once before any image is matted.

A batch of 2,000 product shots over one backdrop decodes the backdrop once (:class:`Backdrop`), and a
missing or broken background file is one error up front, before the model loads, rather than one per
image. The compositing itself is :func:`mattecli.compositing.composite`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mattecli.errors import MatteError


@dataclass(frozen=True)
class Backdrop:
    """A ``--bg`` ready to use: one colour, or an image decoded once for the whole batch."""

    colour: tuple[float, float, float] | None = None
    image: np.ndarray | None = field(default=None, compare=False, repr=False)

    def fill(self, height: int, width: int) -> np.ndarray:
        """The background for an image of this size (an image is cover-resized, never stretched)."""
        if self.image is None:
            return np.broadcast_to(np.asarray(self.colour, np.float32), (height, width, 3))
        from mattecli.compositing import cover_resize

        return cover_resize(self.image, (height, width))


def prepare_background(spec: str) -> Backdrop:
    """Check ``--bg`` and decode a background image now, before the model loads and before any image is
    matted, so that a missing or broken file is one error up front rather than one per image."""
    from mattecli.compositing import NAMED_COLOURS, parse_color
    from mattecli.image.decoding import read_image
    from mattecli.image.formats import IMAGE_SUFFIXES

    try:
        return Backdrop(colour=parse_color(spec))
    except MatteError:
        if spec.strip().lower() in ("transparent", "none"):
            raise
    path = Path(spec).expanduser()
    if path.is_dir():
        raise MatteError("--bg is a folder; give an image file or a colour", path)
    if path.is_file():
        try:
            return Backdrop(image=read_image(path).rgb)
        except MatteError as error:
            raise MatteError(f"{error} (--bg)") from None
    if path.suffix.lower() in IMAGE_SUFFIXES or "/" in spec or os.sep in spec:
        raise MatteError("no such file (--bg)", path)
    names = ", ".join(sorted(NAMED_COLOURS))
    raise MatteError(
        f"--bg is not a colour or an image file; use a colour name ({names}), #rgb, #rrggbb or an image file",
        spec,
    )
