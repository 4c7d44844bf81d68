"""Validation metrics: DIS-style (MAE, S-measure, weighted F-measure) and matting (SAD, MSE, Grad).

MAE/MSE/Grad come from ``birefnet.metrics`` (the per-frame matting errors); this module adds the structural
measures of salient-object / dichotomous segmentation. S-measure after Fan et al. (ICCV 2017) and the
weighted F-measure after Margolin et al. (CVPR 2014), both on a binarised (>= 0.5) ground truth.
Inputs are float arrays in [0, 1] of equal shape.
"""

from __future__ import annotations

import cv2
import numpy as np

from birefnet.metrics import gradient_error, mad, mse

_EPS = np.finfo(np.float64).eps


def _object_score(pred: np.ndarray, region: np.ndarray) -> float:
    values = pred[region]
    if values.size == 0:
        return 0.0
    mean = values.mean()
    std = values.std(ddof=1) if values.size > 1 else 0.0
    return float(2.0 * mean / (mean**2 + 1.0 + std + _EPS))


def _block_ssim(pred: np.ndarray, gt: np.ndarray) -> float:
    n = pred.size
    if n < 2:
        return 0.0
    x, y = pred.mean(), gt.mean()
    var_x = np.square(pred - x).sum() / (n - 1)
    var_y = np.square(gt - y).sum() / (n - 1)
    cov = ((pred - x) * (gt - y)).sum() / (n - 1)
    alpha = 4 * x * y * cov
    beta = (x**2 + y**2) * (var_x + var_y)
    if alpha != 0:
        return float(alpha / (beta + _EPS))
    return 1.0 if beta == 0 else 0.0


def s_measure(pred: np.ndarray, gt: np.ndarray) -> float:
    """Structure measure: half object-aware, half region-aware similarity, in [0, 1]."""
    pred = pred.astype(np.float64)
    mask = gt >= 0.5
    share = mask.mean()
    if share == 0:
        return float(1.0 - pred.mean())
    if share == 1:
        return float(pred.mean())
    object_score = share * _object_score(pred, mask) + (1 - share) * _object_score(1.0 - pred, ~mask)
    h, w = mask.shape
    rows, cols = np.nonzero(mask)
    cy, cx = int(round(rows.mean())) + 1, int(round(cols.mean())) + 1
    gt_f = mask.astype(np.float64)
    region_score = 0.0
    for ys, xs in ((slice(0, cy), slice(0, cx)), (slice(0, cy), slice(cx, w)),
                   (slice(cy, h), slice(0, cx)), (slice(cy, h), slice(cx, w))):
        block = pred[ys, xs]
        if block.size:
            region_score += block.size / (h * w) * _block_ssim(block, gt_f[ys, xs])
    return float(max(0.0, 0.5 * object_score + 0.5 * region_score))


def weighted_f_measure(pred: np.ndarray, gt: np.ndarray, beta2: float = 1.0) -> float:
    """Weighted F-measure: errors spread to their nearest object pixel and blurred, background errors
    weighted up with their distance from the object."""
    pred = pred.astype(np.float64)
    mask = gt >= 0.5
    if not mask.any():
        return float(1.0 - pred.mean())
    error = np.abs(pred - mask)
    # distance of every pixel to the nearest object pixel, and which pixel that is
    distance, labels = cv2.distanceTransformWithLabels(
        (~mask).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE, labelType=cv2.DIST_LABEL_PIXEL)
    object_flat = np.flatnonzero(mask)
    pixel_of_label = np.zeros(labels.max() + 1, dtype=np.int64)
    pixel_of_label[labels.ravel()[object_flat]] = object_flat
    spread = error.ravel()[pixel_of_label[labels.ravel()]].reshape(error.shape)
    spread[mask] = error[mask]
    blurred = cv2.GaussianBlur(spread, (7, 7), 5, borderType=cv2.BORDER_CONSTANT)
    min_error = np.where(mask & (blurred < error), blurred, error)
    weight = np.where(mask, 1.0, 2.0 - np.exp(np.log(0.5) / 5.0 * distance))
    weighted = min_error * weight
    tp = mask.sum() - weighted[mask].sum()
    fp = weighted[~mask].sum()
    recall = 1.0 - weighted[mask].mean()
    precision = tp / (_EPS + tp + fp)
    return float((1 + beta2) * recall * precision / (_EPS + recall + beta2 * precision))


def pair_metrics(pred: np.ndarray, gt: np.ndarray) -> dict[str, float]:
    """All validation metrics of one prediction, in their conventional units (SAD and Grad /1e3)."""
    return {
        "mae": mad(pred, gt),
        "s_measure": s_measure(pred, gt),
        "weighted_f": weighted_f_measure(pred, gt),
        "sad": float(np.abs(pred.astype(np.float64) - gt).sum() / 1e3),
        "mse": mse(pred, gt),
        "grad": gradient_error(pred, gt) / 1e3,
    }


# direction in which each metric improves: the trainer keeps the checkpoint best on one of them
HIGHER_IS_BETTER = {"mae": False, "s_measure": True, "weighted_f": True, "sad": False, "mse": False, "grad": False}


class MetricAverager:
    """Running means of ``pair_metrics`` over a validation set."""

    def __init__(self) -> None:
        self.sums: dict[str, float] = {}
        self.count = 0

    def update(self, preds: np.ndarray, gts: np.ndarray) -> None:
        for pred, gt in zip(preds, gts, strict=False):
            for name, value in pair_metrics(pred, gt).items():
                self.sums[name] = self.sums.get(name, 0.0) + value
            self.count += 1

    def result(self) -> dict[str, float]:
        return {name: total / max(self.count, 1) for name, total in self.sums.items()}
