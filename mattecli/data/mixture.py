"""The torch Dataset over a weighted mixture of sources, its collate function and worker seeding.

Training draws each sample's source by weight and its item at random, from a generator seeded by the
dataset seed and, inside a DataLoader worker, by that worker's torch seed. Torch derives the worker seeds
from the DataLoader's generator, so a fixed seed gives the same batches run after run for a given number
of workers, and different augmentations every epoch. Evaluation is a plain concatenation of the sources with
a generator seeded by the index, so a validation set of composites is the same every time it is read.
"""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset, get_worker_info

from mattecli.data.augment import AugmentConfig, photometric
from mattecli.data.reading import SampleError
from mattecli.data.source_base import Reporter, Sample, Source
from mattecli.data.sources import make_source
from mattecli.data.spec import DataSpec, load_data_spec
from mattecli.errors import MatteError


def _entropy(*parts: int) -> list[int]:
    """Seed parts as the non-negative integers SeedSequence requires (negative seeds are allowed)."""
    return [int(part) & (2**64 - 1) for part in parts]


class MatteDataset(Dataset):
    """Samples from several sources as dicts of tensors (see :func:`build_dataset`)."""

    def __init__(
        self,
        sources: list[Source],
        weights: list[float],
        *,
        size: int,
        train: bool,
        seed: int = 0,
        epoch_length: int | None = None,
        augment: AugmentConfig | None = None,
        reporter: Reporter | None = None,
        where: Path | None = None,
    ) -> None:
        if not sources:
            raise MatteError("a data set needs at least one source", where)
        self.sources = sources
        self.probabilities = np.asarray(weights, dtype=np.float64) / float(np.sum(weights))
        self.offsets = np.cumsum([0] + [len(s) for s in sources])
        self.total = int(self.offsets[-1])
        self.size = size
        self.train = train
        self.seed = seed
        self.epoch_length = epoch_length
        self.augment = augment or AugmentConfig()
        self.reporter = reporter or Reporter()
        self.where = where
        self.bad: set[int] = set()
        self._rng: np.random.Generator | None = None
        self._rng_owner: int | None = None

    def __len__(self) -> int:
        if self.train and self.epoch_length is not None:
            return self.epoch_length
        return self.total

    def generator(self) -> np.random.Generator:
        """The training generator of this process (re-seeded once inside each DataLoader worker)."""
        info = get_worker_info()
        owner = None if info is None else int(info.seed)
        if self._rng is None or owner != self._rng_owner:
            parts = (self.seed,) if owner is None else (self.seed, owner)
            self._rng = np.random.default_rng(_entropy(*parts))
            self._rng_owner = owner
        return self._rng

    def reseed(self, seed: int) -> None:
        """Draw the next training augmentations from a generator seeded by ``seed`` and the data seed.

        A trainer that wants a sample's augmentation to depend only on a key of its own (for example
        (seed, epoch, position), to resume mid-epoch or split batches over processes) calls this right
        before reading the sample. The generator stays in use in this process or worker until the next
        call.
        """
        info = get_worker_info()
        self._rng = np.random.default_rng(_entropy(self.seed, seed))
        self._rng_owner = None if info is None else int(info.seed)

    def _locate(self, position: int) -> tuple[int, int]:
        """Global position -> (source number, index inside that source)."""
        source = int(np.searchsorted(self.offsets, position, side="right")) - 1
        return source, position - int(self.offsets[source])

    def _draw(self, index: int, rng: np.random.Generator) -> int:
        """The global position a training index stands for."""
        if len(self.sources) == 1:
            return index % self.total
        source = int(rng.choice(len(self.sources), p=self.probabilities))
        return int(self.offsets[source]) + int(rng.integers(len(self.sources[source])))

    def __getitem__(self, index: int) -> dict:
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for a data set of {len(self)}")
        if self.train:
            rng = self.generator()
            return self._load_first_good(self._draw(index, rng), rng)
        return self._load_first_good(index, None)

    def _load_first_good(self, position: int, rng: np.random.Generator | None) -> dict:
        """Load ``position``, or the next loadable one after it; a broken file is reported once."""
        for step in range(self.total):
            current = (position + step) % self.total
            if current in self.bad:
                continue
            source_number, local = self._locate(current)
            item_rng = rng if rng is not None else np.random.default_rng(_entropy(self.seed, current))
            try:
                sample = self.sources[source_number].load(
                    local, item_rng, train=self.train, size=self.size, cfg=self.augment
                )
            except SampleError as error:
                self.reporter.warn(error.path, error.problem)
                self.bad.add(current)
                continue
            return self._finish(sample, item_rng)
        raise MatteError("no sample of the data set can be read (see the warnings above)", self.where)

    def _finish(self, sample: Sample, rng: np.random.Generator) -> dict:
        """Photometric augmentation (training only) and conversion to C x H x W tensors."""
        image = sample.image
        if self.train:
            image = photometric(image, rng, self.augment)
        item = {
            "image": torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1), np.float32)),
            "alpha": torch.from_numpy(np.ascontiguousarray(sample.alpha[None], np.float32)),
            "name": sample.name,
        }
        if sample.trimap is not None and not self.train:
            item["trimap"] = torch.from_numpy(np.ascontiguousarray(sample.trimap[None], np.float32))
        return item


