"""Foreground colour estimation by blur fusion.

Blur fusion (Forte & Pitie 2021, "Approximate Fast Foreground Colour Estimation") removes the old
background's colour from semi-transparent pixels (hair over a green screen) so a composite over a new
background shows no spill. BiRefNet's demos run two fusion steps, box size 90 then 6; their GPU version
blurs with ``avg_pool2d`` of the full kernel (O(r^2) per pixel); here the box filter of
``birefnet.pixels`` sums the same windows in O(1) per pixel, on whatever device the tensors live.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from .pixels import box_filter, from_unit_float, unit_float

_EPS = 1e-5


BoxFilter = Callable[[torch.Tensor, int], torch.Tensor]


def _fusion_step(
    image: torch.Tensor, fg: torch.Tensor, bg: torch.Tensor, alpha: torch.Tensor, size: int, box: BoxFilter
) -> tuple[torch.Tensor, torch.Tensor]:
    """One blur-fusion update: returns the new foreground and the blurred background."""
    blurred_alpha = box(alpha, size)
    blurred_fg = box(fg * alpha, size) / (blurred_alpha + _EPS)
    blurred_bg = box(bg * (1 - alpha), size) / ((1 - blurred_alpha) + _EPS)
    fg = blurred_fg + alpha * (image - alpha * blurred_fg - (1 - alpha) * blurred_bg)
    return fg.clamp_(0, 1), blurred_bg


def estimate_foreground(
    image: torch.Tensor, alpha: torch.Tensor, radii: Sequence[int] = (90, 6), box: BoxFilter = box_filter
) -> torch.Tensor:
    """Decontaminated foreground colour for a batch.

    ``image`` (N, 3, H, W) and ``alpha`` (N, 1, H, W), floats in [0, 1], any device. Each entry of
    ``radii`` is one fusion step with that box size (the BiRefNet naming: "r=90" is a 90-pixel box);
    the first starts from F = B = image, later ones from the previous foreground and blurred
    background. Computed in float32, returned in the image's dtype. ``box`` swaps the box filter
    (benchmarks pass ``box_filter_reference``).
    """
    if image.ndim != 4 or image.shape[1] != 3:
        raise ValueError(f"image must be (N, 3, H, W), got {tuple(image.shape)}")
    if alpha.ndim != 4 or alpha.shape[1] != 1 or alpha.shape[-2:] != image.shape[-2:]:
        raise ValueError(f"alpha must be (N, 1, H, W) matching the image, got {tuple(alpha.shape)}")
    work_image = image.float()
    work_alpha = alpha.to(device=image.device, dtype=torch.float32)
    fg, bg = work_image, work_image
    for size in radii:
        fg, bg = _fusion_step(work_image, fg, bg, work_alpha, int(size), box)
    return fg.to(image.dtype)


def estimate_foreground_pixels(images: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """``estimate_foreground`` for pixel layouts: images (N, H, W, 3) uint8 or uint16, alpha (N, H, W)
    uint8, uint16 or float in [0, 1]; returns the foreground (N, H, W, 3) in the images' dtype."""
    image = unit_float(images).permute(0, 3, 1, 2)
    matte = unit_float(alpha.to(images.device)).reshape(image.shape[0], 1, *image.shape[-2:])
    foreground = estimate_foreground(image, matte).permute(0, 2, 3, 1)
    return from_unit_float(foreground, images.dtype)
