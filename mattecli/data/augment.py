"""Training augmentation (geometric + photometric) and the deterministic eval resize.

The geometric part follows the paper (random crops of several sizes resized to the training size, rotation
up to +-15 degrees, horizontal flips), adapted to our small photos: crop sides are fractions of the image's
short side rather than fixed 512/800 pixels, and half of the crops are centred on the transition region
(0.05 < alpha < 0.95), the only place where the fusion network gets a gradient. Every geometric step is
applied identically to all colour layers and to the matte; photometric steps (colour jitter, noise, blur,
JPEG artefacts) touch the image only, because the matte of a noisier photo is the same matte.

Cost matters more than elegance here (decoding and resizing dominate a CPU training step), so a crop is
cut out *before* it is resized, shrinking uses ``INTER_AREA`` and colour stays ``uint8`` until the end.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from mattecli.image.conversion import to_uint8

# The transition region is the losses' (the paper's code's thresholds): crops are centred where they act.
from mattecli.transition_band import in_loss_transition

_RANGE_FIELDS = ("noise_sigma", "blur_sigma", "jpeg_quality", "cutout_height", "cutout_count")
_INT_RANGE_FIELDS = ("jpeg_quality", "cutout_count")
_PROB_FIELDS = (
    "transition_crop_prob",
    "rotation_prob",
    "flip_prob",
    "jitter_prob",
    "noise_prob",
    "blur_prob",
    "jpeg_prob",
    "cutout_bottom_cut_prob",
)


@dataclass(frozen=True)
class AugmentConfig:
    """Knobs of the training augmentation (eval mode ignores all of them).

    Attributes:
        crop_fractions: Crop sides as fractions of the image's short side, one picked per sample.
        max_upscale: Crops are never smaller than ``size / max_upscale`` pixels (when the image allows),
            so small photos are not blown up into blur.
        transition_crop_prob: Probability that a crop is centred on a transition pixel.
        rotation_prob, max_rotation: Probability of a rotation and its largest angle in degrees.
        flip_prob: Probability of a horizontal flip.
        jitter_prob, brightness, contrast, saturation, hue: Colour jitter; factors are drawn from
            ``1 +- brightness`` etc.; ``hue`` is the largest hue shift as a fraction of a full turn.
        noise_prob, noise_sigma: Gaussian noise with a standard deviation drawn from ``noise_sigma``.
        blur_prob, blur_sigma: Gaussian blur with a sigma (pixels) drawn from ``blur_sigma``.
        jpeg_prob, jpeg_quality: JPEG re-encoding with a quality drawn from ``jpeg_quality``.
        cutout_height: Height of a pasted cut-out as a fraction of the crop's height.
        cutout_bottom_cut_prob, cutout_bottom_cut: Probability that a cut-out runs off the bottom edge
            (as in half-length portraits) and the largest fraction of its height that is cut.
        cutout_count: How many cut-outs one training composite holds, drawn from ``[low, high]``. Above
            1, random other cut-outs of the same source are pasted in front of the first, so the model
            sees groups and people overlapping (its worst case when trained on single figures only).
    """

    crop_fractions: tuple[float, ...] = (0.5, 0.75, 1.0)
    max_upscale: float = 2.0
    transition_crop_prob: float = 0.5
    rotation_prob: float = 0.5
    max_rotation: float = 15.0
    flip_prob: float = 0.5
    jitter_prob: float = 0.8
    brightness: float = 0.25
    contrast: float = 0.25
    saturation: float = 0.3
    hue: float = 0.03
    noise_prob: float = 0.3
    noise_sigma: tuple[float, float] = (0.005, 0.03)
    blur_prob: float = 0.2
    blur_sigma: tuple[float, float] = (0.3, 1.2)
    jpeg_prob: float = 0.3
    jpeg_quality: tuple[int, int] = (40, 95)
    cutout_height: tuple[float, float] = (0.3, 0.9)
    cutout_bottom_cut_prob: float = 0.3
    cutout_bottom_cut: float = 0.25
    cutout_count: tuple[int, int] = (1, 1)

    def __post_init__(self) -> None:
        fractions = tuple(float(f) for f in self.crop_fractions)
        if not fractions or not all(0.0 < f <= 1.0 for f in fractions):
            raise ValueError("crop_fractions must be a non-empty list of numbers in (0, 1]")
        object.__setattr__(self, "crop_fractions", fractions)
        for name in _RANGE_FIELDS:
            low, high = getattr(self, name)
            if not 0 <= low <= high:
                raise ValueError(f"{name} must be [low, high] with 0 <= low <= high")
            cast = int if name in _INT_RANGE_FIELDS else float
            object.__setattr__(self, name, (cast(low), cast(high)))
        for name in _PROB_FIELDS:
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be a probability in [0, 1]")
        if self.max_upscale < 1.0 or not 0.0 <= self.max_rotation < 45.0:
            raise ValueError("max_upscale must be >= 1 and max_rotation in [0, 45)")
        if self.jpeg_quality[1] > 100 or not 0 < self.cutout_height[1] <= 1.0:
            raise ValueError("jpeg_quality must be within 0..100 and cutout_height within (0, 1]")
        if self.cutout_count[0] < 1:
            raise ValueError("cutout_count must be [low, high] with 1 <= low <= high")

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> AugmentConfig:
        """Build from a TOML table; unknown keys are rejected so typos do not pass silently."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown augment keys: {', '.join(unknown)}")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})

    def replace(self, **changes: Any) -> AugmentConfig:
        """A copy with some fields changed."""
        return dataclasses.replace(self, **changes)

    def geometric_only(self) -> AugmentConfig:
        """The same geometry with every photometric step switched off (tests, debugging)."""
        return self.replace(jitter_prob=0.0, noise_prob=0.0, blur_prob=0.0, jpeg_prob=0.0)


