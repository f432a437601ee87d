"""Matting metrics as defined by the Deep Image Matting evaluation code (MATLAB, Xu et al. 2017).

Published numbers (Composition-1k, alphamatting.com, P3M, ...) come from that code, so these
functions follow it line by line where it matters, including its quirks:

* SAD, Gradient and Connectivity are sums, reported / 1000; MSE is a mean over the region's pixels.
* Gradient: each map is first min-max normalised over the whole image (MATLAB ``mat2gray``; a
  constant map is left as is), then filtered with first-order Gaussian derivative kernels
  (sigma 1.4, 9 x 9, ``imfilter(..., 'replicate', 'conv')``).
* Connectivity: thresholds 0.1, 0.2, ..., 1.0, the largest 4-connected component of
  ``(pred >= t) & (gt >= t)`` (ties broken as MATLAB's ``bwconncomp`` does: the component found
  first in column-major order), theta = 0.15.

The error is summed over the trimap's unknown region (pixels == 128) when a trimap is given, as on
Composition-1k, else over the whole image, as on portrait benchmarks; :func:`evaluate` says which.
The gradient and connectivity maps are always computed on the whole image, then summed over the
region. Unlike some benchmark scripts, no pixel of the prediction is overwritten from the trimap.

Inputs are 2-D arrays of the same shape: floats in [0, 1], or integers (uint8 / uint16) scaled by
their dtype's maximum. Only numpy and OpenCV are used; each metric takes well under a second on a
2-megapixel image.
"""

from __future__ import annotations

import itertools
import math

import cv2
import numpy as np

# Alpha strictly between these counts as half-transparent for soft_share (the "haze" of a matte).
from mattecli.certainty import SOFT_HIGH, SOFT_LOW

#: Trimap value of the unknown region (the MATLAB code's ``trimap == 128``).
UNKNOWN = 128
GRADIENT_SIGMA = 1.4
CONNECTIVITY_STEP = 0.1
CONNECTIVITY_THETA = 0.15
#: Float rounding noise (e.g. -1e-16 after filtering) is clipped; anything further out is an error.
RANGE_TOLERANCE = 1e-6
#: The per-image numbers :func:`evaluate` returns (besides ``region``), in the order reports show them;
#: ``soft`` is the share of half-transparent pixels in the prediction (haze), not an error.
METRICS = ("sad", "mse", "grad", "conn", "iou", "soft")


def _as_matte(array: np.ndarray, name: str) -> np.ndarray:
    """A float64 matte in [0, 1]; integer images are scaled by their dtype's maximum."""
    array = np.asarray(array)
    if array.ndim != 2:
        raise ValueError(f"{name} must be a 2-D H x W matte, got shape {array.shape}")
    if np.issubdtype(array.dtype, np.integer):
        matte = array.astype(np.float64) / np.iinfo(array.dtype).max
    else:
        matte = array.astype(np.float64)
    if not np.isfinite(matte).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    if matte.min() < -RANGE_TOLERANCE or matte.max() > 1.0 + RANGE_TOLERANCE:
        raise ValueError(f"{name} values must lie in [0, 1], got [{matte.min():.4g}, {matte.max():.4g}]")
    return np.clip(matte, 0.0, 1.0)


