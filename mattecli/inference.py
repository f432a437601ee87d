"""The inference API: ``Matter`` turns RGB images into alpha mattes (and clean foreground colours).

Resolution policy (as in the paper): the network sees the image resized, not padded, so that both sides are
multiples of 32 and the long side is ``max_size``; the matte is resized back to the original size. Images
larger than about twice the working size are then refined at full resolution in overlapping tiles: the
global pass decides what is foreground, and only the uncertain band around its edges takes the
full-resolution prediction. Tiles are blended with linear ramps over their overlaps, so there are no seams.

Memory: a 100-megapixel photo is 300 MB as uint8 but 1.2 GB as float32, so the photo and its decontaminated
colours stay in the input's own precision (uint8 for ordinary files) and are converted to float a channel, a
tile or a strip of rows at a time; refined tiles are summed into one strip of rows at a time, which is
blended into the matte as soon as no later tile touches it. Beyond the matte itself (H x W float32) and the
blending weights (another H x W float32 while refining), working memory is bounded by the tile size.

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
from collections.abc import Callable, Iterator
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from mattecli.device import default_half, pick_device
from mattecli.errors import MatteError
from mattecli.loading import ONNX, ModelSource, load_model, locate
from mattecli.models import STRIDE, LateFusionNet
from mattecli.models.batchnorm_folding import fuse_batchnorm

if TYPE_CHECKING:
    from mattecli.media import LoadedImage

#: Refine at full resolution when the long side exceeds this multiple of the working size.
REFINE_FACTOR = 2.0
TILE_SIZE = 1024
TILE_OVERLAP = 128
#: Coarse alpha outside [LOW, HIGH] counts as certain; the band of uncertain pixels gets refined.
CERTAIN_LOW, CERTAIN_HIGH = 0.02, 0.98
#: Pixels per strip for the strip-wise steps outside the network (input alpha, conversions).
STRIP_PIXELS = 1 << 20

#: ``on_tile(done, total)``: called after each full-resolution tile of one image.
TileCallback = Callable[[int, int], None]


@dataclass(eq=False)
class MatteResult:
    """One image's matte: ``alpha`` is H x W float32 in [0, 1].

    The picture and its decontaminated colours are kept in the input's precision, because at 100 megapixels
    float32 copies would take 1.2 GB each: ``pixels`` is the input (H x W x 3 uint8 for 8-bit images, uint16
    for 16-bit ones, float32 for float input) and ``foreground_pixels`` the foreground colours (uint8 for
    uint8 input, rounded once as the PNG writer rounds; float32 otherwise). It is the picture itself when
    decontamination was off. ``image`` and ``foreground`` give them as H x W x 3 float32 in [0, 1]
    (a new array on each access for integer storage).
    """

    pixels: np.ndarray
    alpha: np.ndarray
    foreground_pixels: np.ndarray

    @property
    def image(self) -> np.ndarray:
        """The input picture as H x W x 3 float32 in [0, 1]."""
        from mattecli.media import unit_float

        return unit_float(self.pixels)

    @property
    def foreground(self) -> np.ndarray:
        """Decontaminated foreground colours (or the picture) as H x W x 3 float32 in [0, 1]."""
        from mattecli.media import unit_float

        return unit_float(self.foreground_pixels)

    def rgba(self) -> np.ndarray:
        """The cut-out as H x W x 4 uint8 (straight, not premultiplied, alpha as PNG expects)."""
        from mattecli.media import unit_float

        height, width = self.alpha.shape
        rgba = np.empty((height, width, 4), np.uint8)
        rows = max(1, STRIP_PIXELS // max(1, width))
        # A strip at a time keeps the float temporaries small whatever the image size.
        for top in range(0, height, rows):
            strip = slice(top, top + rows)
            if self.foreground_pixels.dtype == np.uint8:
                rgba[strip, :, :3] = self.foreground_pixels[strip]
            else:
                rgba[strip, :, :3] = np.clip(unit_float(self.foreground_pixels[strip]) * 255.0 + 0.5, 0, 255)
            rgba[strip, :, 3] = np.clip(self.alpha[strip] * 255.0 + 0.5, 0, 255)
        return rgba

    def composite(self, background: str | np.ndarray, *, dtype: type | np.dtype = np.uint8) -> np.ndarray:
        """The cut-out over a background, H x W x 3 uint8 like :meth:`rgba` (``dtype=np.float32`` for float
        in [0, 1], ``np.uint16`` for 16-bit codes).

        ``background``: a colour (name or hex), an image path (cover-resized), one RGB colour as an array of
        3, or an H x W x 3 image; arrays may be float in [0, 1], uint8 or uint16 (scaled by their range).
        Raises ValueError for a background of another shape or dtype, MatteError for a bad colour or path.
        """
        from mattecli.compositing import composite, parse_color, resolve_background
        from mattecli.errors import MatteError

        if isinstance(background, str):
            try:
                # A colour stays one colour (broadcast): a full-size copy would take 1.2 GB at 100 MP.
                background = np.asarray(parse_color(background), np.float32)
            except MatteError:
                background = resolve_background(background, self.alpha.shape[:2])
        return composite(self.foreground_pixels, self.alpha, np.asarray(background), dtype=dtype)


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
        model: A built-in name (``default``, ``lite``, see ``matte models``), a ``.safetensors`` path, an
            ``.onnx`` file from ``matte export`` (run by onnxruntime, CPU only), a training checkpoint
            (``.pt``), a training run folder (its exported weights, or its newest checkpoint when that is
            newer; see :mod:`mattecli.loading`), or an already built :class:`~mattecli.models.LateFusionNet`.
        device: ``auto`` (CUDA, then MPS, then CPU), or a torch device string.
        max_size: Long side of the network input (a positive multiple of 32); ``None`` means the model
            config's ``default_size``.
        half: Run in float16 autocast; defaults to True on CUDA only.
        tile_size: Tile side for full-resolution refinement (a multiple of 32).
        refine: Refine large images at full resolution (``None``: when larger than twice the working size).
        tta: Test-time augmentation: also run the mirrored image and average the two mattes. Twice the
            network time; on the default model's held-out photos mask IoU +0.008 and MSE -7 %, on its cut-out
            composites IoU -0.005 (weights/README.md), so it is off by default.

    Bad arguments (a size that is not a positive multiple of 32, a device that does not exist here) and bad
    images raise :class:`~mattecli.errors.MatteError` with a one-line message.
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
        source = model if isinstance(model, LateFusionNet) else locate(model)
        if not isinstance(source, LateFusionNet) and source.format == ONNX:
            self._load_onnx(source, device)
        else:
            self._load_torch(source, device)
        self.config = self.net.config
        self.max_size = _check_size(self.config.default_size if max_size is None else max_size, "max_size")
        self.half = default_half(self.device) if half is None else half
        self.tile_size = _check_size(tile_size, "tile_size")
        self.tile_overlap = min(TILE_OVERLAP, tile_size // 4)
        self.refine = refine
        self.tta = tta

    def _load_torch(self, model: ModelSource | LateFusionNet, device: str | torch.device) -> None:
        self.device = pick_device(device)
        if isinstance(model, LateFusionNet):
            # A copy: BN folding below must not change the caller's (possibly still training) network.
            self.net, self.model_name = copy.deepcopy(model).eval(), model.config.name
        else:
            self.net, self.model_name = load_model(model).net, model.text
        self.net = fuse_batchnorm(self.net.eval())
        # channels_last lets oneDNN (CPU) and cuDNN (GPU) pick their fastest convolution kernels: about
        # 15 % faster for the lite model on a 2-core CPU, and BN folding another 15 % (benchmarks/RESULTS.md).
        self.net = self.net.to(self.device, memory_format=torch.channels_last).eval()

    def _load_onnx(self, source: ModelSource, device: str | torch.device) -> None:
        """An exported ``.onnx`` file runs through onnxruntime on the CPU (1.2-2.2x the PyTorch path there,
        benchmarks/RESULTS.md); the resolution policy, tiles and TTA stay the same."""
        self.device = pick_device("cpu" if str(device) == "auto" else device)
        if self.device.type != "cpu":
            raise MatteError(f"ONNX models run on the CPU (onnxruntime), not {self.device}", source.path)
        self.net, self.model_name = load_model(source).net, str(source.path)

    # -- public API -------------------------------------------------------------------------------

    def matte(
        self,
        image: np.ndarray | str | os.PathLike[str] | LoadedImage,
        *,
        decontaminate: bool = True,
        keep_input_alpha: bool = True,
        on_tile: TileCallback | None = None,
    ) -> MatteResult:
        """Matte one image: an image path, a :class:`~mattecli.media.LoadedImage`, or an H x W x 3 (RGB) or
        H x W x 4 (RGBA) array of uint8, uint16 or float in [0, 1].

        With ``keep_input_alpha`` an input's own alpha channel multiplies the matte, so pixels that were
        already transparent stay transparent; the network and the colour estimate see only the RGB.
        ``on_tile(done, total)`` is called after each full-resolution refinement tile (for progress bars).
        """
        pixels, input_alpha = _as_pixels(image)
        alpha = self._predict_alpha(pixels, on_tile)
        foreground = self._estimate_foreground_pixels(pixels, alpha) if decontaminate else pixels
        if keep_input_alpha and input_alpha is not None:
            _multiply_alpha(alpha, input_alpha)
        return MatteResult(pixels, alpha, foreground)

    def predict_alpha(self, rgb: np.ndarray, *, on_tile: TileCallback | None = None) -> np.ndarray:
        """Alpha (H x W float32) for an H x W x 3 image (float32 in [0, 1], uint8 or uint16), refining large
        images in tiles; ``on_tile(done, total)`` is called after each tile."""
        return self._predict_alpha(_check_rgb(rgb), on_tile)

    def _predict_alpha(self, pixels: np.ndarray, on_tile: TileCallback | None) -> np.ndarray:
        """:meth:`predict_alpha` for a picture that :func:`_check_rgb` has already accepted."""
        height, width = pixels.shape[:2]
        coarse_small = self._global_pass_image(pixels)
        alpha = _resize(coarse_small, height, width)
        if not self._needs_refinement(height, width):
            return alpha
        band = _resize(_uncertain_band(coarse_small), height, width)
        for top, bottom, refined in self._refined_strips(pixels, band, on_tile):
            # coarse + band * (refined - coarse), a strip at a time into the coarse matte itself.
            coarse = alpha[top:bottom]
            refined -= coarse
            refined *= band[top:bottom]
            coarse += refined
        return alpha

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
        """Decontaminated foreground colours, float32 (see :mod:`mattecli.foreground`)."""
        from mattecli.foreground import estimate_foreground

        return estimate_foreground(rgb, alpha)

    def _estimate_foreground_pixels(self, pixels: np.ndarray, alpha: np.ndarray) -> np.ndarray:
        """Foreground colours stored like :class:`MatteResult` stores them: uint8 for uint8 pictures
        (converted and rounded a strip at a time), float32 otherwise."""
        from mattecli.foreground import estimate_foreground

        if pixels.dtype == np.uint8:
            return estimate_foreground(pixels, alpha, out=np.empty(pixels.shape, np.uint8))
        return estimate_foreground(pixels, alpha)

    # -- passes -----------------------------------------------------------------------------------

    def _global_pass_image(self, pixels: np.ndarray) -> np.ndarray:
        """Alpha at working size (h x w) for one H x W x 3 picture of any supported dtype.

        Shrinks one channel at a time, each made float only while it is resized: the same numbers as
        resizing the float image (OpenCV filters channels independently) for a third of the memory.
        """
        height, width = pixels.shape[:2]
        h, w = working_size(height, width, self.max_size)
        small = np.empty((1, h, w, 3), np.float32)
        for channel in range(3):
            small[0, :, :, channel] = _resize(np.ascontiguousarray(_unit(pixels[:, :, channel])), h, w)
        return self._forward(torch.from_numpy(small).permute(0, 3, 1, 2)).numpy()[0, 0]

    def _global_pass(self, rgb: np.ndarray) -> np.ndarray:
        """Alpha at working size for a batch N x H x W x 3 float32 (returned N x 1 x h x w)."""
        height, width = rgb.shape[1:3]
        h, w = working_size(height, width, self.max_size)
        small = np.stack([_resize(frame, h, w) for frame in rgb])
        batch = torch.from_numpy(small).permute(0, 3, 1, 2)
        return self._forward(batch).numpy()

    def refine_tiled(self, rgb: np.ndarray, needed: np.ndarray | None = None) -> np.ndarray:
        """Full-resolution alpha from overlapping tiles blended with linear ramps.

        ``needed`` (H x W, bool or weights) marks pixels whose value will be used (non-zero); tiles without
        any are skipped and leave 0. With ``tile_size`` >= the image this is a single untiled pass, which the
        tiled result matches.
        """
        pixels = _check_rgb(rgb)
        result = np.empty(pixels.shape[:2], np.float32)
        for top, bottom, refined in self._refined_strips(pixels, needed):
            result[top:bottom] = refined
        return result

    def _refined_strips(
        self, pixels: np.ndarray, needed: np.ndarray | None = None, on_tile: TileCallback | None = None
    ) -> Iterator[tuple[int, int, np.ndarray]]:
        """Yield ``(top, bottom, alpha rows)`` of the tiled full-resolution alpha, top to bottom.

        Tiles run a row of tiles at a time, summed into buffers that span one row of tiles; rows above the
        next row of tiles are final and are yielded (and their buffers dropped), the overlap is carried on.
        The sums are added in the same order as over the whole image, so the numbers are the same.
        """
        height, width = pixels.shape[:2]
        windows = list(tile_windows(height, width, self.tile_size, self.tile_overlap))
        run = [w for w in windows if needed is None or needed[w[0] : w[1], w[2] : w[3]].any()]
        done, total_tiles = 0, len(run)
        by_row: dict[tuple[int, int], list[tuple[int, int, int, int]]] = {}
        for window in windows:
            by_row.setdefault((window[0], window[1]), [])
        for window in run:
            by_row[(window[0], window[1])].append(window)
        top = 0
        total = weight = np.zeros((0, width), np.float32)
        for (y0, y1), row in by_row.items():
            if y0 > top:
                yield top, y0, _normalise(total[: y0 - top], weight[: y0 - top])
            total, weight = _carry(total, top, y0, y1), _carry(weight, top, y0, y1)
            top = y0
            for _, _, x0, x1 in row:
                tile = torch.from_numpy(np.ascontiguousarray(_unit(pixels[y0:y1, x0:x1]))).permute(2, 0, 1)
                alpha = self._forward_padded(tile[None])[0, 0].numpy()
                ramp = _tile_weight(y0, y1, x0, x1, height, width, self.tile_overlap)
                total[:, x0:x1] += alpha * ramp
                weight[:, x0:x1] += ramp
                done += 1
                if on_tile is not None:
                    on_tile(done, total_tiles)
        yield top, height, _normalise(total, weight)

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


def _carry(buffer: np.ndarray, top: int, y0: int, y1: int) -> np.ndarray:
    """A zeroed buffer for rows [y0, y1) holding what ``buffer`` (rows from ``top``) has for rows >= y0."""
    carried = np.zeros((y1 - y0, buffer.shape[1]), np.float32)
    overlap = buffer[y0 - top :]
    carried[: len(overlap)] = overlap
    return carried


def _normalise(total: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """Weighted sums over summed weights; 0 where no tile ran."""
    return np.divide(total, weight, out=np.zeros_like(total), where=weight > 0)


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


def _unit(pixels: np.ndarray) -> np.ndarray:
    """float32 in [0, 1] from uint8, uint16 or float32 (a view when it already is float32)."""
    from mattecli.media import unit_float

    return unit_float(pixels)


def _as_pixels(image: object) -> tuple[np.ndarray, np.ndarray | None]:
    """(H x W x 3 RGB, H x W alpha or None) from a path, a LoadedImage or an RGB(A) array."""
    from mattecli.media import LoadedImage, read_image

    if isinstance(image, (str, os.PathLike)):
        image = read_image(Path(image))
    if isinstance(image, LoadedImage):
        return image.pixels, image.alpha_pixels
    if not isinstance(image, np.ndarray):
        raise MatteError(
            "expected an image path, a LoadedImage or an H x W x 3 (RGB) or H x W x 4 (RGBA) numpy array, "
            f"got {type(image).__name__}"
        )
    if image.ndim != 3 or image.shape[-1] not in (3, 4):
        raise MatteError(f"expected an H x W x 3 (RGB) or H x W x 4 (RGBA) image, got shape {image.shape}")
    pixels = _check_rgb(image[:, :, :3])
    if image.shape[-1] == 3:
        return pixels, None
    return pixels, _check_codes(image[:, :, 3])


def _check_rgb(image: object) -> np.ndarray:
    """The picture as the inference code keeps it: uint8 and uint16 as they are, float as float32 in [0, 1]
    (clipped into a copy only when it is out of range). Raises MatteError for a wrong type, shape or dtype,
    an empty image or NaN."""
    if not isinstance(image, np.ndarray):
        raise MatteError(f"expected an H x W x 3 numpy array, got {type(image).__name__}")
    if image.ndim != 3 or image.shape[-1] != 3:
        raise MatteError(f"expected an H x W x 3 RGB image, got shape {image.shape}")
    return _check_codes(image)


def _check_codes(values: np.ndarray) -> np.ndarray:
    """An image or alpha plane: non-empty, uint8/uint16 (kept) or float (float32, clipped, no NaN)."""
    if values.shape[0] == 0 or values.shape[1] == 0:
        raise MatteError(f"image is empty ({values.shape[0]} x {values.shape[1]} pixels)")
    if values.dtype in (np.uint8, np.uint16):
        return values
    if not np.issubdtype(values.dtype, np.floating):
        raise MatteError(f"image must be uint8, uint16 or float in [0, 1], got {values.dtype}")
    low, high = values.min(), values.max()  # NaN anywhere makes both NaN
    if np.isnan(low) or np.isnan(high):
        raise MatteError("image contains NaN values")
    values = values.astype(np.float32, copy=False)
    # float32 already in [0, 1] is used as it is: a copy of a 100 MP float picture is 1.2 GB.
    return np.clip(values, 0.0, 1.0) if low < 0 or high > 1 else values


def _multiply_alpha(alpha: np.ndarray, input_alpha: np.ndarray) -> None:
    """``alpha *= input alpha`` in place, a strip at a time (uint8/uint16/float input alpha)."""
    rows = max(1, STRIP_PIXELS // max(1, alpha.shape[1]))
    for top in range(0, alpha.shape[0], rows):
        alpha[top : top + rows] *= _unit(input_alpha[top : top + rows])


def _check_size(value: object, name: str) -> int:
    """``value`` if it is a positive multiple of 32; otherwise MatteError("NAME must be ..., got VALUE")
    (the command line passes its option name, e.g. ``--max-size``)."""
    valid = isinstance(value, (int, np.integer)) and not isinstance(value, bool)
    if not valid or value < STRIDE or value % STRIDE:
        raise MatteError(f"{name} must be a positive multiple of {STRIDE}, got {value}")
    return int(value)
