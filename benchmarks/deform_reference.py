"""A deliberately naive modulated deformable convolution: loops over output pixels and taps, bilinear
sampling written out by hand with torchvision's border rule. Slow; only for checking the fast path."""

from __future__ import annotations

import math

import torch


def _bilinear(image: torch.Tensor, y: float, x: float) -> torch.Tensor:
    channels, height, width = image.shape
    if y <= -1 or y >= height or x <= -1 or x >= width:
        return torch.zeros(channels, dtype=image.dtype)
    y0, x0 = math.floor(y), math.floor(x)
    value = torch.zeros(channels, dtype=image.dtype)
    for yy, wy in ((y0, 1 - (y - y0)), (y0 + 1, y - y0)):
        for xx, wx in ((x0, 1 - (x - x0)), (x0 + 1, x - x0)):
            if 0 <= yy < height and 0 <= xx < width:
                value = value + wy * wx * image[:, yy, xx]
    return value


def naive_deform_conv2d(x, offset, weight, bias=None, mask=None, stride=1, padding=0, dilation=1):
    batch, _, height, width = x.shape
    out_channels, _, kh, kw = weight.shape
    out_h = (height + 2 * padding - dilation * (kh - 1) - 1) // stride + 1
    out_w = (width + 2 * padding - dilation * (kw - 1) - 1) // stride + 1
    out = torch.zeros(batch, out_channels, out_h, out_w, dtype=x.dtype)
    for b in range(batch):
        for oy in range(out_h):
            for ox in range(out_w):
                acc = torch.zeros(out_channels, dtype=x.dtype)
                for i in range(kh):
                    for j in range(kw):
                        tap = i * kw + j
                        dy = offset[b, 2 * tap, oy, ox].item()
                        dx = offset[b, 2 * tap + 1, oy, ox].item()
                        y = oy * stride - padding + i * dilation + dy
                        xx = ox * stride - padding + j * dilation + dx
                        sample = _bilinear(x[b], y, xx)
                        if mask is not None:
                            sample = sample * mask[b, tap, oy, ox]
                        acc = acc + weight[:, :, i, j] @ sample
                out[b, :, oy, ox] = acc + (bias if bias is not None else 0)
    return out
