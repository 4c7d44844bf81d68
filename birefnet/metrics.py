"""Per-frame matting error measures: MAD, MSE, gradient error and connectivity error.

Definitions follow the matting literature as evaluated by RobustVideoMatting (Lin et al. 2021):
gradients are Gaussian derivatives (sigma 1.4) of min-max normalised alphas, connectivity uses
thresholds in steps of 0.1 and the largest 4-connected component. Each function returns the unscaled
value; the literature's scales are the caller's (``pipeline.metrics`` for clips, ``birefnet.train.metrics``
for validation). Alphas are float arrays in [0, 1].
"""

from __future__ import annotations

from functools import lru_cache

import cv2
import numpy as np

GRAD_SIGMA = 1.4
CONN_STEP = 0.1


def mad(pred: np.ndarray, true: np.ndarray) -> float:
    """Mean absolute difference (unscaled; the literature reports x1e3)."""
    return float(np.abs(pred.astype(np.float64) - true).mean())


def mse(pred: np.ndarray, true: np.ndarray) -> float:
    """Mean squared error (unscaled; the literature reports x1e3)."""
    return float(np.square(pred.astype(np.float64) - true).mean())


@lru_cache(maxsize=4)
def _gauss_derivative_kernels(sigma: float, epsilon: float = 1e-2) -> tuple[np.ndarray, np.ndarray]:
    """The x and y Gaussian-derivative kernels of the gradient error, each with unit L2 norm."""
    half = int(np.ceil(sigma * np.sqrt(-2 * np.log(np.sqrt(2 * np.pi) * sigma * epsilon))))
    offsets = np.arange(-half, half + 1, dtype=np.float64)
    gauss = np.exp(-(offsets**2) / (2 * sigma**2)) / (sigma * np.sqrt(2 * np.pi))
    dgauss = -offsets * gauss / sigma**2
    kernel_x = np.outer(gauss, dgauss)  # rows: Gaussian in y, columns: derivative in x
    kernel_x /= np.sqrt(np.square(kernel_x).sum())
    return kernel_x, np.ascontiguousarray(kernel_x.T)


def _gradient_magnitude(alpha: np.ndarray, sigma: float) -> np.ndarray:
    kernel_x, kernel_y = _gauss_derivative_kernels(sigma)
    values = alpha.astype(np.float64)
    low, span = values.min(), np.ptp(values)  # min-max to [0, 1]; a flat alpha has no gradient
    normed = (values - low) / span if span > 0 else np.zeros_like(values)
    grad_x = cv2.filter2D(normed, -1, kernel_x, borderType=cv2.BORDER_REPLICATE)
    grad_y = cv2.filter2D(normed, -1, kernel_y, borderType=cv2.BORDER_REPLICATE)
    return np.sqrt(grad_x**2 + grad_y**2)


def gradient_error(pred: np.ndarray, true: np.ndarray, sigma: float = GRAD_SIGMA) -> float:
    """Sum of squared differences of Gaussian-gradient magnitudes, each alpha min-max normalised.

    Unscaled sum; the literature reports it divided by 1e3.
    """
    diff = _gradient_magnitude(pred, sigma) - _gradient_magnitude(true, sigma)
    return float(np.square(diff).sum())


def connectivity_error(pred: np.ndarray, true: np.ndarray, step: float = CONN_STEP) -> float:
    """Connectivity error (Rhemann et al. 2009): sum over pixels of |phi_pred - phi_true|.

    A pixel's connectivity level is the last threshold at which it still belongs to the largest
    4-connected component of the region both alphas hold above the threshold. Unscaled sum; the
    literature reports it divided by 1e3.
    """
    pred = pred.astype(np.float64)
    true = true.astype(np.float64)
    thresholds = np.arange(0.0, 1.0 + step, step)
    level = np.full(true.shape, -1.0)
    for previous, threshold in zip(thresholds[:-1], thresholds[1:], strict=True):
        both = ((true >= threshold) & (pred >= threshold)).astype(np.uint8)
        count, labels, stats, _ = cv2.connectedComponentsWithStats(both, connectivity=4)
        in_largest = np.zeros(true.shape, dtype=bool)
        if count > 1:
            in_largest = labels == 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
        level[(level == -1) & ~in_largest] = previous
    level[level == -1] = 1.0
    true_diff = true - level
    pred_diff = pred - level
    true_phi = 1 - true_diff * (true_diff >= 0.15)
    pred_phi = 1 - pred_diff * (pred_diff >= 0.15)
    return float(np.abs(true_phi - pred_phi).sum())
