"""Sources that composite: foregrounds over random backgrounds (``composition``) and RGBA cut-outs pasted
onto them (``cutouts``), and the :class:`BackgroundPool` they draw from.

Where a cut-out goes, or which background sits behind a foreground, is specific to the layout, so the
geometric augmentation and the compositing happen here. Foreground over background is
:func:`mattecli.compositing.composite`, the equation ``matte image`` uses; cut-outs are pasted with
premultiplied colour and the "over" operator (:func:`paste_cutout`), since a group of them builds its alpha
up layer by layer.
"""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np

from mattecli.compositing import composite
from mattecli.data.augment import AugmentConfig, eval_shape, random_geometry, resize_sample
from mattecli.data.reading import SampleError, list_images, read_rgb, read_rgba
from mattecli.data.source_base import MatteFolderSource, Reporter, Sample, Source, to_float
from mattecli.data.spec import BACKGROUND_FOLDERS, RGBA_SUFFIXES, SourceSpec, filter_names
from mattecli.errors import MatteError

#: Backgrounds behind training composites are random crops covering this fraction of the largest
#: crop of the right shape: some zoom variety without blowing small photos up too far.
TRAIN_BACKGROUND_ZOOM = (0.5, 1.0)


class BackgroundPool:
    """Background photos for compositing; unreadable ones are reported once and never tried again."""

    def __init__(self, folder: Path, spec: SourceSpec, reporter: Reporter) -> None:
        if not folder.is_dir():
            raise MatteError("background folder not found", folder)
        images = list_images(folder)
        if not images:
            raise MatteError("no background images in folder", folder)
        names = filter_names(images, spec.backgrounds_include, spec.backgrounds_exclude, folder)
        self.folder = folder
        self.paths = [images[name] for name in names]
        self.reporter = reporter
        self.bad: set[int] = set()

    def __len__(self) -> int:
        return len(self.paths)

    def read_random(self, rng: np.random.Generator) -> tuple[str, np.ndarray]:
        """(name, H x W x 3 uint8) of a random readable background."""
        start = int(rng.integers(len(self.paths)))
        for step in range(len(self.paths)):
            index = (start + step) % len(self.paths)
            if index in self.bad:
                continue
            try:
                return self.paths[index].stem, read_rgb(self.paths[index])
            except SampleError as error:
                self.reporter.warn(error.path, error.problem)
                self.bad.add(index)
        raise MatteError("none of the background images can be read", self.folder)

    @staticmethod
    def fit(
        background: np.ndarray,
        rng: np.random.Generator,
        height: int,
        width: int,
        zoom: tuple[float, float] = (1.0, 1.0),
        flip: bool = False,
    ) -> np.ndarray:
        """Cover-resize + random crop: a random crop of the target aspect, resized to height x width.

        ``zoom`` is the crop's size relative to the largest crop of that aspect that fits.
        """
        bg_h, bg_w = background.shape[:2]
        fit_scale = min(bg_w / width, bg_h / height) * float(rng.uniform(*zoom))
        crop_w = min(bg_w, max(1, round(width * fit_scale)))
        crop_h = min(bg_h, max(1, round(height * fit_scale)))
        x0 = int(rng.integers(bg_w - crop_w + 1))
        y0 = int(rng.integers(bg_h - crop_h + 1))
        crop = background[y0 : y0 + crop_h, x0 : x0 + crop_w]
        if flip and rng.random() < 0.5:
            crop = crop[:, ::-1]
        return np.ascontiguousarray(resize_sample(crop, width, height, is_alpha=False))


def open_backgrounds(spec: SourceSpec, reporter: Reporter, kind: str) -> BackgroundPool:
    """The backgrounds of a ``kind`` source: ``backgrounds = "FOLDER"``, else a ``bg/`` folder beside it."""
    folder = spec.backgrounds or next(
        (spec.root / n for n in BACKGROUND_FOLDERS if (spec.root / n).is_dir()), None
    )
    if folder is None:
        raise MatteError(
            f'a {kind} source needs backgrounds: set backgrounds = "FOLDER" or add a bg/ folder',
            spec.root,
        )
    return BackgroundPool(folder, spec, reporter)


