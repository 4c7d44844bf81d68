"""Optical flow between luma thumbnails and the warp that follows it: OpenCV DIS on the CPU, a
pyramidal Lucas-Kanade in torch on a GPU."""

from __future__ import annotations

import logging

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from birefnet.pixels import box_filter
from pipeline.temporal.kernels import uses_opencv

log = logging.getLogger("birefnet_video")

MIN_FLOW_SIZE = 12  # px; OpenCV DIS fails on smaller images, and flow means little there anyway


def warp(image: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """Sample ``image`` (N, C, H, W) at x + flow(x); ``flow`` (N, 2, H, W) in pixels, borders replicated,
    bilinear. On the CPU OpenCV's remap with relative maps, several times faster than building the
    sampling grid and running torch's grid_sample (which stays the GPU path)."""
    if uses_opencv(image.device):
        return _remap(image, flow)
    _, _, height, width = image.shape
    ys = torch.arange(height, device=image.device, dtype=image.dtype).view(1, height, 1)
    xs = torch.arange(width, device=image.device, dtype=image.dtype).view(1, 1, width)
    gx = (xs + flow[:, 0]) * (2.0 / max(width - 1, 1)) - 1.0
    gy = (ys + flow[:, 1]) * (2.0 / max(height - 1, 1)) - 1.0
    grid = torch.stack((gx, gy), dim=-1)
    return F.grid_sample(image, grid, mode="bilinear", padding_mode="border", align_corners=True)


def _remap(image: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """OpenCV remap of each (N, C) plane of ``image`` at x + flow(x), with the flow's x and y planes made
    absolute sampling maps first (separate planes: ~2x faster than one interleaved map; absolute maps
    ~40% faster than OpenCV's relative ones at 480x270)."""
    out = torch.empty(image.shape, dtype=torch.float32)
    height, width = image.shape[-2:]
    offsets = np.ascontiguousarray(flow.numpy(), dtype=np.float32)
    columns = np.arange(width, dtype=np.float32)
    rows = np.arange(height, dtype=np.float32)[:, None]
    for n in range(image.shape[0]):
        map_x, map_y = offsets[n, 0] + columns, offsets[n, 1] + rows
        for c in range(image.shape[1]):
            plane = np.ascontiguousarray(image[n, c].numpy(), dtype=np.float32)
            cv2.remap(plane, map_x, map_y, cv2.INTER_LINEAR, dst=out[n, c].numpy(), borderMode=cv2.BORDER_REPLICATE)
    return out


def dis_flow(current: torch.Tensor, previous: torch.Tensor, dis: cv2.DISOpticalFlow) -> torch.Tensor:
    """OpenCV DIS flow such that current(x) ~ previous(x + flow), from luma rounded to 8 bits."""
    cur = cv2.convertScaleAbs(current[0, 0].cpu().numpy())  # luma is >= 0: this rounds and saturates
    prev = cv2.convertScaleAbs(previous[0, 0].cpu().numpy())
    flow = dis.calc(cur, prev, None)  # type: ignore[call-overload]  # None: OpenCV allocates the flow
    planes = np.ascontiguousarray(flow.transpose(2, 0, 1))  # (2, h, w): the warps read each plane whole
    return torch.from_numpy(planes)[None].to(current.device)


def lucas_kanade_flow(
    current: torch.Tensor, previous: torch.Tensor, levels: int = 5, iterations: int = 5, window: int = 13,
    regularisation: float = 100.0,
) -> torch.Tensor:
    """Dense pyramidal Lucas-Kanade in torch (the GPU path): flow with current(x) ~ previous(x + flow).

    ``current``/``previous`` are (1, 1, h, w) luma. Each level refines the upsampled coarser flow by
    solving the windowed 2x2 normal equations per pixel, with ``regularisation`` (in squared luma units)
    added to their diagonal so that windows of little texture move little, then takes the 5x5 median of
    the flow, which drops the outliers of windows that straddle two motions. Chosen against DIS (the CPU
    path) on how well each carries the exact alpha from frame to frame on the evaluation's tuning scenes:
    the earlier 4 levels, window 9, no median and 1e-2 carried it with 37-49% more error; these settings
    with 1% more to 5% less (docs/benchmarks.md, "The GPU path").
    """
    pyramid = [(current, previous)]
    for _ in range(levels - 1):
        cur, prev = pyramid[-1]
        if min(cur.shape[-2:]) < 2 * window:
            break
        pyramid.append((F.avg_pool2d(cur, 2), F.avg_pool2d(prev, 2)))
    flow = torch.zeros(1, 2, *pyramid[-1][0].shape[-2:], device=current.device)
    for cur, prev in reversed(pyramid):
        if flow.shape[-2:] != cur.shape[-2:]:
            flow = 2.0 * F.interpolate(flow, size=cur.shape[-2:], mode="bilinear", align_corners=False)
        for _ in range(iterations):
            warped = warp(prev, flow)
            gx, gy = _difference(warped, 3), _difference(warped, 2)
            err = cur - warped
            sums = box_filter(torch.cat([gx * gx, gx * gy, gy * gy, gx * err, gy * err], dim=1), window)
            a, b, c, ex, ey = sums.unbind(dim=1)
            a, c = a + regularisation, c + regularisation
            det = a * c - b * b
            du = (c * ex - b * ey) / det
            dv = (a * ey - b * ex) / det
            flow = flow + torch.stack((du, dv), dim=1).clamp(-2.0, 2.0)
        flow = _median5(flow)
    return flow


def _median5(x: torch.Tensor) -> torch.Tensor:
    """Median over the 5x5 square around each pixel of (N, C, H, W), edges replicated (as OpenCV's medianBlur)."""
    patches = F.pad(x, (2, 2, 2, 2), mode="replicate").unfold(2, 5, 1).unfold(3, 5, 1)
    return patches.reshape(*x.shape, 25).median(dim=-1).values


def _difference(x: torch.Tensor, dim: int) -> torch.Tensor:
    """(x[i + 2] - x[i - 2]) / 2 along ``dim`` (2 = rows, 3 = columns) of (N, C, H, W), edges replicated."""
    after, before = ((0, 2, 0, 0), (2, 0, 0, 0)) if dim == 3 else ((0, 0, 0, 2), (0, 0, 2, 0))
    size = x.shape[dim]
    ahead = F.pad(x, after, mode="replicate").narrow(dim, 2, size)
    behind = F.pad(x, before, mode="replicate").narrow(dim, 0, size)
    return (ahead - behind) / 2


class FlowEstimator:
    """Flow with current(x) ~ previous(x + flow) by ``backend``: ``dis``, ``torch``, or ``auto`` (DIS for
    CPU tensors, Lucas-Kanade on a GPU). Keeps one DIS instance, which is costly to create. DIS runs its
    ultrafast preset (no variational refinement): on the evaluation's tuning split it smoothed as the fast
    preset did to within a point, at under half its cost (docs/benchmarks.md).

    Thumbnails under ``MIN_FLOW_SIZE`` pixels on a side get zero flow (smoothing without motion
    compensation), with one warning per estimator."""

    def __init__(self, backend: str = "auto"):
        self.backend = backend
        self._dis: cv2.DISOpticalFlow | None = None
        self._warned_small = False

    def __call__(self, current: torch.Tensor, previous: torch.Tensor) -> torch.Tensor:
        height, width = current.shape[-2:]
        if min(height, width) < MIN_FLOW_SIZE:
            if not self._warned_small:
                log.warning("frames of %dx%d px are too small for optical flow; smoothing without motion "
                            "compensation", width, height)
                self._warned_small = True
            return torch.zeros(1, 2, height, width, device=current.device)
        backend = self.backend
        if backend == "auto":
            backend = "dis" if uses_opencv(current.device) else "torch"
        if backend == "torch":
            return lucas_kanade_flow(current, previous)
        if self._dis is None:
            self._dis = cv2.DISOpticalFlow.create(cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST)
        return dis_flow(current, previous, self._dis)