def eval_shape(height: int, width: int, size: int) -> tuple[int, int]:
    """(H, W) for eval: long side = ``size``, short side the nearest multiple of 32 (at least 32)."""
    if size < 32 or size % 32:
        raise ValueError(f"eval size must be a positive multiple of 32, got {size}")
    if height >= width:
        return size, max(32, round(width * size / height / 32) * 32)
    return max(32, round(height * size / width / 32) * 32), size


def resize_sample(array: np.ndarray, width: int, height: int, *, is_alpha: bool) -> np.ndarray:
    """Resize one layer of a training or eval sample (colour or matte; width, then height): area averaging
    when shrinking, cubic (colour) or linear (alpha) when enlarging. Inference's resize is
    :func:`mattecli.tiling.resize` (height, then width)."""
    if array.shape[1] == width and array.shape[0] == height:
        return array
    enlarge = cv2.INTER_LINEAR if is_alpha else cv2.INTER_CUBIC
    shrinking = width * height < array.shape[0] * array.shape[1]
    flags = cv2.INTER_AREA if shrinking else enlarge
    out = cv2.resize(array, (width, height), interpolation=flags)
    return np.clip(out, 0.0, 1.0) if is_alpha else out


def _pick_centre(
    alpha: np.ndarray, side: float, half_extent: float, rng: np.random.Generator, cfg: AugmentConfig
) -> tuple[float, float]:
    """Crop centre (x, y): on a random transition pixel (jittered) part of the time, else uniform.

    The centre is clamped so the (rotated) crop stays inside the image. The jitter of at most side/4 per
    axis keeps the chosen pixel inside the crop's inscribed circle; clamping moves the window towards the
    image edge next to the pixel, so an axis-aligned crop always keeps it (a rotated one may lose it only
    when the pixel sits in one of the image's corners, outside every rotated square that fits).
    """
    height, width = alpha.shape
    centre = None
    if rng.random() < cfg.transition_crop_prob:
        candidates = np.flatnonzero(in_loss_transition(alpha))
        if candidates.size:
            y, x = divmod(int(candidates[rng.integers(candidates.size)]), width)
            jitter = rng.uniform(-side / 4, side / 4, size=2)
            centre = (x + 0.5 + jitter[0], y + 0.5 + jitter[1])
    if centre is None:
        centre = (rng.uniform(0, width), rng.uniform(0, height))
    cx = min(max(centre[0], half_extent), width - half_extent)
    cy = min(max(centre[1], half_extent), height - half_extent)
    return cx, cy


