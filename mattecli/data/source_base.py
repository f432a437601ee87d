"""What every training source shares: the finished :class:`Sample`, the :class:`Source` interface, the
:class:`Reporter` through which bad files are reported, and the pairing of ``PRIMARY/NAME.*`` with
``alpha/NAME.*`` that pairs and composition sources have in common.

Broken files raise :class:`~mattecli.data.reading.SampleError`; the dataset reports each once (through the
Reporter) and moves on, so one truncated JPEG never ends a long run. Layout problems that make a whole
source useless (a missing or empty folder, no matte matching any image) raise
:class:`~mattecli.errors.MatteError` at construction.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from mattecli.data.augment import AugmentConfig
from mattecli.data.reading import SampleError, list_images, read_alpha, read_rgb, read_trimap
from mattecli.data.spec import SourceSpec, filter_names
from mattecli.errors import MatteError

LOG = logging.getLogger("mattecli.data")


class Reporter:
    """Reports each bad file once per process (a worker process keeps its own record): the one channel
    through which the data package says what it skipped.

    By default a report is a warning on the ``mattecli.data`` logger. A consumer that reports elsewhere
    (the trainer: its run log, from whichever worker met the file) calls :meth:`collect`; reports are then
    kept instead, for :meth:`take` to hand over."""

    def __init__(self) -> None:
        self._seen: set[str] = set()
        self._kept: list[str] | None = None

    def warn(self, path: str | Path, problem: str) -> None:
        key = str(path)
        if key in self._seen:
            return
        self._seen.add(key)
        message = f"{key}: {problem}; skipped"
        if self._kept is None:
            LOG.warning("%s", message)
        else:
            self._kept.append(message)

    def collect(self) -> None:
        """Keep reports for :meth:`take` from now on instead of logging them."""
        if self._kept is None:
            self._kept = []

    def take(self) -> list[str]:
        """The reports kept since the last call (empty unless :meth:`collect` was called)."""
        if self._kept is None:
            return []
        kept, self._kept = self._kept, []
        return kept


@dataclass
class Sample:
    """One finished sample in numpy form (float32, H x W [x 3])."""

    image: np.ndarray
    alpha: np.ndarray
    name: str
    trimap: np.ndarray | None = None


def to_float(image: np.ndarray) -> np.ndarray:
    """uint8 colour -> float32 in [0, 1]."""
    return image.astype(np.float32) * np.float32(1.0 / 255.0)


def _check_same_size(image: np.ndarray, alpha: np.ndarray, alpha_path: Path) -> None:
    if image.shape[:2] != alpha.shape[:2]:
        raise SampleError(
            alpha_path,
            f"matte is {alpha.shape[1]}x{alpha.shape[0]} but its image is {image.shape[1]}x{image.shape[0]}",
        )


def match_folders(primary: Path, alpha_dir: Path, reporter: Reporter) -> dict[str, tuple[Path, Path]]:
    """Pair ``primary/NAME.*`` with ``alpha/NAME.*``; unmatched primaries are reported and left out."""
    if not primary.is_dir():
        raise MatteError("folder not found", primary)
    images = list_images(primary)
    if not images:
        raise MatteError("no images in folder", primary)
    mattes = list_images(alpha_dir)
    pairs = {name: (path, mattes[name]) for name, path in images.items() if name in mattes}
    if not pairs:
        raise MatteError(f"no matte matches any image of {primary}", alpha_dir)
    missing = [images[name] for name in images if name not in mattes]
    if missing:
        shown = ", ".join(str(p) for p in missing[:5])
        reporter.warn(alpha_dir, f"{len(missing)} image(s) have no matte here and are left out ({shown})")
    return pairs


#: Every kind of source by its ``kind`` (what a data spec's ``kind =`` names): filled by each subclass
#: that sets one, so that a new data layout is one class (:func:`mattecli.data.sources.make_source`).
SOURCE_KINDS: dict[str, type[Source]] = {}


class Source:
    """Common interface: ``len(source)`` samples, ``load(index, ...)`` -> :class:`Sample`.

    A subclass that sets ``kind`` is the source of that kind; :meth:`open` builds it from a spec."""

    kind = ""

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        if cls.__dict__.get("kind"):
            SOURCE_KINDS[cls.kind] = cls

    @classmethod
    def open(cls, spec: SourceSpec, reporter: Reporter) -> Source:
        """The source a spec describes (a subclass that needs more than the spec overrides this)."""
        return cls(spec, reporter)

    def __init__(self, spec: SourceSpec, reporter: Reporter) -> None:
        self.spec = spec
        self.root = spec.root
        self.prefix = spec.root.name  # sample ids read like paths: "people/12", "cutouts/3@bg"
        self.reporter = reporter
        self.names: list[str] = []

    def __len__(self) -> int:
        return len(self.names)

    def load(
        self, index: int, rng: np.random.Generator, *, train: bool, size: int, cfg: AugmentConfig
    ) -> Sample:
        raise NotImplementedError


class MatteFolderSource(Source):
    """Shared by pairs and composition: ``PRIMARY/NAME.*`` + ``alpha/NAME.*`` (+ optional trimap/)."""

    primary_folders: tuple[str, ...] = ()

    def __init__(self, spec: SourceSpec, reporter: Reporter) -> None:
        super().__init__(spec, reporter)
        primary = next(
            (self.root / n for n in self.primary_folders if (self.root / n).is_dir()),
            self.root / self.primary_folders[0],
        )
        self.pairs = match_folders(primary, self.root / "alpha", reporter)
        self.names = filter_names(self.pairs, spec.include, spec.exclude, self.root)
        trimap_dir = self.root / "trimap"
        self.trimap_dir = trimap_dir if trimap_dir.is_dir() else None
        self.trimaps = list_images(trimap_dir) if self.trimap_dir else {}

    def _read(self, index: int) -> tuple[str, np.ndarray, np.ndarray]:
        name = self.names[index]
        image_path, alpha_path = self.pairs[name]
        image, alpha = read_rgb(image_path), read_alpha(alpha_path)
        _check_same_size(image, alpha, alpha_path)
        return name, image, alpha

    def _eval_trimap(
        self, name: str, matte_shape: tuple[int, ...], height: int, width: int
    ) -> np.ndarray | None:
        """The trimap resized (nearest) to the eval shape, or None when the source has no trimap/."""
        if self.trimap_dir is None:
            return None
        if name not in self.trimaps:
            raise SampleError(self.trimap_dir / name, "no trimap for this sample")
        trimap = read_trimap(self.trimaps[name])
        if trimap.shape != matte_shape:
            size = f"{trimap.shape[1]}x{trimap.shape[0]} but its matte is {matte_shape[1]}x{matte_shape[0]}"
            raise SampleError(self.trimaps[name], f"trimap is {size}")
        return cv2.resize(trimap, (width, height), interpolation=cv2.INTER_NEAREST)