class CompositionSource(MatteFolderSource):
    """``fg/NAME.*`` + ``alpha/NAME.*`` composited onto random backgrounds (Deep Image Matting)."""

    kind = "composition"
    primary_folders = ("fg",)

    def __init__(self, spec: SourceSpec, reporter: Reporter, backgrounds: BackgroundPool) -> None:
        super().__init__(spec, reporter)
        self.backgrounds = backgrounds

    @classmethod
    def open(cls, spec: SourceSpec, reporter: Reporter) -> CompositionSource:
        return cls(spec, reporter, open_backgrounds(spec, reporter, cls.kind))

    def load(
        self, index: int, rng: np.random.Generator, *, train: bool, size: int, cfg: AugmentConfig
    ) -> Sample:
        name, foreground, alpha = self._read(index)
        trimap = None
        if train:
            # The background is independent of the foreground, so it is cut straight at the output
            # size instead of being resized to the foreground and augmented with it (cheaper, same law).
            (foreground,), alpha = random_geometry([foreground], alpha, size, rng, cfg)
            height = width = size
        else:
            height, width = eval_shape(*alpha.shape, size)
            trimap = self._eval_trimap(name, alpha.shape, height, width)
            foreground = resize_sample(foreground, width, height, is_alpha=False)
            alpha = resize_sample(alpha, width, height, is_alpha=True)
        bg_name, background = self.backgrounds.read_random(rng)
        zoom = TRAIN_BACKGROUND_ZOOM if train else (1.0, 1.0)
        background = self.backgrounds.fit(background, rng, height, width, zoom, flip=train)
        image = composite(foreground, alpha, background)
        return Sample(image, alpha, f"{self.prefix}/{name}@{bg_name}", trimap)


