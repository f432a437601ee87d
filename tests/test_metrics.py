"""Matting metrics against hand-worked values (definitions of the Deep Image Matting MATLAB code)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mattecli import metrics

# 2 x 2 example used by several tests.
PRED = np.array([[0.0, 0.5], [1.0, 0.75]])
GT = np.array([[0.0, 1.0], [1.0, 0.0]])
# Unknown region: the top-right and bottom-left pixels.
TRIMAP = np.array([[0, 128], [128, 255]], dtype=np.uint8)


def test_sad_whole_image_and_unknown_region():
    # |pred - gt| = 0, 0.5, 0, 0.75 -> whole image 1.25 / 1000; unknown pixels 0.5 + 0 -> 0.5 / 1000
    assert metrics.sad(PRED, GT) == pytest.approx(0.00125)
    assert metrics.sad(PRED, GT, TRIMAP) == pytest.approx(0.0005)


def test_mse_divides_by_the_number_of_region_pixels():
    # squares 0, 0.25, 0, 0.5625 -> whole image 0.8125 / 4; unknown (0.25 + 0) / 2
    assert metrics.mse(PRED, GT) == pytest.approx(0.203125)
    assert metrics.mse(PRED, GT, TRIMAP) == pytest.approx(0.125)


def test_iou():
    # pred >= 0.5: [[0, 1], [1, 1]], gt: [[0, 1], [1, 0]] -> intersection 2, union 3
    assert metrics.iou(PRED, GT) == pytest.approx(2 / 3)
    # unknown region only: pred {tr, bl}, gt {tr, bl} -> 2 / 2
    assert metrics.iou(PRED, GT, trimap=TRIMAP) == 1.0
    # a higher threshold drops 0.5 and 0.75 from pred: intersection 1 (bl), union 2
    assert metrics.iou(PRED, GT, threshold=0.8) == pytest.approx(0.5)
    # two empty masks agree
    assert metrics.iou(np.zeros((2, 2)), np.zeros((2, 2))) == 1.0


def test_uint8_inputs_are_scaled_to_0_1():
    pred8 = np.round(PRED * 255).astype(np.uint8)  # 0, 128, 255, 191
    gt8 = (GT * 255).astype(np.uint8)
    # |128/255 - 1| + |191/255 - 0| = (127 + 191) / 255
    assert metrics.sad(pred8, gt8) == pytest.approx((127 + 191) / 255 / 1000)


def _step_edge(width: int = 10, edge: int = 5, rows: int = 3, high: float = 1.0) -> np.ndarray:
    matte = np.zeros((rows, width))
    matte[:, edge:] = high
    return matte


def _hand_gradient_error_of_step(width: int = 10, edge: int = 5, rows: int = 3) -> float:
    """The MATLAB gaussgradient of a vertical step edge, written out in one dimension.

    The kernel is hx(i, j) = gauss(u_i) * dgauss(u_j), u = -4..4 (halfsize = ceil(1.4 * sqrt(-2 *
    ln(sqrt(2 pi) * 1.4 * 0.01))) = ceil(3.62) = 4), scaled to unit L2 norm. On a matte constant
    along y, the y-sum of gauss factors out, and gy = 0 (dgauss sums to 0). imfilter 'conv' with
    'replicate' borders: gx(c) = sum_y gauss(y) * sum_v dgauss(v) * img(clamp(c - v)) / norm.
    """
    sigma = 1.4
    offsets = range(-4, 5)
    gauss = {u: math.exp(-(u**2) / (2 * sigma**2)) / (sigma * math.sqrt(2 * math.pi)) for u in offsets}
    dgauss = {u: -u * gauss[u] / sigma**2 for u in offsets}
    norm = math.sqrt(sum(g**2 for g in gauss.values()) * sum(d**2 for d in dgauss.values()))
    sum_gauss = sum(gauss.values())

    def img(c: int) -> float:
        return 1.0 if min(max(c, 0), width - 1) >= edge else 0.0

    gx = [sum_gauss * sum(dgauss[v] * img(c - v) for v in offsets) / norm for c in range(width)]
    # gt is all zeros (constant), so its gradient magnitude is 0 everywhere.
    return rows * sum(g**2 for g in gx) / 1000


def test_gradient_error_of_a_step_edge_matches_the_hand_computation():
    pred, gt = _step_edge(), np.zeros((3, 10))
    expected = _hand_gradient_error_of_step()
    assert expected > 0.001  # a real edge, not a degenerate case
    assert metrics.gradient_error(pred, gt) == pytest.approx(expected, rel=1e-9)


def test_gradient_error_min_max_normalises_each_map():
    # A 0 -> 0.5 step is stretched to 0 -> 1 by mat2gray before filtering: same error.
    dim = _step_edge(high=0.5)
    assert metrics.gradient_error(dim, np.zeros((3, 10))) == pytest.approx(
        _hand_gradient_error_of_step(), rel=1e-9
    )


def test_gradient_error_of_constant_maps_is_zero():
    pred, gt = np.full((8, 8), 0.3), np.full((8, 8), 0.8)
    # exact in theory (the derivative kernel sums to 0); float rounding leaves ~1e-34
    assert metrics.gradient_error(pred, gt) == pytest.approx(0.0, abs=1e-15)
    assert metrics.gradient_error(_step_edge(), _step_edge()) == 0.0


def test_gradient_error_over_the_unknown_region_is_part_of_the_whole():
    pred, gt = _step_edge(), np.zeros((3, 10))
    trimap = np.zeros((3, 10), dtype=np.uint8)
    trimap[:, 4:6] = 128  # the two columns next to the edge, where the gradient peaks
    whole = metrics.gradient_error(pred, gt)
    unknown = metrics.gradient_error(pred, gt, trimap)
    assert 0 < unknown < whole
    # the four columns 2, 3, 6, 7 outside the band carry what is missing
    trimap_rest = np.zeros_like(trimap)
    trimap_rest[:, [0, 1, 2, 3, 6, 7, 8, 9]] = 128
    assert unknown + metrics.gradient_error(pred, gt, trimap_rest) == pytest.approx(whole)


def test_connectivity_error_by_hand():
    pred = np.array([[1.0, 0.65, 0.55, 0.0]])
    gt = np.array([[1.0, 1.0, 0.55, 0.3]])
    # Largest component of (pred >= t) & (gt >= t):
    #   t = 0.1 .. 0.5: pixels 0-2       -> pixel 3 leaves at t = 0.1: l = 0.0
    #   t = 0.6:        pixels 0-1       -> pixel 2 leaves: l = 0.5
    #   t = 0.7 .. 1.0: pixel 0          -> pixel 1 leaves: l = 0.6; pixel 0 never leaves: l = 1
    # d = x - l:  pred_d = 0, 0.05, 0.05, 0      gt_d = 0, 0.4, 0.05, 0.3
    # phi = 1 - d * [d >= 0.15]: pred 1, 1, 1, 1  gt 1, 0.6, 1, 0.7
    # sum |phi_pred - phi_gt| = 0.4 + 0.3 = 0.7 -> / 1000
    assert metrics.connectivity_error(pred, gt) == pytest.approx(0.0007)
    # only pixel 3 in the unknown region
    trimap = np.array([[0, 0, 255, 128]], dtype=np.uint8)
    assert metrics.connectivity_error(pred, gt, trimap) == pytest.approx(0.0003)


def test_connectivity_error_breaks_ties_in_matlab_column_major_order():
    pred = np.array([[0.0, 0.35], [0.35, 0.0]])
    gt = np.array([[0.0, 0.8], [0.4, 0.0]])
    # Up to t = 0.3 the intersection has two 1-pixel components (diagonal, not 4-connected).
    # MATLAB's bwconncomp scans column by column, so the bottom-left pixel is component 1 and wins
    # the tie: the top-right pixel leaves at t = 0.1 (l = 0), the bottom-left at t = 0.4 (l = 0.3).
    # top-right:   pred_d = 0.35 -> phi 0.65;  gt_d = 0.8 -> phi 0.2   => 0.45
    # bottom-left: pred_d = 0.05 -> phi 1;     gt_d = 0.1 -> phi 1     => 0
    # (row-major order would pick the top-right pixel and give 0.05 + 0.5 = 0.55)
    assert metrics.connectivity_error(pred, gt) == pytest.approx(0.00045)


def test_connectivity_error_of_identical_mattes_is_zero():
    rng = np.random.default_rng(0)
    matte = rng.random((16, 16))
    assert metrics.connectivity_error(matte, matte) == 0.0
    assert metrics.connectivity_error(np.zeros((4, 4)), np.zeros((4, 4))) == 0.0


def test_evaluate_reports_every_metric_and_its_region():
    whole = metrics.evaluate(PRED, GT)
    unknown = metrics.evaluate(PRED, GT, TRIMAP)
    assert set(whole) == {"sad", "mse", "grad", "conn", "iou", "soft", "region"}
    assert whole["region"] == "whole" and unknown["region"] == "unknown"
    assert whole["sad"] == pytest.approx(0.00125) and unknown["sad"] == pytest.approx(0.0005)
    assert whole["mse"] == pytest.approx(0.203125) and unknown["mse"] == pytest.approx(0.125)
    assert whole["iou"] == pytest.approx(2 / 3) and unknown["iou"] == 1.0
    assert whole["grad"] == pytest.approx(metrics.gradient_error(PRED, GT))
    assert unknown["conn"] == pytest.approx(metrics.connectivity_error(PRED, GT, TRIMAP))
    assert all(isinstance(whole[k], float) for k in ("sad", "mse", "grad", "conn", "iou", "soft"))


def test_bad_inputs_raise_clear_errors():
    with pytest.raises(ValueError, match="differ in shape"):
        metrics.sad(np.zeros((2, 2)), np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        metrics.sad(np.full((2, 2), 1.5), np.zeros((2, 2)))
    with pytest.raises(ValueError, match="2-D"):
        metrics.sad(np.zeros((2, 2, 3)), np.zeros((2, 2, 3)))
    with pytest.raises(ValueError, match="no unknown pixels"):
        metrics.mse(PRED, GT, np.zeros((2, 2), dtype=np.uint8))


def test_soft_share_counts_half_transparent_pixels_of_the_prediction() -> None:
    from mattecli.metrics import evaluate, soft_share

    pred = np.zeros((10, 10), np.float32)
    pred[:, 5:] = 1.0
    pred[0, :4] = 0.5  # 4 hazy pixels
    pred[1, 0] = 0.02  # on the threshold: certain
    pred[1, 1] = 0.981  # above the upper threshold: certain
    pred[1, 2] = 0.97  # hazy
    gt = (pred > 0.5).astype(np.float32)
    assert soft_share(pred) == pytest.approx(0.05)
    assert soft_share(gt, gt) == 0.0
    assert evaluate(pred, gt)["soft"] == pytest.approx(0.05)
    trimap = np.zeros((10, 10), np.uint8)
    trimap[0] = 128  # region = first row: 4 of its 10 pixels are hazy
    assert soft_share(pred, gt, trimap) == pytest.approx(0.4)
    assert soft_share((pred * 255).round().astype(np.uint8)) == pytest.approx(0.05)
