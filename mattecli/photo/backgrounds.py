"""``--bg`` for ``matte image``: a colour or an image, checked and decoded once before any image is matted.

A batch of 2,000 product shots over one backdrop decodes the backdrop once (:class:`Backdrop`), and a
missing or broken background file is one error up front, before the model loads, rather than one per
image. What a background may be is read in one place, :func:`mattecli.compositing.read_background` (the
same rules for ``matte video`` and ``Matter.composite``); the compositing itself is
:func:`mattecli.compositing.composite`.
"""

from __future__ import annotations

from mattecli.compositing import Backdrop, read_background

__all__ = ["Backdrop", "prepare_background"]


def prepare_background(spec: str) -> Backdrop:
    """Check ``--bg`` and decode a background image now, before the model loads and before any image is
    matted, so that a missing or broken file is one error up front (naming ``--bg``) rather than one per
    image."""
    return read_background(spec, option="--bg")
