"""The geometry of the resolution policy: working sizes, refinement tiles and how they are blended.

The network sees an image resized (not padded) so that both sides are multiples of 32 and the long side is
the working size (:func:`working_size`). Larger images are then refined at full resolution in overlapping
tiles (:func:`tile_windows`), blended with linear ramps over their overlaps (:func:`tile_weight`), so there
are no seams; only the band where the global pass is unsure (:func:`uncertain_band`) takes the refined
values. :func:`blended_strips` sums the tiles a row of tiles at a time and hands out finished strips of
rows, so refining a 100-megapixel photo never holds more than one row of tiles' sums.

:class:`~mattecli.inference.Matter` runs the network; this module only decides where and how much. It is
imported with the inference API (torch comes with the network's stride); OpenCV is imported where it is used.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

import numpy as np
import torch
import torch.nn.functional as F

from mattecli.certainty import SOFT_HIGH, SOFT_LOW
from mattecli.errors import MatteError
from mattecli.models import STRIDE

#: Refine at full resolution when the long side exceeds this multiple of the working size.
REFINE_FACTOR = 2.0
TILE_SIZE = 1024
TILE_OVERLAP = 128

#: ``on_tile(done, total)``: called after each full-resolution tile of one image.
TileCallback = Callable[[int, int], None]
#: ``predict(y0, y1, x0, x1)``: the full-resolution alpha of one tile window (float32, y1 - y0 x x1 - x0).
TilePredictor = Callable[[int, int, int, int], np.ndarray]


def check_size(value: object, name: str) -> int:
    """``value`` if it is a positive multiple of 32; otherwise MatteError("NAME must be ..., got VALUE")
    (the command line passes its option name, e.g. ``--max-size``)."""
    valid = isinstance(value, (int, np.integer)) and not isinstance(value, bool)
    if not valid or value < STRIDE or value % STRIDE:
        raise MatteError(f"{name} must be a positive multiple of {STRIDE}, got {value}")
    return int(value)


def working_size(height: int, width: int, max_size: int) -> tuple[int, int]:
    """Network input size for an image: sides multiples of 32, long side ``max_size`` (or the image's own
    long side rounded up to 32 when it is smaller), aspect ratio kept as closely as the grid allows."""
    long_side = min(max_size, math.ceil(max(height, width) / STRIDE) * STRIDE)
    scale = long_side / max(height, width)
    return (
        max(STRIDE, round(height * scale / STRIDE) * STRIDE),
        max(STRIDE, round(width * scale / STRIDE) * STRIDE),
    )


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


def tile_weight(y0: int, y1: int, x0: int, x1: int, height: int, width: int, overlap: int) -> np.ndarray:
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


def blended_strips(
    height: int,
    width: int,
    tile: int,
    overlap: int,
    predict: TilePredictor,
    needed: np.ndarray | None = None,
    on_tile: TileCallback | None = None,
) -> Iterator[tuple[int, int, np.ndarray]]:
    """Yield ``(top, bottom, alpha rows)`` of the tiled full-resolution alpha, top to bottom.

    ``needed`` (H x W, bool or weights) marks pixels whose value will be used (non-zero); tiles without any
    are not predicted and leave 0. Tiles run a row of tiles at a time, summed into buffers that span one
    row of tiles; rows above the next row of tiles are final and are yielded (and their buffers dropped),
    the overlap is carried on. The sums are added in the same order as over the whole image, so the numbers
    are the same.
    """
    windows = list(tile_windows(height, width, tile, overlap))
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
            alpha = predict(y0, y1, x0, x1)
            ramp = tile_weight(y0, y1, x0, x1, height, width, overlap)
            total[:, x0:x1] += alpha * ramp
            weight[:, x0:x1] += ramp
            done += 1
            if on_tile is not None:
                on_tile(done, total_tiles)
    yield top, height, _normalise(total, weight)


def _carry(buffer: np.ndarray, top: int, y0: int, y1: int) -> np.ndarray:
    """A zeroed buffer for rows [y0, y1) holding what ``buffer`` (rows from ``top``) has for rows >= y0."""
    carried = np.zeros((y1 - y0, buffer.shape[1]), np.float32)
    overlap = buffer[y0 - top :]
    carried[: len(overlap)] = overlap
    return carried


def _normalise(total: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """Weighted sums over summed weights; 0 where no tile ran."""
    return np.divide(total, weight, out=np.zeros_like(total), where=weight > 0)


def uncertain_band(coarse: np.ndarray) -> np.ndarray:
    """Soft mask (working resolution) of pixels the global pass is unsure about (soft alpha, see
    :mod:`mattecli.certainty`), dilated a little and smoothed so that switching between coarse and refined
    alpha leaves no edge."""
    uncertain = ((coarse > SOFT_LOW) & (coarse < SOFT_HIGH)).astype(np.float32)
    t = torch.from_numpy(uncertain)[None, None]
    t = F.max_pool2d(t, 7, stride=1, padding=3)
    t = F.avg_pool2d(t, 5, stride=1, padding=2, count_include_pad=False)
    return t[0, 0].numpy()


def resize(array: np.ndarray, height: int, width: int) -> np.ndarray:
    """Resize with area averaging when shrinking (no aliasing) and bilinear when enlarging."""
    import cv2

    if array.shape[:2] == (height, width):
        return array.astype(np.float32, copy=False)
    shrinking = height * width < array.shape[0] * array.shape[1]
    interpolation = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
    return cv2.resize(array, (width, height), interpolation=interpolation).astype(np.float32)


def resize_codes(pixels: np.ndarray, height: int, width: int) -> np.ndarray:
    """Shrink integer codes (H x W x C) with area averaging in one call, keeping their dtype (rounded)."""
    import cv2

    return cv2.resize(pixels, (width, height), interpolation=cv2.INTER_AREA)
