"""The three kinds of training sources, by layout: ``pairs`` (photo + matte) here, ``composition`` and
``cutouts`` in :mod:`mattecli.data.composites`; :func:`make_source` builds the one a spec describes,
looked up by each class's ``kind`` (:data:`~mattecli.data.source_base.SOURCE_KINDS`).

A source turns an index into one finished numpy sample (``image`` H x W x 3 float32 in [0, 1], ``alpha``
H x W float32, optionally ``trimap``). Photometric augmentation and tensor conversion are left to the
dataset, which treats every source alike. What sources share is in :mod:`mattecli.data.source_base`.
"""

from __future__ import annotations

import numpy as np

import mattecli.data.composites  # noqa: F401  (registers the composition and cutouts kinds)
from mattecli.data.augment import AugmentConfig, eval_shape, random_geometry, resize_sample
from mattecli.data.source_base import SOURCE_KINDS, MatteFolderSource, Reporter, Sample, Source, to_float
from mattecli.data.spec import SourceSpec
from mattecli.errors import MatteError


class PairSource(MatteFolderSource):
    """``image/NAME.*`` + ``alpha/NAME.*``: real photos with their mattes (P3M-10k, AM-2k layout)."""

    kind = "pairs"
    primary_folders = ("image", "images")

    def load(
        self, index: int, rng: np.random.Generator, *, train: bool, size: int, cfg: AugmentConfig
    ) -> Sample:
        name, image, alpha = self._read(index)
        if train:
            (image,), alpha = random_geometry([image], alpha, size, rng, cfg)
            return Sample(to_float(image), alpha, f"{self.prefix}/{name}")
        height, width = eval_shape(*alpha.shape, size)
        return Sample(
            to_float(resize_sample(image, width, height, is_alpha=False)),
            resize_sample(alpha, width, height, is_alpha=True),
            f"{self.prefix}/{name}",
            self._eval_trimap(name, alpha.shape, height, width),
        )


def make_source(spec: SourceSpec, reporter: Reporter) -> Source:
    """Build the source a spec describes, looked up by its kind (layout checks happen here, once)."""
    if not spec.root.is_dir():
        raise MatteError("data folder not found", spec.root)
    return SOURCE_KINDS[spec.resolved_kind].open(spec, reporter)
