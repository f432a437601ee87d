"""Full-resolution refinement of a large photo's matte, confined to where the global pass is unsure.

The global pass (the whole photo at the working size) decides what is the person. Full-resolution work may
change alpha only in the *band*: the pixels whose upsampled global alpha is soft (:mod:`mattecli.certainty`),
grown by a margin (:func:`band_weights`). Outside it every pixel keeps the upsampled global matte exactly,
so a tile that sees a fragment of a person (a torso whose texture looks like background at tile scale) can
no longer cut a hole into it or drop a limb; issue 21 measured that old tiled refinement on 3000 px photos
of people at mask IoU 0.775 against 0.938 without refinement.

Methods (:data:`REFINEMENTS`); :data:`REFINEMENT` is the default, one line to change:

- ``tiles``: the old behaviour, kept for comparison: the network re-run on full-resolution tiles, taken
  over a band dilated and smoothed at the working resolution (:func:`mattecli.tiling.uncertain_band`).
- ``band``: the network re-run on the full-resolution tiles that meet the band; its values are taken only
  in the band, with weights ramping to zero at the band's edge.
- ``guided``: no network: the global matte is upsampled edge-aware, guided by the full-resolution photo
  (fast guided filter, He & Sun 2015, "Fast Guided Filter", arXiv:1505.00996; colour guided filter of
  He, Sun & Tang, PAMI 2013), applied only in the band. Its linear coefficients are fitted at
  :data:`GUIDE_FACTOR` times the working size and upsampled, so the full-resolution work is a few
  multiply-adds per band pixel.
- ``band+guided``: both in the band, averaged.

OpenCV is imported inside the functions that use it (the command line's start-up stays cheap).
"""

from __future__ import annotations

import math

import numpy as np

from mattecli.certainty import SOFT_HIGH, SOFT_LOW
from mattecli.image.conversion import unit_float

REFINEMENTS = ("tiles", "band", "guided", "band+guided")
"""The refinement methods :class:`~mattecli.inference.Matter` knows (``refinement=``)."""

REFINEMENT = "guided"
"""The default method for photos over twice the working size, chosen by ``benchmarks/bench_large.py``
(benchmarks/RESULTS.md): at least as good as no refinement on IoU, MSE and gradient error on every enlarged
held-out set, with a lower gradient error, and no network run at full resolution (1 s a photo where the
network-tile methods took 12-15 s and lost IoU on people and portraits)."""

BAND_MARGIN = 2.0
"""The band grows by this many working-resolution pixels (scaled to full resolution) on each side of the
soft pixels: the upsampled global matte is only as sharp as one working pixel, so the true edge may lie
that far from where the global pass put it. Half of the margin takes full weight, the other half ramps."""

GUIDE_FACTOR = 2
"""The guided filter's coefficients are fitted on the photo at this multiple of the working size."""

GUIDE_RADIUS = 4
"""Box radius of the guided filter, in pixels at the guide resolution."""

GUIDE_WINDOW = 256
"""Full-resolution windows the guided filter runs in: small, so that few pixels outside the band are
computed, and large enough that the per-window overhead stays small."""

GUIDE_EPS = 1e-3
"""Regularisation of the guided filter (intensities in [0, 1]): larger keeps closer to the global matte,
smaller follows the photo's edges more closely."""


def check_refinement(name: object) -> str:
    """``name`` if it is one of :data:`REFINEMENTS`, else a MatteError naming them (as Matter's other bad
    arguments)."""
    from mattecli.errors import MatteError

    if name not in REFINEMENTS:
        raise MatteError(f"refinement must be one of {', '.join(REFINEMENTS)}, got {name!r}")
    return str(name)


def band_margin(scale: float) -> int:
    """Half the band's growth in full-resolution pixels for an upsampling factor ``scale``."""
    return max(2, math.ceil(BAND_MARGIN * scale / 2))