def build_dataset(
    spec: DataSpec | str | Path,
    *,
    size: int,
    train: bool,
    seed: int = 0,
    epoch_length: int | None = None,
    augment: AugmentConfig | None = None,
) -> MatteDataset:
    """A dataset of dicts: ``image`` 3 x H x W and ``alpha`` 1 x H x W in [0, 1], ``name``, maybe ``trimap``.

    Args:
        spec: A :class:`DataSpec`, a TOML spec file, or a data folder (layout auto-detected).
        size: Training: side of the square crops. Eval: long side of the resized image (multiple of 32;
            the short side becomes the nearest multiple of 32, so batch eval items one at a time).
        train: Random augmented crops (True) or whole images, deterministic (False).
        seed: Seeds augmentation and, in eval, each composite's background and placement.
        epoch_length: Training samples per epoch (default: the spec's value, else the sum of the sources'
            lengths). Ignored in eval, which visits every sample of every source once.
        augment: Overrides the spec's augmentation settings.
    """
    if not isinstance(spec, DataSpec):
        spec = load_data_spec(spec)
    if train and size < 8:
        raise MatteError(f"training crop size must be at least 8 pixels, got {size}")
    if not train and (size < 32 or size % 32):
        raise MatteError(f"eval size must be a positive multiple of 32, got {size}")
    if epoch_length is not None and epoch_length <= 0:
        raise MatteError(f"epoch_length must be positive, got {epoch_length}")
    reporter = Reporter()
    sources = [make_source(source, reporter) for source in spec.sources]
    return MatteDataset(
        sources,
        [source.weight for source in spec.sources],
        size=size,
        train=train,
        seed=seed,
        epoch_length=epoch_length if epoch_length is not None else spec.epoch_length,
        augment=augment or spec.augment,
        reporter=reporter,
        where=spec.path,
    )


def collate(batch: list[dict]) -> dict:
    """Stack tensors, gather names into a list; keys missing from some items are dropped."""
    if not batch:
        raise ValueError("cannot collate an empty batch")
    keys = set(batch[0]).intersection(*batch[1:])
    out: dict = {"name": [item["name"] for item in batch]} if "name" in keys else {}
    for key in sorted(keys - {"name"}):
        shapes = {tuple(item[key].shape) for item in batch}
        if len(shapes) > 1:
            raise ValueError(
                f"cannot batch {key!r} of different shapes {sorted(shapes)}; "
                "eval images keep their aspect ratio, so evaluate with batch_size=1"
            )
        out[key] = torch.stack([item[key] for item in batch])
    return out


def worker_init_fn(worker_id: int) -> None:
    """Seed a DataLoader worker from its torch seed.

    The dataset re-seeds its own generator in each worker anyway; this also seeds ``random`` and numpy's
    global generator for any code that uses them. It deliberately leaves OpenCV's thread count alone:
    ``cv2.setNumThreads`` in a forked worker deadlocks when the parent's OpenCV thread pool was idle at
    fork time (seen with OpenCV 5.0); to limit threads, call it in the main process before the workers
    start.
    """
    info = get_worker_info()
    seed = int(info.seed) if info is not None else int(torch.initial_seed())
    random.seed(seed)
    np.random.seed(seed % 2**32)
    dataset = info.dataset if info is not None else None
    if isinstance(dataset, MatteDataset):
        dataset.generator()
