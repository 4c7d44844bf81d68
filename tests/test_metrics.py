"""Matting metrics against values computed by hand on tiny arrays."""

import math

import numpy as np
import pytest

from birefnet.metrics import _gauss_derivative_kernels, connectivity_error, gradient_error, mad, mse
from pipeline.metrics import ClipEvaluator, dtssd, evaluate_clip, flicker


def test_mad_and_mse():
    pred = np.array([[0.0, 0.5], [1.0, 0.25]], np.float32)
    true = np.array([[0.0, 1.0], [0.5, 0.25]], np.float32)
    assert mad(pred, true) == pytest.approx((0 + 0.5 + 0.5 + 0) / 4)
    assert mse(pred, true) == pytest.approx((0.25 + 0.25) / 4)


def test_dtssd_compares_changes_not_values():
    true_prev = np.zeros((2, 2))
    true = np.zeros((2, 2))
    pred_prev = np.full((2, 2), 0.3)  # wrong, but steadily wrong: no temporal error
    assert dtssd(pred_prev, pred_prev, true, true_prev) == 0.0
    pred = pred_prev.copy()
    pred[0, 0] += 1.0  # one of four pixels changes by 1 while the truth is still
    assert dtssd(pred, pred_prev, true, true_prev) == pytest.approx(math.sqrt(1 / 4))


def test_gradient_kernels_and_error():
    kernel_x, kernel_y = _gauss_derivative_kernels(1.4)
    # half size = ceil(1.4 * sqrt(-2 ln(sqrt(2 pi) * 1.4 * 0.01))) = ceil(3.62) = 4
    assert kernel_x.shape == (9, 9)
    assert np.sum(kernel_x**2) == pytest.approx(1.0)
    assert np.allclose(kernel_x, -kernel_x[:, ::-1]) and np.allclose(kernel_y, kernel_x.T)
    ramp = np.tile(np.linspace(0, 1, 16), (16, 1))
    assert gradient_error(ramp, ramp) == 0.0
    assert gradient_error(np.zeros_like(ramp) + (ramp > 0.5), ramp) > 0.0


def test_connectivity_error_by_hand():
    # Thresholds 0.1..1: both >= t only at the first two pixels, so the third pixel's level is 0.0
    # and the others stay connected (level 1). true_diff = [0, 0, 1] -> true_phi = [1, 1, 0];
    # pred_diff = [0, 0, 0] -> pred_phi = [1, 1, 1]; sum |difference| = 1.
    true = np.array([[1.0, 1.0, 1.0]])
    pred = np.array([[1.0, 1.0, 0.0]])
    assert connectivity_error(pred, true) == pytest.approx(1.0)
    assert connectivity_error(true, true) == 0.0


def test_flicker_counts_alpha_change_only_where_the_image_is_still():
    frame = np.full((20, 20, 3), 100, np.uint8)
    alpha_prev = np.zeros((20, 20))
    alpha = np.full((20, 20), 0.2)
    assert flicker(frame, frame, alpha, alpha_prev) == pytest.approx(0.2)
    moved = frame.copy()
    moved[:, 10:] = 200  # right half changed: only the left, still half counts
    alpha[:, :10] = 0.0
    assert flicker(moved, frame, alpha, alpha_prev) == pytest.approx(0.0)
    everything_moved = np.full_like(frame, 250)
    assert flicker(everything_moved, frame, alpha, alpha_prev) == 0.0


def test_clip_scores_use_the_literature_scales():
    true = np.zeros((3, 8, 8), np.float32)
    pred = np.zeros((3, 8, 8), np.float32)
    pred[1] = 0.1  # frame 1 off by 0.1 everywhere: MAD 0.1/3 per clip; dtSSD 0.1 for both pairs
    frames = np.full((3, 8, 8, 3), 50, np.uint8)
    scores = evaluate_clip(pred, true, frames)
    assert scores.mad_x1e3 == pytest.approx(1e3 * 0.1 / 3, rel=1e-5)
    assert scores.mse_x1e3 == pytest.approx(1e3 * 0.01 / 3, rel=1e-5)
    assert scores.dtssd_x1e2 == pytest.approx(1e2 * 0.1, rel=1e-5)
    assert scores.flicker_x1e3 == pytest.approx(1e3 * 0.1, rel=1e-5)
    assert scores.frames == 3


def test_evaluator_streams_like_a_whole_clip():
    rng = np.random.default_rng(0)
    true = rng.random((5, 12, 12)).astype(np.float32)
    pred = np.clip(true + 0.1 * rng.standard_normal(true.shape), 0, 1).astype(np.float32)
    streamed = ClipEvaluator()
    for i in range(0, 5, 2):
        streamed.update(pred[i : i + 2], true[i : i + 2])
    whole = evaluate_clip(pred, true)
    for name, value in whole.as_dict().items():
        other = streamed.result().as_dict()[name]
        assert (math.isnan(value) and math.isnan(other)) or value == pytest.approx(other)
    assert math.isnan(whole.flicker_x1e3)  # no frames given: not computed, not zero