def band_weights(alpha: np.ndarray, margin: int) -> np.ndarray:
    """Weights (H x W uint8, 0-255) of full-resolution values in the refined matte.

    255 on every soft pixel of ``alpha`` (the upsampled global matte) and within ``margin`` pixels of one,
    ramping to exactly 0 at ``2 * margin`` pixels: the box blur of a mask dilated by ``margin`` with a box
    of side ``2 * margin + 1`` reaches no further. uint8 keeps the masks at one byte a pixel (100 MB at
    100 MP) and makes the zeros exact.
    """
    import cv2

    soft = ((alpha > SOFT_LOW) & (alpha < SOFT_HIGH)).view(np.uint8)
    side = 2 * margin + 1
    core = cv2.dilate(soft, cv2.getStructuringElement(cv2.MORPH_RECT, (side, side)))
    core *= 255
    return cv2.blur(core, (side, side), borderType=cv2.BORDER_REPLICATE)


def band_windows(weights: np.ndarray, size: int) -> list[tuple[int, int, int, int]]:
    """The windows (y0, y1, x0, x1) of a grid of ``size`` that meet the band (non-zero ``weights``)."""
    height, width = weights.shape
    windows = []
    for y0 in range(0, height, size):
        rows = weights[y0 : y0 + size]
        for x0 in range(0, width, size):
            if rows[:, x0 : x0 + size].any():
                windows.append((y0, min(y0 + size, height), x0, min(x0 + size, width)))
    return windows


def blend_into(coarse: np.ndarray, refined: np.ndarray, weights: np.ndarray) -> None:
    """``coarse += weights / 255 * (refined - coarse)`` in place; unchanged where the weight is 0."""
    refined -= coarse
    refined *= weights * np.float32(1 / 255)
    refined[weights == 0] = 0.0
    coarse += refined


def guide_coefficients(guide: np.ndarray, alpha: np.ndarray, radius: int, eps: float) -> np.ndarray:
    """Colour guided filter coefficients (h x w x 4 float32: a_r, a_g, a_b, b, box-averaged) for ``alpha``
    (h x w) guided by ``guide`` (h x w x 3 float32 in [0, 1]), so that ``a . I + b`` is the filtered matte
    for the guide ``I`` at this or (upsampling the coefficients) any higher resolution."""
    import cv2

    side = (2 * radius + 1, 2 * radius + 1)

    def box(x: np.ndarray) -> np.ndarray:
        return cv2.boxFilter(x, -1, side, borderType=cv2.BORDER_REFLECT)

    mean_i = box(guide)
    mean_p = box(alpha)
    cov_ip = box(guide * alpha[:, :, None]) - mean_i * mean_p[:, :, None]
    sigma = {}
    for i in range(3):
        for j in range(i, 3):
            value = box(guide[:, :, i] * guide[:, :, j]) - mean_i[:, :, i] * mean_i[:, :, j]
            sigma[i, j] = sigma[j, i] = value.astype(np.float64) + (eps if i == j else 0.0)
    a = solve_symmetric_3x3(sigma, cov_ip).astype(np.float32)
    b = mean_p - np.einsum("hwc,hwc->hw", a, mean_i)
    return box(np.dstack([a, b]).astype(np.float32))


