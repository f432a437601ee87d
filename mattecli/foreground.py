"""Foreground colour estimation ("decontamination") for soft matte edges.

An input pixel is a mix ``I = a F + (1 - a) B`` of the foreground colour F and the background colour B.
Cutting out ``I`` with the alpha ``a`` keeps the background's colour in hair and motion blur (a green
fringe after a green screen, a grey halo after an office wall). To composite cleanly we need F itself.

We use the "blur fusion" estimator of Forte & Pitié, "Approximate Fast Foreground Colour Estimation"
(ICIP 2021): local foreground and background colours are estimated as alpha-weighted box-blur averages,
and the residual of the compositing equation is put back into F::

    bF = blur(F a) / blur(a)            bB = blur(B (1 - a)) / blur(1 - a)
    F' = bF + a (I - a bF - (1 - a) bB)

run twice, first with a large window (F = B = I) and then with a small window on the first estimate.
Every box blur costs the same whatever its size, so the whole estimate is a few passes over the image
(a small fraction of the network's time) and never needs a solver, unlike closed-form or multilevel
estimation. On CPU the blurs use OpenCV's running-sum box filter; on a GPU they use cumulative sums, so
a GPU pipeline never leaves the device.

Properties callers rely on: fully opaque pixels (a == 1) come back exactly equal to the input, and
fully transparent pixels within half the large window of the subject get its blurred foreground colour
rather than black (the paper's formula gives black wherever a window holds no foreground at all), so
resampling the cut-out later does not pull dark halos into the edge. Farther away they keep the input
colour; their alpha is 0, so no composite ever shows them.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
import torch.nn.functional as functional

LARGE_WINDOW = 90
"""Box size of the first pass (the paper's value): wide enough to reach past the soft transition band
to pixels that are clearly foreground or background."""

SMALL_WINDOW = 6
"""Box size of the second pass (the paper's value): refines colours close to the edge."""

STRIP_PIXELS = 1 << 21
"""Pixels per strip (about 2 MP): the buffers then take about 200 MB per image whatever its size
(beyond input and output), at the price of recomputing ~95 overlap rows per strip."""

TILE = 256
"""Side of the tiles :func:`estimate_foreground_where_needed` skips or computes. On a 12 MP portrait (2-core
CPU, OMP_WAIT_POLICY=PASSIVE as the CLI runs) 256 px tiles computed 0.68 of the frame with their context
(512 px: 0.85, as one span per row of tiles: all of it) and took 0.69 s of CPU time against 1.57 s whole;
384 px: 0.75 s."""

REACH = LARGE_WINDOW // 2 + SMALL_WINDOW // 2
"""How far (in pixels) the estimate at one pixel looks: the first pass's window around every pixel that
the second pass reads. A tile computed with this much context on every side comes out exactly as in the
whole image."""

WHOLE_SHARE = 0.6
"""When the needed spans cover more than this share of the photo, the whole-image estimate runs instead
(a hazy matte leaves little to skip, and the spans' context overlaps)."""

OPAQUE, VISIBLE = 254.5 / 255, 0.5 / 255
"""Alpha at or above ``OPAQUE`` is 255 in an 8-bit output, below ``VISIBLE`` it is 0."""

_RECIPROCAL_255 = float(np.float32(1.0 / 255.0))

_EPS = 1e-5
"""Keeps the weighted averages finite where a window holds no foreground (or no background) at all."""


def estimate_foreground(
    image: np.ndarray,
    alpha: np.ndarray,
    *,
    device: str | torch.device | None = None,
    large_window: int = LARGE_WINDOW,
    small_window: int = SMALL_WINDOW,
    out: np.ndarray | None = None,
    scratch: _StripEstimator | None = None,
) -> np.ndarray:
    """Return the foreground colour F (H x W x 3 float32 in [0, 1]) of an RGB image and its alpha.

    ``image`` is H x W x 3 (float in [0, 1], uint8 or uint16), ``alpha`` is H x W or H x W x 1 (float in
    [0, 1], uint8 or uint16). ``device`` chooses where the arithmetic runs (default: CPU). ``out`` (H x W x 3
    float32 or uint8) receives the result, which is then returned; uint8 is rounded as
    :func:`mattecli.image.conversion.to_uint8` rounds. A uint8 image is converted and a uint8 result rounded
    a strip at a time, so a 100-megapixel photo never exists as float32 (1.2 GB) on the way.
    """
    pixels = np.asarray(image)
    # uint8 stays as it is (each strip converts its rows); anything else becomes float32 here.
    rgb = pixels if pixels.dtype == np.uint8 else _as_unit_float(pixels, "image")
    matte = _as_unit_float(np.asarray(alpha), "alpha")
    if matte.ndim == 3 and matte.shape[2] == 1:
        matte = matte[:, :, 0]
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"image must be H x W x 3, got shape {rgb.shape}")
    if matte.shape != rgb.shape[:2]:
        raise ValueError(f"alpha shape {matte.shape} does not match image shape {rgb.shape[:2]}")
    result = np.empty(rgb.shape, np.float32) if out is None else out
    if result.shape != rgb.shape or result.dtype not in (np.float32, np.uint8):
        raise ValueError(
            f"out must be float32 or uint8 of shape {rgb.shape}, got {result.dtype} {result.shape}"
        )
    target = torch.device(device) if device is not None else torch.device("cpu")
    # H x W x C arrays seen as 1 x C x H x W tensors without copying; the strips convert the layout
    # piece by piece, which is cheaper than converting whole images up front.
    image_t = _reading_tensor(rgb).permute(2, 0, 1).unsqueeze(0).to(target)
    alpha_t = _reading_tensor(matte)[None, None].to(target)
    options = {"large_window": large_window, "small_window": small_window, "scratch": scratch}
    result_t = torch.from_numpy(result).permute(2, 0, 1).unsqueeze(0)
    if target.type == "cpu":
        estimate_foreground_torch(image_t, alpha_t, out=result_t, **options)
    else:
        on_device = torch.empty(result_t.shape, dtype=result_t.dtype, device=target)
        result_t.copy_(estimate_foreground_torch(image_t, alpha_t, out=on_device, **options))
    return result


def estimate_foreground_where_needed(
    image: np.ndarray,
    alpha: np.ndarray,
    *,
    out: np.ndarray | None = None,
    tile: int = TILE,
    opaque: float = OPAQUE,
    visible: float = VISIBLE,
) -> np.ndarray:
    """:func:`estimate_foreground` (CPU), computed only on the tiles where it can differ from the picture.

    Opaque pixels keep the picture's colour, and transparent ones farther than :data:`REACH` from any
    visible pixel keep it too (their window holds no foreground). "Opaque" and "transparent" are as the
    8-bit output sees them (alpha rounding to 255 or 0): a network's alpha is 0.9995 rather than 1 inside a
    person, where the estimate moves the colour by a fraction of a code. So a tile is computed only when it
    holds a pixel whose alpha rounds below 255 and its context one whose alpha rounds above 0; it is
    computed with :data:`REACH` pixels of context on every side, which makes it equal to the whole-image
    estimate (bit for bit in uint8). Every other tile copies the picture. Neighbouring needed tiles of one
    row of tiles run as one span (a call per tile costs more in overlap), and every span works in one set of
    buffers. ``opaque`` and ``visible`` move the thresholds (e.g. to the soft band's bounds of
    :mod:`mattecli.certainty`, which skips more of a hazy matte but no longer equals the whole estimate).
    When the spans would cover most of the photo (:data:`WHOLE_SHARE`) the whole-image estimate runs. On a photo of a person most of
    the frame is either inside the person or far from them: a 12 MP portrait's decontamination takes
    0.69 s of CPU time in tiles against 1.57 s whole (2-core CPU, :data:`TILE`).
    """
    from mattecli.image.conversion import row_strips, to_uint8, unit_float

    pixels = np.asarray(image)
    matte = _as_unit_float(np.asarray(alpha), "alpha")
    if matte.ndim == 3 and matte.shape[2] == 1:
        matte = matte[:, :, 0]
    height, width = matte.shape
    result = np.empty((height, width, 3), np.float32) if out is None else out
    if pixels.shape != (height, width, 3) or result.shape != pixels.shape:
        raise ValueError(f"image {pixels.shape}, alpha {matte.shape} and out {result.shape} do not match")
    spans = [
        (y0, span)
        for y0 in range(0, height, tile)
        for span in _needed_columns(matte, y0, min(y0 + tile, height), tile, opaque, visible)
    ]
    needed = sum((min(y0 + tile, height) - y0) * (x1 - x0) for y0, (x0, x1) in spans)
    if needed > WHOLE_SHARE * height * width:
        # A hazy matte (soft pixels all over the frame) leaves little to skip: one pass is cheaper.
        return estimate_foreground(pixels, matte, out=result)
    for rows in row_strips(result):
        if result.dtype == pixels.dtype == np.uint8:
            result[rows] = pixels[rows]
        else:
            colour = unit_float(pixels[rows])
            result[rows] = to_uint8(colour) if result.dtype == np.uint8 else colour
    # One set of buffers for every span (the largest a span needs): fresh ones per span cost more in
    # zero-filled pages than the arithmetic.
    widest = max(min(x1 + REACH, width) - max(x0 - REACH, 0) for _, (x0, x1) in spans) if spans else 0
    buffers = (
        _StripEstimator(1, min(tile + 2 * REACH, height), widest, torch.device("cpu")) if spans else None
    )
    for y0, (x0, x1) in spans:
        y1 = min(y0 + tile, height)
        top, left = max(y0 - REACH, 0), max(x0 - REACH, 0)
        bottom, right = min(y1 + REACH, height), min(x1 + REACH, width)
        scratch = np.empty((bottom - top, right - left, 3), result.dtype)
        # Contiguous copies: the estimate reads strided crops at half the speed.
        crop = np.ascontiguousarray(pixels[top:bottom, left:right])
        crop_alpha = np.ascontiguousarray(matte[top:bottom, left:right])
        estimate_foreground(crop, crop_alpha, out=scratch, scratch=buffers)
        result[y0:y1, x0:x1] = scratch[y0 - top : y1 - top, x0 - left : x1 - left]
    return result


def _needed_columns(
    matte: np.ndarray, y0: int, y1: int, tile: int, opaque: float, visible: float
) -> list[tuple[int, int]]:
    """Column spans [x0, x1), one per run of neighbouring tiles of rows [y0, y1) that hold a pixel below
    ``opaque`` with a pixel at or above ``visible`` within :data:`REACH`; empty when no tile does."""
    height, width = matte.shape
    rows = matte[y0:y1]
    context = matte[max(y0 - REACH, 0) : min(y1 + REACH, height)]
    spans: list[tuple[int, int]] = []
    for x0 in range(0, width, tile):
        if (rows[:, x0 : x0 + tile] < opaque).any() and (
            context[:, max(x0 - REACH, 0) : x0 + tile + REACH] >= visible
        ).any():
            x1 = min(x0 + tile, width)
            if spans and spans[-1][1] == x0:
                spans[-1] = (spans[-1][0], x1)
            else:
                spans.append((x0, x1))
    return spans


@torch.inference_mode()
def estimate_foreground_torch(
    image: torch.Tensor,
    alpha: torch.Tensor,
    *,
    large_window: int = LARGE_WINDOW,
    small_window: int = SMALL_WINDOW,
    strip_pixels: int = STRIP_PIXELS,
    out: torch.Tensor | None = None,
    scratch: _StripEstimator | None = None,
) -> torch.Tensor:
    """Return the foreground colour F (N x 3 x H x W float32, on the input's device).

    ``image`` is N x 3 x H x W and ``alpha`` N x 1 x H x W, both in [0, 1] (any float dtype; the
    arithmetic runs in float32 because half precision loses the small weights near the edges); the image
    may also be uint8 (0-255), converted a strip at a time. The image is processed in horizontal strips of
    about ``strip_pixels`` pixels each (with enough overlap that the result is the same as in one piece),
    which bounds the working memory. ``out`` (N x 3 x H x W float32 or uint8, any strides) receives the
    result instead of a new tensor; uint8 is rounded to nearest (ties to even, as
    :func:`mattecli.image.conversion.to_uint8`). ``scratch`` lends its buffers where they are large
    enough (:meth:`_StripEstimator.narrowed`).
    """
    _check_shapes(image, alpha)
    if large_window < 1 or small_window < 1:
        raise ValueError("blur windows must be at least 1 pixel")
    batch, _, height, width = image.shape
    alpha = alpha.to(image.device)
    # Rows of context a strip needs on each side so that its own rows come out exactly as if the
    # whole image had been processed: the first pass reads a large window around every pixel that
    # the second pass reads.
    above = large_window // 2 + small_window // 2
    below = (large_window - 1) // 2 + (small_window - 1) // 2
    rows = max(1, strip_pixels // max(width, 1))
    strip_rows = min(height, rows + above + below)
    if scratch is None:
        estimator = _StripEstimator(batch, strip_rows, width, image.device)
    else:
        estimator = scratch.narrowed(batch, strip_rows, width, image.device)
    result = torch.empty((batch, 3, height, width), device=image.device) if out is None else out
    if result.dtype not in (torch.float32, torch.uint8):
        raise ValueError(f"out must be float32 or uint8, got {result.dtype}")
    for top in range(0, height, rows):
        bottom = min(top + rows, height)
        first, last = max(top - above, 0), min(bottom + below, height)
        strip = estimator.estimate(
            image[:, :, first:last], alpha[:, :, first:last], large_window, small_window
        )
        rows_out = strip[:, :, top - first : bottom - first]
        if result.dtype == torch.uint8:
            rows_out = rows_out.clamp_(0.0, 1.0).mul_(255.0).round_()  # the strip buffer is scratch now
        result[:, :, top:bottom] = rows_out
    return result


def _reading_tensor(array: np.ndarray) -> torch.Tensor:
    """A tensor sharing the array's memory, for reading only: a decoded photo's pixels may be a read-only
    buffer, and copying them to silence torch's warning would cost a whole image."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        return torch.from_numpy(array)


def _check_shapes(image: torch.Tensor, alpha: torch.Tensor) -> None:
    """Reject layouts that would silently broadcast into a wrong answer."""
    if image.ndim != 4 or image.shape[1] != 3:
        raise ValueError(f"image must be N x 3 x H x W, got shape {tuple(image.shape)}")
    if (
        alpha.ndim != 4
        or alpha.shape[1] != 1
        or (alpha.shape[0], *alpha.shape[2:]) != (image.shape[0], *image.shape[2:])
    ):
        raise ValueError(f"alpha must be N x 1 x H x W matching the image, got shape {tuple(alpha.shape)}")


class _StripEstimator:
    """Runs both blur-fusion passes on one strip, reusing its buffers from strip to strip.

    Reuse matters on a CPU: allocating fresh full-size tensors for every intermediate costs more than
    the arithmetic (each new page is zero-filled by the kernel).
    """

    def __init__(self, batch: int, rows: int, width: int, device: torch.device) -> None:
        self.batch, self.rows, self.width, self.device = batch, rows, width, device
        # Planes: alpha, 1 - alpha, F * alpha (3), B * (1 - alpha) (3); all blurred in one call.
        self.planes = torch.empty((batch, 8, rows, width), device=device)
        self.blurred = torch.empty_like(self.planes)
        self.image = torch.empty((batch, 3, rows, width), device=device)
        self.first = torch.empty_like(self.image)
        self.second = torch.empty_like(self.first)

    def fits(self, batch: int, rows: int, width: int, device: torch.device) -> bool:
        return (batch, width, device) == (self.batch, self.width, device) and rows <= self.rows

    def narrowed(self, batch: int, rows: int, width: int, device: torch.device) -> _StripEstimator:
        """An estimator for ``width`` columns (at most this one's) that works in this one's memory, so
        that a series of crops (:func:`estimate_foreground_where_needed`) does not pay for fresh pages each
        time (zero-filling them cost more than the arithmetic)."""
        if self.fits(batch, rows, width, device):
            return self
        if batch != self.batch or device != self.device or rows * width > self.rows * self.width:
            return _StripEstimator(batch, rows, width, device)
        view = object.__new__(_StripEstimator)
        view.batch, view.rows, view.width, view.device = batch, rows, width, device
        for name, channels in (("planes", 8), ("blurred", 8), ("image", 3), ("first", 3), ("second", 3)):
            flat = getattr(self, name).view(-1)[: batch * channels * rows * width]
            setattr(view, name, flat.view(batch, channels, rows, width))
        return view

    def estimate(
        self, image: torch.Tensor, alpha: torch.Tensor, large_window: int, small_window: int
    ) -> torch.Tensor:
        """Foreground of one strip (a view into this estimator's buffers, valid until next call)."""
        rows = image.shape[2]
        planes, blurred = self.planes[:, :, :rows], self.blurred[:, :, :rows]
        planes[:, 0:1].copy_(alpha).clamp_(0.0, 1.0)
        torch.sub(1.0, planes[:, 0:1], out=planes[:, 1:2])
        # One contiguous float32 copy: the strip may be a strided (channels-last), half or uint8 view.
        codes = image.dtype == torch.uint8
        image = self.image[:, :, :rows].copy_(image)
        if codes:
            # As image.conversion.unit_float: times the float32 reciprocal of 255, so uint8 strips match
            # float input.
            image.mul_(_RECIPROCAL_255)
        first, second = self.first[:, :, :rows], self.second[:, :, :rows]
        background = _blur_fusion_pass(image, image, image, planes, blurred, large_window, first)
        _blur_fusion_pass(image, first, background, planes, blurred, small_window, second)
        # The formula gives F = I for a == 1 up to rounding; make it exact so opaque pixels stay.
        return torch.where(planes[:, 0:1] >= 1.0, image, second, out=second)


def _blur_fusion_pass(
    image: torch.Tensor,
    foreground: torch.Tensor,
    background: torch.Tensor,
    planes: torch.Tensor,
    blurred: torch.Tensor,
    window: int,
    out: torch.Tensor,
) -> torch.Tensor:
    """One blur-fusion step: local weighted means of F and B, then the compositing-equation fix.

    Writes the new foreground into ``out`` and returns the local background mean (a view into
    ``blurred``). Both means are ratios of blurs with the same filter, so how the filter treats the
    image border (zero padding here) cancels out: near a border it averages over fewer pixels.
    """
    alpha, inverse = planes[:, 0:1], planes[:, 1:2]
    torch.mul(foreground, alpha, out=planes[:, 2:5])
    torch.mul(background, inverse, out=planes[:, 5:8])
    _box_blur(planes, window, out=blurred)
    weights = blurred[:, 0:2].add_(_EPS)
    # (blur(F a) + eps F) / (blur(a) + eps): the paper's weighted mean wherever the window holds any
    # foreground, and the previous estimate where it holds none, instead of the paper's 0 (black),
    # so transparent pixels a few pixels off the edge keep the first pass's blurred foreground.
    mean_fg = blurred[:, 2:5].add_(foreground, alpha=_EPS).div_(weights[:, 0:1])
    mean_bg = blurred[:, 5:8].div_(weights[:, 1:2])
    # F' = bF + a (I - a bF - (1 - a) bB), computed in place.
    torch.addcmul(image, alpha, mean_fg, value=-1.0, out=out)
    out.addcmul_(inverse, mean_bg, value=-1.0).mul_(alpha).add_(mean_fg).clamp_(0.0, 1.0)
    return mean_bg


def _box_blur(planes: torch.Tensor, window: int, out: torch.Tensor) -> None:
    """Write the mean over each window x window box (zeros outside the image) into ``out``."""
    if planes.device.type == "cpu":
        _box_blur_opencv(planes, window, out)
    else:
        out.copy_(_box_blur_cumsum(planes, window))


def _box_blur_opencv(planes: torch.Tensor, window: int, out: torch.Tensor) -> None:
    """CPU path: OpenCV's running-sum box filter is several times faster than torch.cumsum on CPU."""
    import cv2

    source = planes.numpy()
    result = out.numpy()
    for index in np.ndindex(*source.shape[:2]):
        cv2.blur(source[index], (window, window), dst=result[index], borderType=cv2.BORDER_CONSTANT)


def _box_blur_cumsum(planes: torch.Tensor, window: int) -> torch.Tensor:
    """Device path: separable box sums from cumulative sums, cost independent of the window size.

    Accumulates in float64: a float32 running sum over thousands of pixels loses the small
    differences that the weighted means divide by.
    """
    summed = _window_sum_last_dim(planes.double(), window)
    summed = _window_sum_last_dim(summed.transpose(-1, -2), window).transpose(-1, -2)
    return (summed / float(window * window)).float()


def _window_sum_last_dim(values: torch.Tensor, window: int) -> torch.Tensor:
    """Sum of each centred window along the last dimension, zeros outside (same centring as OpenCV)."""
    before = window // 2
    after = window - 1 - before
    padded = functional.pad(values, (before + 1, after))
    running = torch.cumsum(padded, dim=-1)
    return running[..., window:] - running[..., :-window]


def _as_unit_float(values: np.ndarray, name: str) -> np.ndarray:
    """Float32 copy in [0, 1]; uint8/uint16 inputs are scaled by their maximum code value."""
    if values.dtype == np.uint8:
        return values.astype(np.float32) / 255.0
    if values.dtype == np.uint16:
        return values.astype(np.float32) / 65535.0
    if not np.issubdtype(values.dtype, np.floating):
        raise ValueError(f"{name} must be float in [0, 1], uint8 or uint16, got {values.dtype}")
    return np.ascontiguousarray(values, dtype=np.float32)