def _prepare(
    pred: np.ndarray, gt: np.ndarray, trimap: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Validated float mattes and the boolean mask of the pixels the error is summed over."""
    pred, gt = _as_matte(pred, "pred"), _as_matte(gt, "gt")
    if pred.shape != gt.shape:
        raise ValueError(f"pred {pred.shape} and gt {gt.shape} differ in shape")
    if trimap is None:
        return pred, gt, np.ones(pred.shape, dtype=bool)
    trimap = np.asarray(trimap)
    if trimap.shape != pred.shape:
        raise ValueError(f"trimap {trimap.shape} and pred {pred.shape} differ in shape")
    region = trimap == UNKNOWN
    if not region.any():
        raise ValueError(f"trimap has no unknown pixels (value {UNKNOWN}) to evaluate")
    return pred, gt, region


def sad(pred: np.ndarray, gt: np.ndarray, trimap: np.ndarray | None = None) -> float:
    """Sum of absolute differences over the region, / 1000."""
    return _sad(*_prepare(pred, gt, trimap))


def _sad(pred: np.ndarray, gt: np.ndarray, region: np.ndarray) -> float:
    return float(np.abs(pred - gt)[region].sum() / 1000.0)


def mse(pred: np.ndarray, gt: np.ndarray, trimap: np.ndarray | None = None) -> float:
    """Mean squared difference over the region's pixels (the MATLAB code divides by the number of
    unknown pixels, not of all pixels)."""
    return _mse(*_prepare(pred, gt, trimap))


def _mse(pred: np.ndarray, gt: np.ndarray, region: np.ndarray) -> float:
    return float(np.square(pred - gt)[region].mean())


def _mat2gray(matte: np.ndarray) -> np.ndarray:
    """MATLAB ``mat2gray``: min-max normalise to [0, 1]; a constant map is returned unchanged."""
    low, high = matte.min(), matte.max()
    if high == low:
        return matte
    return (matte - low) / (high - low)


def _gaussian_derivative_kernels(sigma: float) -> tuple[np.ndarray, np.ndarray]:
    """1-D factors of the MATLAB ``gaussgradient`` kernel hx(i, j) = gauss(u_i) * dgauss(u_j).

    The half size is the code's ``ceil(sigma * sqrt(-2 log(sqrt(2 pi) sigma 0.01)))`` (4 for sigma
    1.4, a 9 x 9 kernel); hx is scaled to unit L2 norm. Returns (smoothing, derivative) factors.
    """
    half = math.ceil(sigma * math.sqrt(-2.0 * math.log(math.sqrt(2.0 * math.pi) * sigma * 0.01)))
    u = np.arange(-half, half + 1, dtype=np.float64)
    gauss = np.exp(-(u**2) / (2.0 * sigma**2)) / (sigma * math.sqrt(2.0 * math.pi))
    dgauss = -u * gauss / sigma**2
    norm = math.sqrt(float(np.sum(gauss**2)) * float(np.sum(dgauss**2)))
    return gauss, dgauss / norm


def _gauss_gradient_magnitude(matte: np.ndarray, sigma: float) -> np.ndarray:
    """sqrt(gx^2 + gy^2) of MATLAB ``gaussgradient`` (``imfilter`` 'replicate', 'conv').

    The 2-D kernel is separable, so two 1-D passes give the same result faster. OpenCV correlates,
    so the kernels are flipped to convolve as ``imfilter(..., 'conv')`` does.
    """
    gauss, dgauss = _gaussian_derivative_kernels(sigma)
    smooth, deriv = gauss[::-1].copy(), dgauss[::-1].copy()
    border = cv2.BORDER_REPLICATE
    gx = cv2.sepFilter2D(matte, cv2.CV_64F, deriv, smooth, borderType=border)
    gy = cv2.sepFilter2D(matte, cv2.CV_64F, smooth, deriv, borderType=border)
    return np.sqrt(gx**2 + gy**2)


def gradient_error(
    pred: np.ndarray,
    gt: np.ndarray,
    trimap: np.ndarray | None = None,
    *,
    sigma: float = GRADIENT_SIGMA,
) -> float:
    """sum (|grad pred| - |grad gt|)^2 over the region, / 1000 (MATLAB ``compute_gradient_loss``).

    Each map is min-max normalised over the whole image first, so the metric ignores a global
    contrast change of the prediction but not its shape.
    """
    return _gradient_error(*_prepare(pred, gt, trimap), sigma)


def _gradient_error(pred: np.ndarray, gt: np.ndarray, region: np.ndarray, sigma: float) -> float:
    pred_amp = _gauss_gradient_magnitude(_mat2gray(pred), sigma)
    gt_amp = _gauss_gradient_magnitude(_mat2gray(gt), sigma)
    return float(np.square(pred_amp - gt_amp)[region].sum() / 1000.0)


def _largest_component(mask: np.ndarray) -> np.ndarray:
    """The largest 4-connected component of ``mask`` (all False when ``mask`` is empty).

    MATLAB's ``bwconncomp`` numbers components in column-major order and ``max`` keeps the first of
    equal sizes; labelling the transposed mask in OpenCV's row-major order reproduces that order.
    """
    if not mask.any():
        return np.zeros_like(mask)
    transposed = np.ascontiguousarray(mask.T, dtype=np.uint8)
    _, labels = cv2.connectedComponents(transposed, connectivity=4, ltype=cv2.CV_32S)
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0  # background
    return (labels == int(np.argmax(sizes))).T


def _thresholds(step: float) -> np.ndarray:
    """MATLAB ``0:step:1`` rounded to 12 decimals, so 6 * 0.1 compares as 0.6 (MATLAB compares in
    single precision, where the two are equal)."""
    count = math.floor(1.0 / step + 1e-9)
    return np.round(np.arange(count + 1) * step, 12)


def connectivity_error(
    pred: np.ndarray,
    gt: np.ndarray,
    trimap: np.ndarray | None = None,
    *,
    step: float = CONNECTIVITY_STEP,
    theta: float = CONNECTIVITY_THETA,
) -> float:
    """sum |phi(pred) - phi(gt)| over the region, / 1000 (MATLAB ``compute_connectivity_error``).

    For each threshold t, pixels outside the largest 4-connected component of
    ``(pred >= t) & (gt >= t)`` that were still connected at the previous threshold get level
    ``l = previous threshold``; pixels connected at every threshold get ``l = 1``. Then
    ``phi(x) = 1 - d * [d >= theta]`` with ``d = x - l``: a pixel is penalised by how much alpha it
    carries above the level where it lost its connection to the main body.
    """
    return _connectivity_error(*_prepare(pred, gt, trimap), step, theta)


def _connectivity_error(
    pred: np.ndarray, gt: np.ndarray, region: np.ndarray, step: float, theta: float
) -> float:
    # MATLAB compares single-precision mattes with the thresholds, so compare in float32 as well.
    pred32, gt32 = pred.astype(np.float32), gt.astype(np.float32)
    thresholds = _thresholds(step)
    level = np.full(pred.shape, -1.0)
    for previous, threshold in itertools.pairwise(thresholds):
        t = np.float32(threshold)
        omega = _largest_component((pred32 >= t) & (gt32 >= t))
        level[(level == -1.0) & ~omega] = previous
    level[level == -1.0] = 1.0
    pred_d, gt_d = pred - level, gt - level
    pred_phi = 1.0 - pred_d * (pred_d >= theta)
    gt_phi = 1.0 - gt_d * (gt_d >= theta)
    return float(np.abs(pred_phi - gt_phi)[region].sum() / 1000.0)


def iou(
    pred: np.ndarray,
    gt: np.ndarray,
    threshold: float = 0.5,
    trimap: np.ndarray | None = None,
) -> float:
    """Intersection over union of ``pred >= threshold`` and ``gt >= threshold`` over the region.

    Two empty masks agree perfectly, so their IoU is 1.0.
    """
    return _iou(*_prepare(pred, gt, trimap), threshold)


def _iou(pred: np.ndarray, gt: np.ndarray, region: np.ndarray, threshold: float) -> float:
    pred_mask, gt_mask = (pred >= threshold) & region, (gt >= threshold) & region
    union = np.count_nonzero(pred_mask | gt_mask)
    if union == 0:
        return 1.0
    return float(np.count_nonzero(pred_mask & gt_mask) / union)


def soft_share(pred: np.ndarray, gt: np.ndarray | None = None, trimap: np.ndarray | None = None) -> float:
    """Share of the region's pixels that the prediction makes half-transparent (SOFT_LOW < alpha < SOFT_HIGH).

    Not an error against ``gt`` but a property of the prediction: a real photo has few such pixels (hair,
    motion blur), so a high share is haze, which composites show as a grey veil over the background.
    ``gt`` only fixes the shape and the region; compare with ``soft_share(gt, gt)``.
    """
    return _soft_share(*_prepare(pred, pred if gt is None else gt, trimap))


def _soft_share(pred: np.ndarray, _gt: np.ndarray, region: np.ndarray) -> float:
    count = np.count_nonzero(region)
    if count == 0:
        return 0.0
    soft = (pred > SOFT_LOW) & (pred < SOFT_HIGH) & region
    return float(np.count_nonzero(soft) / count)


def evaluate(pred: np.ndarray, gt: np.ndarray, trimap: np.ndarray | None = None) -> dict[str, float | str]:
    """All metrics at once: ``sad``, ``mse``, ``grad``, ``conn``, ``iou``, ``soft`` and ``region``.

    ``region`` is ``"unknown"`` when a trimap restricts the sums to its unknown pixels (the
    Composition-1k protocol) and ``"whole"`` otherwise (portrait benchmarks): numbers from the two
    are not comparable, so they always travel with their region.
    """
    prepared = _prepare(pred, gt, trimap)  # validated and converted once for all metrics
    return {
        "sad": _sad(*prepared),
        "mse": _mse(*prepared),
        "grad": _gradient_error(*prepared, GRADIENT_SIGMA),
        "conn": _connectivity_error(*prepared, CONNECTIVITY_STEP, CONNECTIVITY_THETA),
        "iou": _iou(*prepared, 0.5),
        "soft": _soft_share(*prepared),
        "region": "whole" if trimap is None else "unknown",
    }


__all__ = [
    "METRICS",
    "connectivity_error",
    "evaluate",
    "gradient_error",
    "iou",
    "mse",
    "sad",
    "soft_share",
]