def solve_symmetric_3x3(sigma: dict[tuple[int, int], np.ndarray], rhs: np.ndarray) -> np.ndarray:
    """Solve ``sigma x = rhs`` at every pixel (h x w x 3) for the symmetric 3 x 3 ``sigma`` given by its
    entries (``sigma[i, j]``, h x w each), by the adjugate in float64: as exact as LAPACK's batched
    float32 solve on these well-conditioned systems (the guided filter's eps on the diagonal; coefficients
    within 6e-8, one alpha code on one pixel of a 12 MP portrait), and the coefficients of a 12 MP photo take
    0.2 s instead of 0.35-0.43 s once per photo (2-core CPU, under load)."""
    s00, s01, s02, s11, s12, s22 = (sigma[i, j] for i, j in ((0, 0), (0, 1), (0, 2), (1, 1), (1, 2), (2, 2)))
    # In place with one scratch array: fresh temporaries per operation cost more than the arithmetic.
    scratch = np.empty_like(s00)

    def difference(a: np.ndarray, b: np.ndarray, c: np.ndarray, d: np.ndarray) -> np.ndarray:
        out = np.multiply(a, b)
        out -= np.multiply(c, d, out=scratch)
        return out

    c00 = difference(s11, s22, s12, s12)
    c01 = difference(s02, s12, s01, s22)
    c02 = difference(s01, s12, s02, s11)
    c11 = difference(s00, s22, s02, s02)
    c12 = difference(s01, s02, s00, s12)
    c22 = difference(s00, s11, s01, s01)
    inverse_det = np.multiply(s00, c00)
    inverse_det += np.multiply(s01, c01, out=scratch)
    inverse_det += np.multiply(s02, c02, out=scratch)
    np.divide(1.0, inverse_det, out=inverse_det)
    v0, v1, v2 = (rhs[:, :, c].astype(np.float64) for c in range(3))
    out = np.empty(rhs.shape, np.float64)
    for index, (first, second, third) in enumerate(((c00, c01, c02), (c01, c11, c12), (c02, c12, c22))):
        row = np.multiply(first, v0)
        row += np.multiply(second, v1, out=scratch)
        row += np.multiply(third, v2, out=scratch)
        row *= inverse_det
        out[:, :, index] = row
    return out


def upsampled_window(
    coefficients: np.ndarray, window: tuple[int, int, int, int], height: int, width: int
) -> np.ndarray:
    """Bilinear upsampling of ``coefficients`` (h x w x C) to the full size (height x width), computed for
    one window (y0, y1, x0, x1) only, with the pixel-centre alignment of ``cv2.resize`` (up to OpenCV's 1/32
    pixel interpolation grid)."""
    import cv2

    y0, y1, x0, x1 = window
    h, w = coefficients.shape[:2]
    sy, sx = h / height, w / width
    # Full-resolution pixel (x, y) samples the small grid at ((x + 0.5) * sx - 0.5, (y + 0.5) * sy - 0.5).
    matrix = np.array(
        [[sx, 0.0, (x0 + 0.5) * sx - 0.5], [0.0, sy, (y0 + 0.5) * sy - 0.5]],
        np.float64,
    )
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    # All (up to 4) channels in one call; OpenCV interpolates them alike.
    return cv2.warpAffine(
        coefficients, matrix, (x1 - x0, y1 - y0), flags=flags, borderMode=cv2.BORDER_REPLICATE
    )


def guided_window(
    pixels: np.ndarray, coefficients: np.ndarray, window: tuple[int, int, int, int]
) -> np.ndarray:
    """The guided-filter matte (float32 in [0, 1]) of one full-resolution window of ``pixels``."""
    y0, y1, x0, x1 = window
    height, width = pixels.shape[:2]
    ab = upsampled_window(coefficients, window, height, width)
    rgb = unit_float(pixels[y0:y1, x0:x1])
    alpha = ab[:, :, 3]
    for c in range(3):
        alpha += ab[:, :, c] * rgb[:, :, c]
    return np.clip(alpha, 0.0, 1.0, out=alpha)


def guided_rows(
    pixels: np.ndarray, coefficients: np.ndarray, top: int, bottom: int, chunk: int
) -> np.ndarray:
    """:func:`guided_window` for full rows [top, bottom), computed ``chunk`` columns at a time."""
    width = pixels.shape[1]
    out = np.empty((bottom - top, width), np.float32)
    for x0 in range(0, width, chunk):
        x1 = min(x0 + chunk, width)
        out[:, x0:x1] = guided_window(pixels, coefficients, (top, bottom, x0, x1))
    return out