def random_geometry(
    colours: list[np.ndarray],
    alpha: np.ndarray,
    size: int,
    rng: np.random.Generator,
    cfg: AugmentConfig,
) -> tuple[list[np.ndarray], np.ndarray]:
    """Crop, rotate, resize and flip colour layers and their matte identically to ``size`` x ``size``.

    Args:
        colours: H x W x 3 uint8 layers (the image, or a foreground and its background).
        alpha: H x W float32 matte in [0, 1] (also used to find transition pixels).
        size: Output side in pixels.
    """
    height, width = alpha.shape
    short = min(height, width)
    side = short * float(cfg.crop_fractions[rng.integers(len(cfg.crop_fractions))])
    side = max(side, min(float(short), size / cfg.max_upscale))
    angle = 0.0
    if cfg.max_rotation > 0 and rng.random() < cfg.rotation_prob:
        angle = float(rng.uniform(-cfg.max_rotation, cfg.max_rotation))
    radians = math.radians(angle)
    extent = abs(math.cos(radians)) + abs(math.sin(radians))  # bounding box of the rotated square
    side = max(1.0, min(side, short / extent))
    cx, cy = _pick_centre(alpha, side, side * extent / 2, rng, cfg)
    if angle == 0.0:
        colours, alpha = _axis_aligned_crop(colours, alpha, cx, cy, side, size)
    else:
        colours, alpha = _rotated_crop(colours, alpha, cx, cy, side, angle, size)
    if rng.random() < cfg.flip_prob:
        colours = [np.ascontiguousarray(c[:, ::-1]) for c in colours]
        alpha = np.ascontiguousarray(alpha[:, ::-1])
    return colours, alpha


def _axis_aligned_crop(
    colours: list[np.ndarray], alpha: np.ndarray, cx: float, cy: float, side: float, size: int
) -> tuple[list[np.ndarray], np.ndarray]:
    """Integer square crop around (cx, cy), then one resize (no resampling beyond that)."""
    height, width = alpha.shape
    n = max(1, min(round(side), height, width))
    x0 = min(max(round(cx - n / 2), 0), width - n)
    y0 = min(max(round(cy - n / 2), 0), height - n)
    window = (slice(y0, y0 + n), slice(x0, x0 + n))
    out = [resize_sample(c[window], size, size, is_alpha=False) for c in colours]
    return out, resize_sample(alpha[window], size, size, is_alpha=True)


def _rotated_crop(
    colours: list[np.ndarray],
    alpha: np.ndarray,
    cx: float,
    cy: float,
    side: float,
    angle: float,
    size: int,
) -> tuple[list[np.ndarray], np.ndarray]:
    """Cut the rotated square's bounding box, resize it to the target scale, then rotate and crop."""
    height, width = alpha.shape
    half = side * (abs(math.cos(math.radians(angle))) + abs(math.sin(math.radians(angle)))) / 2
    x0, x1 = max(0, math.floor(cx - half)), min(width, math.ceil(cx + half))
    y0, y1 = max(0, math.floor(cy - half)), min(height, math.ceil(cy + half))
    scale = size / side
    out_w, out_h = max(1, round((x1 - x0) * scale)), max(1, round((y1 - y0) * scale))
    sx, sy = out_w / (x1 - x0), out_h / (y1 - y0)
    centre = ((cx - x0) * sx, (cy - y0) * sy)
    matrix = cv2.getRotationMatrix2D(centre, angle, 1.0)
    matrix[:, 2] += (size / 2 - centre[0], size / 2 - centre[1])

    def warp(array: np.ndarray, is_alpha: bool) -> np.ndarray:
        scaled = resize_sample(array[y0:y1, x0:x1], out_w, out_h, is_alpha=is_alpha)
        return cv2.warpAffine(
            scaled, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101
        )

    return [warp(c, False) for c in colours], np.clip(warp(alpha, True), 0.0, 1.0)


