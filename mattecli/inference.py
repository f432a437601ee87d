"""The inference API: ``Matter`` turns RGB images into alpha mattes (and clean foreground colours).

Resolution policy (as in the paper): the network sees the image resized, not padded, so that both sides are
multiples of 32 and the long side is ``max_size``; the matte is resized back to the original size. Images
larger than about twice the working size are then refined at full resolution, only in the band where the
global pass is unsure (:mod:`mattecli.refinement`): the global pass decides what is foreground, and every
pixel outside the band keeps its upsampled global alpha exactly. The default refinement is edge-aware
upsampling guided by the full-resolution photo; re-running the network on full-resolution tiles (blended
with linear ramps over their overlaps, so there are no seams) is the other choice (``refinement=``).

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
import os
from collections.abc import Iterator
from contextlib import nullcontext
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from mattecli.device import default_half, pick_device
from mattecli.image.arrays import as_pixels, check_rgb, multiply_alpha
from mattecli.image.conversion import unit_float
from mattecli.modelfiles.loading import ONNX, ModelSource, check_onnx_device, load_model, locate
from mattecli.models import STRIDE, LateFusionNet
from mattecli.models.batchnorm_folding import fuse_batchnorm
from mattecli.refinement import REFINEMENT, check_refinement
from mattecli.tiling import (
    REFINE_FACTOR,
    TILE_OVERLAP,
    TILE_SIZE,
    TileCallback,
    blended_strips,
    resize,
    resize_codes,
    uncertain_band,
    working_size,
)
from mattecli.tiling import check_size as _check_size

if TYPE_CHECKING:
    from mattecli.image.decoding import LoadedImage


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
        return unit_float(self.pixels)

    @property
    def foreground(self) -> np.ndarray:
        """Decontaminated foreground colours (or the picture) as H x W x 3 float32 in [0, 1]."""
        return unit_float(self.foreground_pixels)

    def rgba(self) -> np.ndarray:
        """The cut-out as H x W x 4 uint8 (straight, not premultiplied, alpha as PNG expects), rounded as
        the PNG writer rounds (:func:`~mattecli.image.conversion.to_uint8`), so it is the written file's
        pixels."""
        from mattecli.render import render

        return render(self, "rgba")

    def composite(self, background: str | np.ndarray, *, dtype: type | np.dtype = np.uint8) -> np.ndarray:
        """The cut-out over a background, H x W x 3 uint8 like :meth:`rgba` (``dtype=np.float32`` for float
        in [0, 1], ``np.uint16`` for 16-bit codes).

        ``background``: a colour (name or hex), an image path (cover-resized), one RGB colour as an array of
        3, or an H x W x 3 image; arrays may be float in [0, 1], uint8 or uint16 (scaled by their range).
        Raises ValueError for a background of another shape or dtype or a float one outside [0, 1] (8-bit
        codes as float), MatteError for a bad colour or path.
        """
        from mattecli.compositing import read_background
        from mattecli.render import render

        if isinstance(background, str):
            # A colour stays one colour (broadcast): a full-size copy would take 1.2 GB at 100 MP.
            return render(self, "composite", read_background(background), dtype=dtype)
        background = np.asarray(background)
        if background.dtype.kind == "f" and background.size:
            low, high = float(background.min()), float(background.max())
            if not 0.0 <= low <= high <= 1.0:
                raise ValueError(
                    f"a float background must hold values in [0, 1], got {low:g} to {high:g} (divide 8-bit "
                    "codes by 255, or pass a uint8 array)"
                )
        return render(self, "composite", background, dtype=dtype)


class Matter:
    """A loaded matting model on a device, with the image and video resolution policy built in.

    Args:
        model: A built-in name (``default``, ``lite``, see ``matte models``), a ``.safetensors`` path, an
            ``.onnx`` file from ``matte export`` (run by onnxruntime, CPU only), a training checkpoint
            (``.pt``), a training run folder (its newest checkpoint, else its ``model.safetensors``; see
            :func:`mattecli.modelfiles.checkpoint.run_model_file`), or an already built :class:`~mattecli.models.LateFusionNet`.
        device: ``auto`` (CUDA, then MPS, then CPU), or a torch device string.
        max_size: Long side of the network input (a positive multiple of 32); ``None`` means the model
            config's ``default_size``.
        half: Run in float16 autocast; defaults to True on CUDA only.
        tile_size: Tile side for full-resolution refinement (a multiple of 32).
        refine: Refine large images at full resolution (``None``: when larger than twice the working size).
        refinement: How (:data:`mattecli.refinement.REFINEMENTS`): ``guided`` (the default,
            :data:`mattecli.refinement.REFINEMENT`), ``band``, ``band+guided``, or ``tiles`` (the old
            tiled refinement, which may overrule the global pass; kept for comparison).
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
        refinement: str = REFINEMENT,
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
        self.refinement = check_refinement(refinement)
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
        check_onnx_device(self.device, source.path)
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
        """Matte one image: an image path, a :class:`~mattecli.image.decoding.LoadedImage`, or an H x W x 3
        (RGB) or H x W x 4 (RGBA) array of uint8, uint16 or float in [0, 1].

        With ``keep_input_alpha`` an input's own alpha channel multiplies the matte, so pixels that were
        already transparent stay transparent; the network and the colour estimate see only the RGB.
        ``on_tile(done, total)`` is called after each full-resolution refinement tile (for progress bars).
        On photos over twice the working size, decontamination runs only on the tiles that hold soft or
        transparent pixels near the subject (:func:`mattecli.foreground.estimate_foreground_where_needed`).
        """
        pixels, input_alpha = as_pixels(image)
        alpha = self._predict_alpha(pixels, on_tile)
        foreground = self._estimate_foreground_pixels(pixels, alpha) if decontaminate else pixels
        if keep_input_alpha and input_alpha is not None:
            multiply_alpha(alpha, input_alpha)
        return MatteResult(pixels, alpha, foreground)

    def predict_alpha(self, rgb: np.ndarray, *, on_tile: TileCallback | None = None) -> np.ndarray:
        """Alpha (H x W float32) for an H x W x 3 image (float32 in [0, 1], uint8 or uint16), refining large
        images in tiles; ``on_tile(done, total)`` is called after each tile."""
        return self._predict_alpha(check_rgb(rgb), on_tile)

    def _predict_alpha(self, pixels: np.ndarray, on_tile: TileCallback | None) -> np.ndarray:
        """:meth:`predict_alpha` for a picture that :func:`~mattecli.image.arrays.check_rgb` has accepted."""
        height, width = pixels.shape[:2]
        refine = self._needs_refinement(height, width)
        coarse_small = self._global_pass_image(pixels, fast_shrink=self._is_large(height, width))
        alpha = resize(coarse_small, height, width)
        if not refine:
            return alpha
        if self.refinement == "tiles":
            return self._refine_tiles_old(pixels, alpha, coarse_small, on_tile)
        return self._refine_in_band(pixels, alpha, coarse_small, on_tile)

    def _refine_tiles_old(
        self, pixels: np.ndarray, alpha: np.ndarray, coarse_small: np.ndarray, on_tile: TileCallback | None
    ) -> np.ndarray:
        """The tiled refinement before issue 21: tiles take over a band dilated and smoothed at the
        working resolution; where the global matte is soft over a whole torso, a tile may empty it."""
        height, width = alpha.shape
        band = resize(uncertain_band(coarse_small), height, width)
        for top, bottom, refined in self._refined_strips(pixels, band, on_tile):
            # coarse + band * (refined - coarse), a strip at a time into the coarse matte itself.
            coarse = alpha[top:bottom]
            refined -= coarse
            refined *= band[top:bottom]
            coarse += refined
        return alpha

    def _refine_in_band(
        self, pixels: np.ndarray, alpha: np.ndarray, coarse_small: np.ndarray, on_tile: TileCallback | None
    ) -> np.ndarray:
        """Refine ``alpha`` (the upsampled global matte, changed in place) only in its soft band grown by a
        margin (:func:`mattecli.refinement.band_weights`); outside it every pixel stays exactly as it is."""
        from mattecli.refinement import (
            GUIDE_WINDOW,
            band_margin,
            band_weights,
            band_windows,
            blend_into,
            guided_rows,
            guided_window,
        )

        weights = band_weights(alpha, band_margin(alpha.shape[0] / coarse_small.shape[0]))
        coefficients = self._guide_coefficients(pixels, coarse_small) if "guided" in self.refinement else None
        if self.refinement == "guided":
            windows = band_windows(weights, GUIDE_WINDOW)
            for done, (y0, y1, x0, x1) in enumerate(windows, 1):
                guided = guided_window(pixels, coefficients, (y0, y1, x0, x1))
                blend_into(alpha[y0:y1, x0:x1], guided, weights[y0:y1, x0:x1])
                if on_tile is not None:
                    on_tile(done, len(windows))
            return alpha
        for top, bottom, refined in self._refined_strips(pixels, weights, on_tile):
            if coefficients is not None:  # band+guided: the two opinions averaged
                refined += guided_rows(pixels, coefficients, top, bottom, self.tile_size)
                refined *= np.float32(0.5)
            blend_into(alpha[top:bottom], refined, weights[top:bottom])
        return alpha

    def _guide_coefficients(self, pixels: np.ndarray, coarse_small: np.ndarray) -> np.ndarray:
        """Guided-filter coefficients of the global matte, fitted on the photo at
        :data:`~mattecli.refinement.GUIDE_FACTOR` times the working size."""
        from mattecli.refinement import GUIDE_EPS, GUIDE_FACTOR, GUIDE_RADIUS, guide_coefficients

        height, width = pixels.shape[:2]
        h, w = working_size(height, width, GUIDE_FACTOR * self.max_size)
        guide = self._shrink(pixels, h, w, fast=True)
        return guide_coefficients(guide, resize(coarse_small, h, w), GUIDE_RADIUS, GUIDE_EPS)

    def matte_frames(
        self, frames: np.ndarray, *, decontaminate: bool = True
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Batched video path: N x H x W x 3 uint8 -> (alpha N x H x W, foreground N x H x W x 3 or None)."""
        if frames.ndim != 4 or frames.shape[-1] != 3:
            raise ValueError(f"expected N x H x W x 3 frames, got {frames.shape}")
        # Divided, not unit_float (whose float32 reciprocal is one ulp off on 126 of the 256 codes): that moves
        # 1-5 matte pixels a frame by one code, so every video output would change (checked on a test clip).
        rgb = frames.astype(np.float32) / 255.0
        height, width = rgb.shape[1:3]
        if self._needs_refinement(height, width):
            alphas = np.stack([self.predict_alpha(frame) for frame in rgb])
        else:
            small = self._global_pass(rgb)[:, 0]
            alphas = np.stack([resize(a, height, width) for a in small])
        if not decontaminate:
            return alphas, None
        return alphas, np.stack([self.estimate_foreground(f, a) for f, a in zip(rgb, alphas, strict=True)])

    def estimate_foreground(self, rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
        """Decontaminated foreground colours, float32 (see :mod:`mattecli.foreground`)."""
        from mattecli.foreground import estimate_foreground

        return estimate_foreground(rgb, alpha)

    def _estimate_foreground_pixels(self, pixels: np.ndarray, alpha: np.ndarray) -> np.ndarray:
        """Foreground colours stored like :class:`MatteResult` stores them: uint8 for uint8 pictures
        (converted and rounded a strip or tile at a time), float32 otherwise; on large photos computed only
        where they can differ from the picture."""
        from mattecli.foreground import estimate_foreground, estimate_foreground_where_needed

        estimate = estimate_foreground_where_needed if self._is_large(*alpha.shape) else estimate_foreground
        if pixels.dtype == np.uint8:
            return estimate(pixels, alpha, out=np.empty(pixels.shape, np.uint8))
        return estimate(pixels, alpha)

    # -- passes -----------------------------------------------------------------------------------

    def _global_pass_image(self, pixels: np.ndarray, fast_shrink: bool = False) -> np.ndarray:
        """Alpha at working size (h x w) for one H x W x 3 picture of any supported dtype."""
        height, width = pixels.shape[:2]
        h, w = working_size(height, width, self.max_size)
        small = self._shrink(pixels, h, w, fast=fast_shrink)
        return self._forward(torch.from_numpy(small[None]).permute(0, 3, 1, 2)).numpy()[0, 0]

    @staticmethod
    def _shrink(pixels: np.ndarray, h: int, w: int, fast: bool = False) -> np.ndarray:
        """The picture area-resized to h x w x 3 float32 in [0, 1].

        Normally one channel at a time, each made float only while it is resized: the same numbers as
        resizing the float image (OpenCV filters channels independently) for a third of the memory.
        ``fast`` (large photos only, so smaller images keep their exact results) resizes uint8 codes in one
        call instead, then converts: 3x faster on a 12 MP photo (0.06 s against 0.17 s), the shrunk
        picture rounded to 8 bits.
        """
        if fast and pixels.dtype == np.uint8:
            return unit_float(resize_codes(pixels, h, w))
        small = np.empty((h, w, 3), np.float32)
        for channel in range(3):
            small[:, :, channel] = resize(np.ascontiguousarray(unit_float(pixels[:, :, channel])), h, w)
        return small

    def _global_pass(self, rgb: np.ndarray) -> np.ndarray:
        """Alpha at working size for a batch N x H x W x 3 float32 (returned N x 1 x h x w)."""
        height, width = rgb.shape[1:3]
        h, w = working_size(height, width, self.max_size)
        small = np.stack([resize(frame, h, w) for frame in rgb])
        batch = torch.from_numpy(small).permute(0, 3, 1, 2)
        return self._forward(batch).numpy()

    def refine_tiled(self, rgb: np.ndarray, needed: np.ndarray | None = None) -> np.ndarray:
        """Full-resolution alpha from overlapping tiles blended with linear ramps.

        ``needed`` (H x W, bool or weights) marks pixels whose value will be used (non-zero); tiles without
        any are skipped and leave 0. With ``tile_size`` >= the image this is a single untiled pass, which the
        tiled result matches.
        """
        pixels = check_rgb(rgb)
        result = np.empty(pixels.shape[:2], np.float32)
        for top, bottom, refined in self._refined_strips(pixels, needed):
            result[top:bottom] = refined
        return result

    def _refined_strips(
        self, pixels: np.ndarray, needed: np.ndarray | None = None, on_tile: TileCallback | None = None
    ) -> Iterator[tuple[int, int, np.ndarray]]:
        """Yield ``(top, bottom, alpha rows)`` of the tiled full-resolution alpha, top to bottom (see
        :func:`mattecli.tiling.blended_strips`)."""

        def predict(y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
            tile = torch.from_numpy(np.ascontiguousarray(unit_float(pixels[y0:y1, x0:x1]))).permute(2, 0, 1)
            return self._forward_padded(tile[None])[0, 0].numpy()

        height, width = pixels.shape[:2]
        return blended_strips(height, width, self.tile_size, self.tile_overlap, predict, needed, on_tile)

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
        return self._is_large(height, width)

    def _is_large(self, height: int, width: int) -> bool:
        """Over twice the working size: refined by default, and shrunk and decontaminated the fast way
        (smaller images keep their results of before issue 21 bit for bit)."""
        return max(height, width) > REFINE_FACTOR * self.max_size
