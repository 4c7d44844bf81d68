"""How far the exact alpha itself moves in ways no motion model follows: the floor under a smoother's MAD.

A smoother that carries the previous frame's alpha forward can be no better than the best warp of that
alpha onto the next one. ``affine_floor`` fits the best affine warp between consecutive exact alphas
(OpenCV's ECC, on the alphas themselves, so no estimate from the image can beat it) and reports the MAD
it still leaves: sprites and edges resampled at a new sub-pixel phase each frame, non-rigid motion.
Families whose per-frame MAD is not well above this floor leave a smoother nothing to gain within a
MAD bound; ``self_error`` is what a given smoother adds when fed the exact alpha.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import cv2
import numpy as np

from pipeline.evaluation.runner import smooth_clip
from pipeline.temporal.smoother import TemporalSmoother

ECC_CRITERIA = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 200, 1e-7)


def best_affine_error(previous: np.ndarray, current: np.ndarray) -> float | None:
    """MAD between ``current`` and ``previous`` warped by the affine that best maps one onto the other
    (float alphas (H, W)); None when ECC does not converge (e.g. an empty matte)."""
    start = np.eye(2, 3, dtype=np.float32)
    try:
        everywhere = np.ones(current.shape, np.uint8)
        _, warp = cv2.findTransformECC(current, previous, start, cv2.MOTION_AFFINE, ECC_CRITERIA, everywhere, 1)
    except cv2.error:
        return None
    height, width = current.shape
    warped = cv2.warpAffine(previous, warp, (width, height), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                            borderMode=cv2.BORDER_REPLICATE)
    return float(np.abs(warped - current).mean())


def affine_floor(truth: np.ndarray, cuts: Sequence[int]) -> float:
    """Median over consecutive frame pairs within a shot of ``best_affine_error`` (x1 alpha units)."""
    errors = [best_affine_error(truth[t - 1], truth[t]) for t in range(1, len(truth)) if t not in cuts]
    found = [e for e in errors if e is not None]
    return float(np.median(found)) if found else 0.0


def self_error(make_smoother: Callable[[], TemporalSmoother], images: np.ndarray, truth: np.ndarray) -> float:
    """MAD a smoother adds on its own: its output against the exact alpha when fed the exact alpha."""
    smoothed, _ = smooth_clip(make_smoother(), images, truth.astype(np.float32))
    return float(np.abs(smoothed - truth).mean())
