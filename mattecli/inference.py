"""The inference API: ``Matter`` turns RGB images into alpha mattes (and clean foreground colours).

Resolution policy (as in the paper): the network sees the image resized, not padded, so that both sides are
multiples of 32 and the long side is ``max_size``; the matte is resized back to the original size. Images
larger than about twice the working size are then refined at full resolution in overlapping tiles: the
global pass decides what is foreground, and only the uncertain band around its edges takes the
full-resolution prediction. Tiles are blended with linear ramps over their overlaps, so there are no seams,
and memory stays bounded by the tile size whatever the image size.

Example::

    from mattecli import Matter
    matter = Matter()                      # bundled default model, best device
    result = matter.matte("portrait.jpg")
    rgba = result.rgba()                    # H x W x 4 uint8
"""

from __future__ import annotations

import copy
import math
import os
from collections.abc import Iterator
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from mattecli.device import default_half, pick_device
from mattecli.errors import MatteError
from mattecli.models import STRIDE, LateFusionNet
from mattecli.models.fuse import fuse_batchnorm
from mattecli.registry import resolve_model
from mattecli.weights import load_weights

#: Refine at full resolution when the long side exceeds this multiple of the working size.
REFINE_FACTOR = 2.0
TILE_SIZE = 1024
TILE_OVERLAP = 128
#: Coarse alpha outside [LOW, HIGH] counts as certain; the band of uncertain pixels gets refined.
CERTAIN_LOW, CERTAIN_HIGH = 0.02, 0.98


@dataclass
class MatteResult:
    """One image's matte. Arrays are float32 in [0, 1]: ``image`` and ``foreground`` H x W x 3,
    ``alpha`` H x W. ``foreground`` is the decontaminated colour, or the image itself when
    decontamination was off."""

    image: np.ndarray
    alpha: np.ndarray
    foreground: np.ndarray

    def rgba(self) -> np.ndarray:
        """The cut-out as H x W x 4 uint8 (straight, not premultiplied, alpha as PNG expects)."""
        height, width = self.alpha.shape
        rgba = np.empty((height, width, 4), np.uint8)
        # One channel at a time keeps the float temporaries at a quarter of a full RGBA float image.
        for channel, plane in enumerate((*np.moveaxis(self.foreground, -1, 0), self.alpha)):
            rgba[..., channel] = np.clip(plane * 255.0 + 0.5, 0, 255)
        return rgba

    def composite(self, background: str | np.ndarray) -> np.ndarray:
        """The cut-out over a colour (name or hex), an image path, or an H x W x 3 float array."""
        from mattecli.compositing import composite, resolve_background

        if isinstance(background, str):
            background = resolve_background(background, self.alpha.shape[:2])
        return composite(self.foreground, self.alpha, background)


def working_size(height: int, width: int, max_size: int) -> tuple[int, int]:
    """Network input size for an image: sides multiples of 32, long side ``max_size`` (or the image's own
    long side rounded up to 32 when it is smaller), aspect ratio kept as closely as the grid allows."""
    long_side = min(max_size, math.ceil(max(height, width) / STRIDE) * STRIDE)
    scale = long_side / max(height, width)
    return (
        max(STRIDE, round(height * scale / STRIDE) * STRIDE),
        max(STRIDE, round(width * scale / STRIDE) * STRIDE),
    )