def photometric(image: np.ndarray, rng: np.random.Generator, cfg: AugmentConfig) -> np.ndarray:
    """Colour jitter, blur, noise and JPEG artefacts on an H x W x 3 float32 image in [0, 1].

    The order mimics a camera pipeline: colour first, then optics (blur), sensor noise, compression.
    """
    image = np.ascontiguousarray(image, dtype=np.float32)
    if rng.random() < cfg.jitter_prob:
        image = cv2.transform(image, _colour_matrix(float(image.mean()), rng, cfg))
    if rng.random() < cfg.blur_prob:
        sigma = float(rng.uniform(*cfg.blur_sigma))
        if sigma > 0:
            image = cv2.GaussianBlur(image, (0, 0), sigma)
    if rng.random() < cfg.noise_prob:
        noise = rng.standard_normal(image.shape, dtype=np.float32)
        noise *= np.float32(rng.uniform(*cfg.noise_sigma))
        image = image + noise
    image = np.clip(image, 0.0, 1.0, out=image)
    if rng.random() < cfg.jpeg_prob:
        quality = int(rng.integers(cfg.jpeg_quality[0], cfg.jpeg_quality[1] + 1))
        image = _jpeg(image, quality)
    return image


#: Luminance weights of the hue rotation below (the SVG/CSS ``hue-rotate`` filter).
_HUE_LUMA = np.array([0.213, 0.715, 0.072])
_GREY = np.array([0.299, 0.587, 0.114])


def _colour_matrix(mean: float, rng: np.random.Generator, cfg: AugmentConfig) -> np.ndarray:
    """Brightness, contrast, saturation and hue changes folded into one 3 x 4 affine colour matrix.

    All four are linear in RGB, so one ``cv2.transform`` applies them in a single pass (several times
    cheaper than separate passes plus an HSV round trip). Contrast pulls towards the image's mean grey.
    """
    brightness = rng.uniform(1 - cfg.brightness, 1 + cfg.brightness)
    contrast = rng.uniform(1 - cfg.contrast, 1 + cfg.contrast)
    saturation = rng.uniform(1 - cfg.saturation, 1 + cfg.saturation)
    angle = rng.uniform(-cfg.hue, cfg.hue) * 2 * np.pi
    saturate = saturation * np.eye(3) + (1 - saturation) * np.outer(np.ones(3), _GREY)
    cos, sin = np.cos(angle), np.sin(angle)
    luma = np.outer(np.ones(3), _HUE_LUMA)
    rotate_sin = np.array([[-0.213, -0.715, 0.928], [0.143, 0.140, -0.283], [-0.787, 0.715, 0.072]])
    hue = luma + cos * (np.eye(3) - luma) + sin * rotate_sin
    linear = contrast * brightness * hue @ saturate
    offset = (1 - contrast) * brightness * mean  # rows of hue and saturate sum to 1: grey stays grey
    return np.hstack([linear, np.full((3, 1), offset)]).astype(np.float32)


def _jpeg(image: np.ndarray, quality: int) -> np.ndarray:
    """Round-trip through the JPEG codec (in BGR order, as the codec's YCbCr conversion expects)."""
    bgr = cv2.cvtColor(to_uint8(image, half_up=True), cv2.COLOR_RGB2BGR)
    ok, encoded = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:  # pragma: no cover - the codec does not fail on valid uint8 input
        return image
    decoded = cv2.imdecode(encoded, cv2.IMREAD_COLOR)
    return cv2.cvtColor(decoded, cv2.COLOR_BGR2RGB).astype(np.float32) * np.float32(1.0 / 255.0)
