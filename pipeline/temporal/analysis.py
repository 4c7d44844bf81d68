"""What the smoother measures of each frame: luma and alpha thumbnails, and colour histograms for cuts."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from birefnet.pixels import INTEGER_PEAKS
from pipeline.temporal.kernels import uses_opencv

_LUMA = (0.299, 0.587, 0.114)


@dataclass
class FrameContext:
    """What the smoother remembers of a frame: colour, luma (0-255) and per-frame alpha thumbnails (means
    over each cell), and a colour histogram for cut detection."""

    luma: torch.Tensor  # (1, 1, h, w) float32
    alpha: torch.Tensor  # (1, 1, h, w) float32, the unsmoothed prediction (its own copy)
    histogram: torch.Tensor  # (3 * bins,) float32, sums to 3
    full_size: tuple[int, int]
    colour: torch.Tensor  # (1, 3, h, w) float32 RGB in [0, 1], the guide of ``edges.along_edges``


def analysis_factor(height: int, width: int, analysis_size: int) -> int:
    """Integer downsampling factor that brings the long side to at most ``analysis_size``."""
    return max(1, -(-max(height, width) // analysis_size))


def _area_downsample(image: np.ndarray, factor: int) -> np.ndarray:
    """Mean over each ``factor`` x ``factor`` cell (partial cells at the edges) with OpenCV. Halving
    steps first: OpenCV's 2x area path is ~4x faster than one 4x step at 1080p."""
    while factor > 1:
        step = 2 if factor % 2 == 0 else factor
        height, width = image.shape[:2]
        image = cv2.resize(image, (-(-width // step), -(-height // step)), interpolation=cv2.INTER_AREA)
        factor //= step
    return image


def _thumbnails(images: torch.Tensor, factor: int) -> torch.Tensor:
    """Area-averaged thumbnails (N, h, w, C) float32 of (N, H, W, C) images, on their device."""
    if factor == 1:
        return images.to(torch.float32, copy=True)  # never a view of the caller's array: the state keeps it
    if uses_opencv(images.device):
        small = np.stack([_area_downsample(im, factor) for im in images.numpy()])
        return torch.from_numpy(small.reshape(*small.shape[:3], -1)).float()
    return F.avg_pool2d(images.permute(0, 3, 1, 2).float(), factor, ceil_mode=True).permute(0, 2, 3, 1)


def _alpha_thumbnails(alphas: torch.Tensor, factor: int) -> torch.Tensor:
    """(N, 1, h, w) float32 thumbnails in [0, 1] of float alphas, or of 8/16-bit ones on the CPU (N, H, W).

    Integer alphas take their first area step in their own type (OpenCV rounds it: within half a
    quantum of the exact mean) and the rest in float: at 1080p that first step on a quarter of the
    bytes costs about a third of converting the whole frame to float first."""
    if alphas.is_floating_point():
        return _thumbnails(alphas[..., None], factor).permute(0, 3, 1, 2)
    scale = np.float32(1.0 / INTEGER_PEAKS[alphas.dtype])
    first = 1 if factor == 1 else 2 if factor % 2 == 0 else factor
    small = [_area_downsample(np.multiply(_area_downsample(a, first), scale, dtype=np.float32), factor // first)
             for a in alphas.numpy()]
    return torch.from_numpy(np.stack(small))[:, None]


def _image_thumbnails(frames: torch.Tensor, factor: int, bins: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Colour thumbnails (N, 3, h, w) float32 in [0, 1], luma thumbnails (N, 1, h, w) float32 in 0-255 and
    colour histograms (N, 3 * bins) summing to 3 of uint8 frames (N, H, W, 3). On the CPU one frame at a
    time in OpenCV, on the 8-bit thumbnails (about three times cheaper at 1080p than torch's batched float
    ops on one core); elsewhere in torch on the device."""
    if uses_opencv(frames.device):
        colours, lumas, histograms = [], [], []
        for image in frames.numpy():
            small = _area_downsample(image, factor).astype(np.float32)
            colours.append(np.multiply(small, np.float32(1 / 255)).transpose(2, 0, 1))
            lumas.append(cv2.cvtColor(small, cv2.COLOR_RGB2GRAY))
            sample = np.ascontiguousarray(small[::2, ::2])  # every other pixel is plenty for a cut detector
            per_channel = [cv2.calcHist([plane], [0], None, [bins], [0, 256]).ravel() for plane in cv2.split(sample)]
            histograms.append(np.concatenate(per_channel) / np.float32(sample.shape[0] * sample.shape[1]))
        return (torch.from_numpy(np.stack(colours)), torch.from_numpy(np.stack(lumas))[:, None],
                torch.from_numpy(np.stack(histograms)).float())
    n = frames.shape[0]
    rgb = _thumbnails(frames, factor)  # (n, h, w, 3), channels last
    luma = (rgb @ torch.tensor(_LUMA, device=rgb.device)).unsqueeze(1)
    quantised = (rgb[:, ::2, ::2] * (bins / 256.0)).long().clamp_(0, bins - 1)
    slots = quantised + torch.arange(3, device=rgb.device) * bins
    slots = slots + (torch.arange(n, device=rgb.device) * 3 * bins).view(n, 1, 1, 1)
    counts = torch.bincount(slots.flatten(), minlength=n * 3 * bins).view(n, 3 * bins).float()
    return rgb.permute(0, 3, 1, 2).div(255.0), luma, counts / quantised[0, ..., 0].numel()


def frame_contexts(
    frames: torch.Tensor, alphas: torch.Tensor, analysis_size: int, bins: int = 16
) -> list[FrameContext]:
    """Contexts for a batch: frames (N, H, W, 3) uint8 and alphas (N, H, W), float on their device or 8/16-bit
    on the CPU.
    Thumbnails are in 0-255 units, the units of the scales in ``SmootherConfig``."""
    n, height, width, _ = frames.shape
    factor = analysis_factor(height, width, analysis_size)
    colour, luma, hist = _image_thumbnails(frames, factor, bins)
    small_alpha = _alpha_thumbnails(alphas, factor)
    return [
        FrameContext(luma[i : i + 1], small_alpha[i : i + 1], hist[i], (height, width), colour[i : i + 1])
        for i in range(n)
    ]


def is_scene_cut(previous: FrameContext, current: FrameContext, threshold: float) -> bool:
    """True when the colour distributions of two frames differ by more than ``threshold`` in [0, 1]."""
    if previous.full_size != current.full_size:
        return True
    distance = 0.5 * (previous.histogram - current.histogram).abs().sum().item() / 3.0
    return distance > threshold