class Matter:
    """A loaded matting model on a device, with the image and video resolution policy built in.

    Args:
        model: A built-in name (``default``, ``lite``, see ``matte models``), a ``.safetensors`` path, or an
            already built :class:`~mattecli.models.LateFusionNet`.
        device: ``auto`` (CUDA, then MPS, then CPU), or a torch device string.
        max_size: Long side of the network input; defaults to the model config's ``default_size``.
        half: Run in float16 autocast; defaults to True on CUDA only.
        tile_size: Tile side for full-resolution refinement (a multiple of 32).
        refine: Refine large images at full resolution (``None``: when larger than twice the working size).
        tta: Test-time augmentation: also run the mirrored image and average the two mattes. Twice the
            network time; on the default model's held-out photos mask IoU +0.008 and MSE -7 %, on its cut-out
            composites IoU -0.005 (weights/README.md), so it is off by default.
    """

    def __init__(
        self,
        model: str | os.PathLike[str] | LateFusionNet = "default",
        device: str | torch.device = "auto",
        max_size: int | None = None,
        half: bool | None = None,
        tile_size: int = TILE_SIZE,
        refine: bool | None = None,
        tta: bool = False,
    ) -> None:
        self.device = pick_device(device)
        if isinstance(model, LateFusionNet):
            # A copy: BN folding below must not change the caller's (possibly still training) network.
            self.net, self.model_name = copy.deepcopy(model).eval(), model.config.name
        else:
            path = resolve_model(model)
            self.net, self.model_name = load_weights(path), str(model)
        self.net = fuse_batchnorm(self.net.eval())
        # channels_last lets oneDNN (CPU) and cuDNN (GPU) pick their fastest convolution kernels: about
        # 15 % faster for the lite model on a 2-core CPU, and BN folding another 15 % (benchmarks/RESULTS.md).
        self.net = self.net.to(self.device, memory_format=torch.channels_last).eval()
        self.config = self.net.config
        self.max_size = _check_size(max_size or self.config.default_size, "max_size")
        self.half = default_half(self.device) if half is None else half
        self.tile_size = _check_size(tile_size, "tile_size")
        self.tile_overlap = min(TILE_OVERLAP, tile_size // 4)
        self.refine = refine
        self.tta = tta

    # -- public API -------------------------------------------------------------------------------

    def matte(self, image: np.ndarray | str | os.PathLike[str], *, decontaminate: bool = True) -> MatteResult:
        """Matte one image: an H x W x 3 array (uint8, uint16 or float in [0, 1]) or an image path."""
        rgb = _as_float_rgb(image)
        alpha = self.predict_alpha(rgb)
        foreground = self.estimate_foreground(rgb, alpha) if decontaminate else rgb
        return MatteResult(rgb, alpha, foreground)

    def predict_alpha(self, rgb: np.ndarray) -> np.ndarray:
        """Alpha (H x W float32) for an H x W x 3 float32 image, refining large images in tiles."""
        height, width = rgb.shape[:2]
        coarse_small = self._global_pass(rgb[None])[0, 0]
        coarse = _resize(coarse_small, height, width)
        if not self._needs_refinement(height, width):
            return coarse
        band = _resize(_uncertain_band(coarse_small), height, width)
        refined = self.refine_tiled(rgb, band > 0)
        # coarse + band * (refined - coarse), in place: full-size temporaries cost 4 bytes per pixel each.
        refined -= coarse
        refined *= band
        refined += coarse
        return refined

    def matte_frames(
        self, frames: np.ndarray, *, decontaminate: bool = True
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Batched video path: N x H x W x 3 uint8 -> (alpha N x H x W, foreground N x H x W x 3 or None)."""
        if frames.ndim != 4 or frames.shape[-1] != 3:
            raise ValueError(f"expected N x H x W x 3 frames, got {frames.shape}")
        rgb = frames.astype(np.float32) / 255.0
        height, width = rgb.shape[1:3]
        if self._needs_refinement(height, width):
            alphas = np.stack([self.predict_alpha(frame) for frame in rgb])
        else:
            small = self._global_pass(rgb)[:, 0]
            alphas = np.stack([_resize(a, height, width) for a in small])
        if not decontaminate:
            return alphas, None
        return alphas, np.stack([self.estimate_foreground(f, a) for f, a in zip(rgb, alphas, strict=True)])

    def estimate_foreground(self, rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
        """Decontaminated foreground colours (see :mod:`mattecli.foreground`)."""
        from mattecli.foreground import estimate_foreground

        return estimate_foreground(rgb, alpha)

    # -- passes -----------------------------------------------------------------------------------

    def _global_pass(self, rgb: np.ndarray) -> np.ndarray:
        """Alpha at working size for a batch N x H x W x 3 float32 (returned N x 1 x h x w)."""
        height, width = rgb.shape[1:3]
        h, w = working_size(height, width, self.max_size)
        small = np.stack([_resize(frame, h, w) for frame in rgb])
        batch = torch.from_numpy(small).permute(0, 3, 1, 2)
        return self._forward(batch).numpy()

    def refine_tiled(self, rgb: np.ndarray, needed: np.ndarray | None = None) -> np.ndarray:
        """Full-resolution alpha from overlapping tiles blended with linear ramps.

        ``needed`` (H x W bool) marks pixels whose value will be used; tiles without any are skipped.
        With ``tile_size`` >= the image this is a single untiled pass, which the tiled result matches.
        """
        height, width = rgb.shape[:2]
        total = np.zeros((height, width), np.float32)
        weight = np.zeros((height, width), np.float32)
        for y0, y1, x0, x1 in tile_windows(height, width, self.tile_size, self.tile_overlap):
            if needed is not None and not needed[y0:y1, x0:x1].any():
                continue
            tile = torch.from_numpy(np.ascontiguousarray(rgb[y0:y1, x0:x1])).permute(2, 0, 1)
            alpha = self._forward_padded(tile[None])[0, 0].numpy()
            ramp = _tile_weight(y0, y1, x0, x1, height, width, self.tile_overlap)
            total[y0:y1, x0:x1] += alpha * ramp
            weight[y0:y1, x0:x1] += ramp
        return np.divide(total, weight, out=np.zeros_like(total), where=weight > 0)

    def _forward_padded(self, batch: Tensor) -> Tensor:
        """Forward at native resolution: reflect-pad to multiples of 32, then crop the pad away."""
        height, width = batch.shape[-2:]
        pad_h, pad_w = -height % STRIDE, -width % STRIDE
        if pad_h or pad_w:
            mode = "reflect" if pad_h < height and pad_w < width else "replicate"
            batch = F.pad(batch, (0, pad_w, 0, pad_h), mode=mode)
        return self._forward(batch)[..., :height, :width]

    @torch.inference_mode()
    def _forward(self, batch: Tensor) -> Tensor:
        """Run the network on N x 3 x H x W float32 in [0, 1]; returns alpha on the CPU, float32."""
        batch = batch.to(self.device, non_blocking=True).contiguous(memory_format=torch.channels_last)
        autocast = torch.autocast(self.device.type, dtype=torch.float16) if self.half else nullcontext()
        with autocast:
            alpha = self.net(batch).alpha.float()
            if self.tta:
                # The network is not mirror-symmetric, so the mirrored pass is a second opinion; one pass at a
                # time keeps peak memory that of a single pass (tiles and video batches are sized for it).
                mirrored = batch.flip(-1).contiguous(memory_format=torch.channels_last)
                alpha = (alpha + self.net(mirrored).alpha.float().flip(-1)) / 2
        return alpha.clamp_(0.0, 1.0).cpu()

    def _needs_refinement(self, height: int, width: int) -> bool:
        if self.refine is not None:
            return self.refine
        return max(height, width) > REFINE_FACTOR * self.max_size


def tile_windows(height: int, width: int, tile: int, overlap: int) -> Iterator[tuple[int, int, int, int]]:
    """Windows (y0, y1, x0, x1) covering the image with at least ``overlap`` pixels shared between
    neighbours; the last window in each direction ends at the image border."""

    def starts(size: int) -> list[int]:
        if size <= tile:
            return [0]
        count = math.ceil((size - overlap) / (tile - overlap))
        step = (size - tile) / (count - 1)
        return [round(i * step) for i in range(count)]

    for y0 in starts(height):
        for x0 in starts(width):
            yield y0, min(y0 + tile, height), x0, min(x0 + tile, width)


def _tile_weight(y0: int, y1: int, x0: int, x1: int, height: int, width: int, overlap: int) -> np.ndarray:
    """Blend weights for one tile: a linear ramp over ``overlap`` pixels on sides shared with a
    neighbour, flat 1 on sides at the image border (nothing to blend with there)."""

    def ramp(n: int, ramp_start: bool, ramp_end: bool) -> np.ndarray:
        r = np.ones(n, np.float32)
        k = min(overlap, n)
        edge = (np.arange(k, dtype=np.float32) + 1.0) / (k + 1.0)
        if ramp_start:
            r[:k] = np.minimum(r[:k], edge)
        if ramp_end:
            r[n - k :] = np.minimum(r[n - k :], edge[::-1])
        return r

    ry = ramp(y1 - y0, y0 > 0, y1 < height)
    rx = ramp(x1 - x0, x0 > 0, x1 < width)
    return ry[:, None] * rx[None, :]


def _uncertain_band(coarse: np.ndarray) -> np.ndarray:
    """Soft mask (working resolution) of pixels the global pass is unsure about, dilated a little and
    smoothed so that switching between coarse and refined alpha leaves no edge."""
    uncertain = ((coarse > CERTAIN_LOW) & (coarse < CERTAIN_HIGH)).astype(np.float32)
    t = torch.from_numpy(uncertain)[None, None]
    t = F.max_pool2d(t, 7, stride=1, padding=3)
    t = F.avg_pool2d(t, 5, stride=1, padding=2, count_include_pad=False)
    return t[0, 0].numpy()


def _resize(array: np.ndarray, height: int, width: int) -> np.ndarray:
    """Resize with area averaging when shrinking (no aliasing) and bilinear when enlarging."""
    import cv2

    if array.shape[:2] == (height, width):
        return array.astype(np.float32, copy=False)
    shrinking = height * width < array.shape[0] * array.shape[1]
    interpolation = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
    return cv2.resize(array, (width, height), interpolation=interpolation).astype(np.float32)


def _as_float_rgb(image: np.ndarray | str | os.PathLike[str]) -> np.ndarray:
    if isinstance(image, (str, os.PathLike)):
        from mattecli.media import read_image

        return read_image(Path(image)).rgb
    if image.ndim != 3 or image.shape[-1] != 3:
        raise ValueError(f"expected an H x W x 3 RGB image, got shape {image.shape}")
    if image.dtype == np.uint8:
        return image.astype(np.float32) / 255.0
    if image.dtype == np.uint16:
        return image.astype(np.float32) / 65535.0
    return np.clip(image.astype(np.float32, copy=False), 0.0, 1.0)


def _check_size(value: int, name: str) -> int:
    if value < STRIDE or value % STRIDE:
        raise MatteError(f"{name} must be a positive multiple of {STRIDE}, got {value}")
    return value
