"""Matte-quality yardstick for video: the video-matting metrics, plus a flicker score for real footage.

Definitions follow the video matting literature as evaluated by RobustVideoMatting (Lin et al. 2021):
the per-frame MAD, MSE, gradient and connectivity errors (``birefnet.metrics``), and dtSSD between
consecutive frames; each is averaged over the frames of a clip. Without ground truth (real footage),
``still_flicker`` and ``departure`` score a smoothed matte against the image and the per-frame matte.
The plain functions return unscaled values; the clip report carries the conventional scales in its
field names (``mad_x1e3`` is 1000 x the mean absolute difference). Alphas are float arrays in [0, 1].
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import cv2
import numpy as np

from birefnet.metrics import connectivity_error, gradient_error, mad, mse


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


def still_flicker(frames: np.ndarray, alphas: np.ndarray) -> float:
    """Mean ``flicker`` over the consecutive pairs of a clip, frames (N, H, W, 3) with alphas (N, H, W);
    NaN for fewer than two frames. Unscaled."""
    pairs = [flicker(frames[i], frames[i - 1], alphas[i], alphas[i - 1]) for i in range(1, len(frames))]
    return float(np.mean(pairs)) if pairs else float("nan")


def departure(smoothed: np.ndarray, per_frame: np.ndarray) -> float:
    """Mean |smoothed - per-frame alpha| over a clip: how far smoothing moved the matte from what the
    model said. With ``still_flicker`` it scores footage without ground truth: a smoother that blurs
    everything lowers flicker but pays here. Unscaled."""
    return mad(smoothed, per_frame)


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
        self._previous: tuple[np.ndarray, np.ndarray, np.ndarray | None] | None = None  # pred, true, frame

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
