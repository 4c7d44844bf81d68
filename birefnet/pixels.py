"""Pixel-array helpers every layer shares: bit-depth conversions, one box filter.

They live here, at the bottom of the layers, so the model, the workers, training and the video
pipeline convert and filter pixels the same way (one rounding, one window placement).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def to_uint8(images: np.ndarray) -> np.ndarray:
    """8-bit copy of uint8 or uint16 pixels (uint8 is returned as is), rounded to the nearest code.

    16-bit code ``v`` becomes ``round(v * 255 / 65535)`` = ``round(v / 257)``, so ``v * 257`` (an 8-bit
    value widened exactly) comes back unchanged.
    """
    if images.dtype == np.uint8:
        return images
    if images.dtype != np.uint16:
        raise TypeError(f"expected uint8 or uint16 pixels, got {images.dtype}")
    return ((images.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)


INTEGER_PEAKS: dict[torch.dtype, int] = {torch.uint8: 255, torch.uint16: 65535}  # the integer pixels, and 1.0 in them


def unit_float(x: torch.Tensor) -> torch.Tensor:
    """8/16-bit pixels scaled to [0, 1] float32; floats as float32, taken as already in [0, 1]."""
    peak = INTEGER_PEAKS.get(x.dtype)
    if peak is None:
        return x.float()
    return (x.to(torch.int32) if x.dtype == torch.uint16 else x).float() / peak  # few ops take uint16


def from_unit_float(x: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Floats in [0, 1] (clamped) as the nearest code of the 8/16-bit ``dtype``."""
    codes = torch.round(x.clamp(0.0, 1.0) * INTEGER_PEAKS[dtype])
    return (codes.to(torch.int32) if dtype == torch.uint16 else codes).to(dtype)


def _window_sum(x: torch.Tensor, size: int, dim: int) -> torch.Tensor:
    """Sums of ``size`` consecutive elements along ``dim`` (length shrinks by size - 1); consumes ``x``.

    The running sum over a 4K row reaches thousands, where float32 keeps only ~3 decimals; subtracting
    each line's mean first keeps the running sum near zero, so float32 stays accurate to ~1e-7.
    """
    mean = x.mean(dim=dim, keepdim=True)
    x.sub_(mean)
    shape = list(x.shape)
    shape[dim] += 1
    running = torch.empty(shape, dtype=x.dtype, device=x.device)
    running.narrow(dim, 0, 1).zero_()
    torch.cumsum(x, dim=dim, out=running.narrow(dim, 1, x.shape[dim]))
    n_out = x.shape[dim] - size + 1
    window = running.narrow(dim, size, n_out) - running.narrow(dim, 0, n_out)
    return window.add_(mean, alpha=size)


# up to this window side, sums of shifted copies beat running sums (2-4x at 3-7 on a CPU; even at 13)
_SHIFTED_SUM_LIMIT = 9


def _shifted_sum(x: torch.Tensor, size: int, dim: int) -> torch.Tensor:
    """Sums of ``size`` consecutive elements along ``dim`` (length shrinks by size - 1), as ``size``
    shifted copies added up: exact to float rounding whatever the values, for small windows."""
    n_out = x.shape[dim] - size + 1
    total = x.narrow(dim, 0, n_out).clone()
    for shift in range(1, size):
        total += x.narrow(dim, shift, n_out)
    return total


def box_filter(x: torch.Tensor, size: int) -> torch.Tensor:
    """Mean over a ``size`` x ``size`` window of (N, C, H, W) ``x``, borders replicated.

    Window placement matches the reference ``mean_blur`` of BiRefNet's ``image_proc.py``: for an even
    size the window reaches one pixel further right/down than left/up. Cost is O(1) per pixel (running
    sums), or O(size) with sums of shifted copies for the small windows where that is faster.
    """
    if size < 1:
        raise ValueError(f"box size must be >= 1, got {size}")
    if size == 1:
        return x
    before, after = (size - 1) // 2, size // 2
    padded = F.pad(x, (before, after, before, after), mode="replicate")
    window_sum = _shifted_sum if size <= _SHIFTED_SUM_LIMIT else _window_sum
    summed = window_sum(window_sum(padded, size, dim=-1), size, dim=-2)
    return summed.div_(float(size * size))


def box_filter_reference(x: torch.Tensor, size: int) -> torch.Tensor:
    """The published O(r^2) box filter (``avg_pool2d`` over the padded input): for benchmarks and tests."""
    before, after = (size - 1) // 2, size // 2
    return F.avg_pool2d(F.pad(x, (before, after, before, after), mode="replicate"), size, stride=1)
