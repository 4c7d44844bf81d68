"""Small per-pixel map operations the motion models and the carry-over share (OpenCV on the CPU, where
it is many times faster than torch on these small maps; torch on a GPU)."""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from pipeline.temporal.kernels import uses_opencv


def smoothed_abs(x: torch.Tensor) -> torch.Tensor:
    """3x3 local mean of |x| for a (1, 1, h, w) map (OpenCV on the CPU: ~20x faster than torch there)."""
    if uses_opencv(x.device):
        return torch.from_numpy(cv2.blur(np.abs(x[0, 0].numpy()), (3, 3), borderType=cv2.BORDER_REPLICATE))[None, None]
    return F.avg_pool2d(x.abs(), 3, stride=1, padding=1, count_include_pad=False)


def resize_bilinear_into(x: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """(1, C, h, w) resized to ``out``'s (1, C, H, W), bilinear with pixel centres aligned, written into
    ``out`` (the GPU path; the CPU one resizes only the window that changes, ``carry``)."""
    return out.copy_(F.interpolate(x, size=out.shape[-2:], mode="bilinear", align_corners=False))


def local_max(x: torch.Tensor, radius: int) -> torch.Tensor:
    """Maximum of a (1, 1, H, W) map over the (2 radius + 1)^2 square around each pixel."""
    if uses_opencv(x.device):
        return _opencv_morphology(cv2.dilate, x, radius)
    return F.max_pool2d(x, 2 * radius + 1, stride=1, padding=radius)


def local_min(x: torch.Tensor, radius: int) -> torch.Tensor:
    """Minimum of a (1, 1, H, W) map over the (2 radius + 1)^2 square around each pixel."""
    if uses_opencv(x.device):
        return _opencv_morphology(cv2.erode, x, radius)
    return local_max(-x, radius).neg_()


def _opencv_morphology(operation: Callable[..., np.ndarray], x: torch.Tensor, radius: int) -> torch.Tensor:
    """``cv2.dilate`` or ``cv2.erode`` of a CPU (1, 1, H, W) map over a square of side 2 radius + 1 (their
    default border leaves the outside out, as max pooling's padding does)."""
    kernel = np.ones((2 * radius + 1, 2 * radius + 1), np.uint8)
    return torch.from_numpy(operation(np.ascontiguousarray(x[0, 0].numpy()), kernel))[None, None]


def median_of_three(a: torch.Tensor, b: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """Per-pixel median of three maps of one shape."""
    return torch.maximum(torch.minimum(a, b), torch.minimum(torch.maximum(a, b), c))
