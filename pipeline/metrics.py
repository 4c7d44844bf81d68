"""Matte-quality yardstick for video: the video-matting metrics, plus a flicker score for real footage.

Definitions follow the video matting literature as evaluated by RobustVideoMatting (Lin et al. 2021):
per frame MAD, MSE, gradient error (Gaussian-derivative gradients, sigma 1.4), connectivity error
(thresholds in steps of 0.1, largest 4-connected component), and dtSSD between consecutive frames;
each is averaged over the frames of a clip. The plain functions return unscaled values; the clip
report carries the conventional scales in its field names (``mad_x1e3`` is 1000 x the mean absolute
difference). Alphas are float arrays in [0, 1].
"""

from __future__ import annotations

from dataclasses import dataclass, fields
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
    normed = cv2.normalize(alpha.astype(np.float64), None, 1.0, 0.0, cv2.NORM_MINMAX)
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
    for previous, threshold in zip(thresholds[:-1], thresholds[1:]):
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


def dtssd(pred: np.ndarray, pred_prev: np.ndarray, true: np.ndarray, true_prev: np.ndarray) -> float:
    """Temporal coherence between two consecutive frames (Erofeev et al. 2015).

    sqrt(mean(((pred - pred_prev) - (true - true_prev))^2)): how far the predicted alpha's change
    departs from the true change. Unscaled; the literature reports x1e2.
    """
    change = (pred.astype(np.float64) - pred_prev) - (true.astype(np.float64) - true_prev)
    return float(np.sqrt(np.square(change).mean()))


def _luma(frame: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2GRAY)


def flicker(
    frame: np.ndarray, frame_prev: np.ndarray, alpha: np.ndarray, alpha_prev: np.ndarray,
    still_threshold: float = 3.0,
) -> float:
    """Mean |alpha change| over pixels whose image did not change; needs no ground truth.

    A pixel counts as still when its 5x5-box-smoothed luma moved by less than ``still_threshold``
    (0-255 units), which tolerates sensor noise. Returns 0 when nothing is still. Unscaled.
    """
    luma_change = np.abs(
        cv2.blur(_luma(frame).astype(np.float32), (5, 5)) - cv2.blur(_luma(frame_prev).astype(np.float32), (5, 5))
    )
    still = luma_change < still_threshold
    if not still.any():
        return 0.0
    return float(np.abs(alpha.astype(np.float64) - alpha_prev)[still].mean())


@dataclass
class ClipScores:
    """Clip averages in the literature's units: MAD/MSE x1e3, Grad/Conn /1e3, dtSSD x1e2, flicker x1e3."""

    mad_x1e3: float
    mse_x1e3: float
    grad_div1e3: float
    conn_div1e3: float
    dtssd_x1e2: float
    flicker_x1e3: float
    frames: int

    def as_dict(self) -> dict[str, float]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


class ClipEvaluator:
    """Accumulates metrics frame by frame, so a long clip is scored in bounded memory.

    ``with_grad_conn=False`` skips the two costly per-frame metrics; metrics that could not be
    computed (no frames for flicker, a single frame for dtSSD) are reported as NaN.
    """

    def __init__(self, with_grad_conn: bool = True):
        self.with_grad_conn = with_grad_conn
        self._sums = dict.fromkeys(("mad", "mse", "grad", "conn", "dtssd", "flicker"), 0.0)
        self._frames = 0
        self._pairs = 0
        self._flicker_pairs = 0
        self._previous: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None

    def update(self, pred: np.ndarray, true: np.ndarray, frame: np.ndarray | None = None) -> None:
        """Add frames in order: alphas (N, H, W) or (H, W); ``frame`` (same N) RGB uint8 for flicker."""
        preds, trues = np.asarray(pred), np.asarray(true)
        if preds.ndim == 2:
            preds, trues = preds[None], trues[None]
            frame = None if frame is None else np.asarray(frame)[None]
        for i in range(len(preds)):
            p, t = preds[i], trues[i]
            f = None if frame is None else frame[i]
            self._sums["mad"] += mad(p, t)
            self._sums["mse"] += mse(p, t)
            if self.with_grad_conn:
                self._sums["grad"] += gradient_error(p, t)
                self._sums["conn"] += connectivity_error(p, t)
            if self._previous is not None:
                p_prev, t_prev, f_prev = self._previous
                self._sums["dtssd"] += dtssd(p, p_prev, t, t_prev)
                if f is not None and f_prev is not None:
                    self._sums["flicker"] += flicker(f, f_prev, p, p_prev)
                    self._flicker_pairs += 1
                self._pairs += 1
            self._previous = (p, t, f)
            self._frames += 1

    def result(self) -> ClipScores:
        n = max(self._frames, 1)
        nan = float("nan")
        return ClipScores(
            mad_x1e3=self._sums["mad"] / n * 1e3,
            mse_x1e3=self._sums["mse"] / n * 1e3,
            grad_div1e3=self._sums["grad"] / n / 1e3 if self.with_grad_conn else nan,
            conn_div1e3=self._sums["conn"] / n / 1e3 if self.with_grad_conn else nan,
            dtssd_x1e2=self._sums["dtssd"] / self._pairs * 1e2 if self._pairs else nan,
            flicker_x1e3=self._sums["flicker"] / self._flicker_pairs * 1e3 if self._flicker_pairs else nan,
            frames=self._frames,
        )


def evaluate_clip(pred: np.ndarray, true: np.ndarray, frames: np.ndarray | None = None) -> ClipScores:
    """Scores of a whole clip held in memory: ``pred``/``true`` (N, H, W), ``frames`` (N, H, W, 3)."""
    evaluator = ClipEvaluator()
    evaluator.update(pred, true, frames)
    return evaluator.result()
