"""Modulated deformable convolution (DCNv2) in plain PyTorch.

Same semantics as ``torchvision.ops.deform_conv2d``: offsets are (dy, dx) pairs per kernel tap in
row-major tap order, every sample is bilinear, and corners outside the image read zero. The sampling is
done by ``grid_sample`` (one fused kernel on CPU and GPU) for all taps of a chunk at once, followed by
a single matrix product with the weight, so there is no Python loop over pixels or frames.

``deform_conv2d`` dispatches to torchvision's op on CUDA when torchvision is importable and works
(it is never a dependency); ``BIREFNET_DEFORM_CONV=torch|torchvision|auto`` forces a choice.
"""

from __future__ import annotations

import functools
import os

import torch
import torch.nn.functional as F
from torch import Tensor, nn

# Largest sampled tensor (elements) materialised at once; bigger kernels are processed in tap chunks.
_MAX_SAMPLED_ELEMENTS = 1 << 26


@functools.lru_cache(maxsize=1)
def _torchvision_deform_conv2d():
    """torchvision's op if it imports and runs here, else None."""
    try:
        from torchvision.ops import deform_conv2d as tv_deform_conv2d
    except Exception:  # a broken or absent torchvision is the normal case
        return None
    return tv_deform_conv2d


def _use_torchvision(x: Tensor) -> bool:
    choice = os.environ.get("BIREFNET_DEFORM_CONV", "auto")
    if choice == "torch":
        return False
    if choice == "torchvision":
        return _torchvision_deform_conv2d() is not None
    return x.is_cuda and _torchvision_deform_conv2d() is not None


def deform_conv2d_torch(
    x: Tensor,
    offset: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    mask: Tensor | None = None,
    stride: int = 1,
    padding: int = 0,
    dilation: int = 1,
) -> Tensor:
    """Pure-PyTorch modulated deformable convolution; see the module docstring for semantics."""
    batch, channels, height, width = x.shape
    out_channels, in_channels, kh, kw = weight.shape
    if in_channels != channels:
        raise ValueError(f"deform_conv2d: weight expects {in_channels} channels, input has {channels}")
    taps = kh * kw
    out_h = (height + 2 * padding - dilation * (kh - 1) - 1) // stride + 1
    out_w = (width + 2 * padding - dilation * (kw - 1) - 1) // stride + 1

    # One pixel of zeros around the input: samples between the border and one pixel outside then
    # blend with zero exactly as torchvision does, and 1-pixel-wide maps need no special case.
    x_padded = F.pad(x, (1, 1, 1, 1))
    padded_h, padded_w = height + 2, width + 2

    # sampling coordinates in at least float32: half precision cannot address pixels of large maps exactly
    device, dtype = x.device, torch.promote_types(x.dtype, torch.float32)
    base_y = torch.arange(out_h, device=device, dtype=dtype) * stride - padding + 1
    base_x = torch.arange(out_w, device=device, dtype=dtype) * stride - padding + 1
    tap_y = (torch.arange(kh, device=device, dtype=dtype) * dilation).repeat_interleave(kw)
    tap_x = (torch.arange(kw, device=device, dtype=dtype) * dilation).repeat(kh)

    offset = offset.view(batch, taps, 2, out_h, out_w).to(dtype)
    sample_y = offset[:, :, 0] + (base_y.view(1, 1, out_h, 1) + tap_y.view(1, taps, 1, 1))
    sample_x = offset[:, :, 1] + (base_x.view(1, 1, 1, out_w) + tap_x.view(1, taps, 1, 1))
    # grid_sample with align_corners=True maps -1..1 onto pixel centres 0..size-1
    grid = torch.stack(
        (sample_x * (2.0 / (padded_w - 1)) - 1.0, sample_y * (2.0 / (padded_h - 1)) - 1.0), dim=-1
    ).to(x.dtype)
    if mask is not None:
        mask = mask.view(batch, 1, taps, out_h * out_w).to(x.dtype)

    weight_by_tap = weight.view(out_channels, channels, taps)
    taps_per_chunk = max(1, _MAX_SAMPLED_ELEMENTS // max(1, batch * channels * out_h * out_w))
    out = None
    for start in range(0, taps, taps_per_chunk):
        stop = min(taps, start + taps_per_chunk)
        chunk_grid = grid[:, start:stop].reshape(batch, (stop - start) * out_h, out_w, 2)
        sampled = F.grid_sample(x_padded, chunk_grid, mode="bilinear", padding_mode="zeros", align_corners=True)
        sampled = sampled.view(batch, channels, stop - start, out_h * out_w)
        if mask is not None:
            sampled = sampled * mask[:, :, start:stop]
        chunk_weight = weight_by_tap[:, :, start:stop].reshape(out_channels, -1)
        partial = torch.matmul(chunk_weight, sampled.reshape(batch, -1, out_h * out_w))
        out = partial if out is None else out + partial
    assert out is not None  # taps >= 1: the loop ran
    out = out.view(batch, out_channels, out_h, out_w)
    if bias is not None:
        out = out + bias.view(1, -1, 1, 1)
    return out


def deform_conv2d(
    x: Tensor,
    offset: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    mask: Tensor | None = None,
    stride: int = 1,
    padding: int = 0,
    dilation: int = 1,
) -> Tensor:
    """Modulated deformable convolution; torchvision's kernel on CUDA where available, else ours."""
    if _use_torchvision(x):
        return _torchvision_deform_conv2d()(
            x, offset, weight, bias, stride=stride, padding=padding, dilation=dilation, mask=mask
        )
    return deform_conv2d_torch(x, offset, weight, bias, mask, stride, padding, dilation)


class DeformableConv2d(nn.Module):
    """DCNv2 layer: offsets and a modulation mask predicted from the input by two plain convolutions."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1,
                 padding: int = 1, bias: bool = False) -> None:
        super().__init__()
        self.stride = stride
        self.padding = padding
        taps = kernel_size * kernel_size
        self.offset_conv = nn.Conv2d(in_channels, 2 * taps, kernel_size, stride, padding, bias=True)
        self.modulator_conv = nn.Conv2d(in_channels, taps, kernel_size, stride, padding, bias=True)
        self.regular_conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding, bias=bias)
        assert self.offset_conv.bias is not None and self.modulator_conv.bias is not None  # bias=True
        nn.init.zeros_(self.offset_conv.weight)
        nn.init.zeros_(self.offset_conv.bias)
        nn.init.zeros_(self.modulator_conv.weight)
        nn.init.zeros_(self.modulator_conv.bias)

    def forward(self, x: Tensor) -> Tensor:
        offset = self.offset_conv(x)
        modulator = 2.0 * torch.sigmoid(self.modulator_conv(x))
        return deform_conv2d(
            x, offset, self.regular_conv.weight, self.regular_conv.bias, modulator,
            stride=self.stride, padding=self.padding,
        )