class CutoutSource(Source):
    """RGBA cut-outs pasted at a random scale and position onto random backgrounds.

    The real cut-outs are small (about 100 x 220 px) next to the backgrounds, so instead of cropping the
    composite the cut-out is scaled to cover ``cfg.cutout_height`` of the output's height and placed at a
    random position (sometimes running off the bottom edge, as in half-length portraits); rotation and
    flips are applied to the cut-out, whose transparent surroundings make borders a non-issue. With
    ``cfg.cutout_count`` above one, a training composite is a group: more cut-outs pasted back to front.
    """

    kind = "cutouts"

    @classmethod
    def open(cls, spec: SourceSpec, reporter: Reporter) -> CutoutSource:
        return cls(spec, reporter, open_backgrounds(spec, reporter, cls.kind))

    def __init__(self, spec: SourceSpec, reporter: Reporter, backgrounds: BackgroundPool) -> None:
        super().__init__(spec, reporter)
        if not self.root.is_dir():
            raise MatteError("folder not found", self.root)
        files = {
            name: path
            for name, path in list_images(self.root).items()
            if path.suffix.lower() in RGBA_SUFFIXES
        }
        if not files:
            raise MatteError("no RGBA cut-outs (*.png) in folder", self.root)
        self.files = files
        self.names = filter_names(files, spec.include, spec.exclude, self.root)
        self.backgrounds = backgrounds

    def load(
        self, index: int, rng: np.random.Generator, *, train: bool, size: int, cfg: AugmentConfig
    ) -> Sample:
        names = [self.names[index]]
        if train and cfg.cutout_count[1] > 1:
            extra = int(rng.integers(cfg.cutout_count[0], cfg.cutout_count[1] + 1)) - 1
            names += [self.names[int(i)] for i in rng.integers(len(self.names), size=extra)]
        cutouts = [self._read_cropped(name) for name in names]
        bg_name, background = self.backgrounds.read_random(rng)
        if train:
            height = width = size
            zoom = TRAIN_BACKGROUND_ZOOM
        else:
            height, width = eval_shape(*background.shape[:2], size)
            zoom = (1.0, 1.0)
        background = self.backgrounds.fit(background, rng, height, width, zoom, flip=train)
        image, coverage = to_float(background), np.zeros((height, width), np.float32)
        for rgb, alpha in cutouts:  # back to front: each later cut-out stands in front of the others
            image, coverage = paste_cutout(rgb, alpha, image, coverage, rng, cfg, augment=train)
        group = f"+{len(names) - 1}" if len(names) > 1 else ""
        return Sample(image, coverage, f"{self.prefix}/{names[0]}{group}@{bg_name}")

    def _read_cropped(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """(colour, alpha) of a cut-out, cropped to the bounding box of its visible pixels."""
        rgb, alpha = read_rgba(self.files[name])
        rows, cols = np.nonzero(alpha > 0)
        if rows.size == 0:
            raise SampleError(self.files[name], "cut-out is fully transparent")
        window = (slice(rows.min(), rows.max() + 1), slice(cols.min(), cols.max() + 1))
        return rgb[window], alpha[window]


def paste_cutout(
    rgb: np.ndarray,
    alpha: np.ndarray,
    image: np.ndarray,
    coverage: np.ndarray,
    rng: np.random.Generator,
    cfg: AugmentConfig,
    *,
    augment: bool,
) -> tuple[np.ndarray, np.ndarray]:
    """Composite a (tightly cropped) cut-out over ``image``; returns the new (image, coverage), float32.

    ``coverage`` is the alpha of everything pasted so far (zeros over a bare background): the "over"
    operator gives the group's alpha ``a + (1 - a) * coverage``. Colour is premultiplied by alpha before
    any resampling so that the cut-out's transparent pixels (whose colour is arbitrary) never bleed into
    its edge.
    """
    height, width = image.shape[:2]
    premultiplied = to_float(rgb) * alpha[..., None]
    if augment and rng.random() < cfg.flip_prob:
        premultiplied, alpha = premultiplied[:, ::-1], alpha[:, ::-1]
    cut_h, cut_w = alpha.shape
    scale = float(rng.uniform(*cfg.cutout_height)) * height / cut_h
    scale = min(scale, 0.95 * width / cut_w)
    new_w, new_h = max(1, round(cut_w * scale)), max(1, round(cut_h * scale))
    premultiplied = resize_sample(np.ascontiguousarray(premultiplied), new_w, new_h, is_alpha=True)
    alpha = resize_sample(np.ascontiguousarray(alpha), new_w, new_h, is_alpha=True)
    if augment and cfg.max_rotation > 0 and rng.random() < cfg.rotation_prob:
        angle = float(rng.uniform(-cfg.max_rotation, cfg.max_rotation))
        premultiplied, alpha = _rotate_expanded([premultiplied, alpha], angle)
    cut_h, cut_w = alpha.shape
    x = int(rng.integers(min(0, width - cut_w), max(0, width - cut_w) + 1))
    if rng.random() < cfg.cutout_bottom_cut_prob:
        y = height - cut_h + round(float(rng.uniform(0, cfg.cutout_bottom_cut)) * cut_h)
    else:
        y = int(rng.integers(min(0, height - cut_h), max(0, height - cut_h) + 1))
    alpha_canvas = np.zeros((height, width), np.float32)
    colour_canvas = np.zeros((height, width, 3), np.float32)
    top, left = max(y, 0), max(x, 0)
    bottom, right = min(y + cut_h, height), min(x + cut_w, width)
    if bottom > top and right > left:
        source = (slice(top - y, bottom - y), slice(left - x, right - x))
        alpha_canvas[top:bottom, left:right] = alpha[source]
        colour_canvas[top:bottom, left:right] = premultiplied[source]
    image = colour_canvas + (1.0 - alpha_canvas[..., None]) * image
    coverage = alpha_canvas + (1.0 - alpha_canvas) * coverage
    return np.clip(image, 0.0, 1.0), coverage


def _rotate_expanded(layers: list[np.ndarray], angle: float) -> list[np.ndarray]:
    """Rotate about the centre onto a canvas large enough to keep every corner (transparent fill)."""
    height, width = layers[0].shape[:2]
    cos, sin = abs(math.cos(math.radians(angle))), abs(math.sin(math.radians(angle)))
    new_w, new_h = math.ceil(width * cos + height * sin), math.ceil(width * sin + height * cos)
    matrix = cv2.getRotationMatrix2D((width / 2, height / 2), angle, 1.0)
    matrix[:, 2] += (new_w / 2 - width / 2, new_h / 2 - height / 2)
    return [
        np.clip(
            cv2.warpAffine(layer, matrix, (new_w, new_h), flags=cv2.INTER_LINEAR, borderValue=0),
            0.0,
            1.0,
        )
        for layer in layers
    ]
