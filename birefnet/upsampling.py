"""Guided upsampling: the model's matte brought to the frame's resolution along the frame's own edges.

The model sees the frame at its working size; resized back with bilinear interpolation, every edge of
the matte is as soft as the working size was coarse (a 4K frame matted at 1024 gets edges four pixels
wide). The fast guided filter (He and Sun, 2015) fits, in each small window of the working-size frame,
alpha as a linear function of the image colour; those coefficients are resized to the frame and applied
to the frame's own colours, so the matte's edges follow the image's edges at full resolution. Where the
colours do not explain the matte (a subject the colour of what is behind it: the fit would smear its
edge over the window), the model's matte is only resized, in proportion to how little they explain.
Nothing is learned and the model is untouched; a frame of no more pixels than the working size is only
resized.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from .pixels import box_filter

# window radius in working-size pixels, and the regulariser (colour variance, colours in [0, 1]) below
# which a window's colour changes are treated as noise rather than an edge
RADIUS = 2
EPSILON = 1e-4
# how the predictor brings a matte to the frame: along the frame's edges, or bilinear (the model's output
# as it is, only resized)
UPSAMPLING_MODES = ("guided", "bilinear")


def linear_fit(guide: Tensor, alpha: Tensor, radius: int = RADIUS,
               epsilon: float = EPSILON) -> tuple[Tensor, Tensor, Tensor]:
    """Per-pixel coefficients (N, 3, h, w), offset (N, 1, h, w) of alpha = a . colour + b (``guide``: colours
    (N, 3, h, w) in [0, 1]), and the share of alpha's variance the fit explains (N, 1, h, w), fitted by ridge
    regression over each window and averaged over the windows holding the pixel. The 3x3 systems are
    solved in closed form (Cramer's rule on the symmetric covariance): elementwise, on any device.
    The temporal smoother rebuilds its soft pixels with the same fit (``pipeline.temporal.edges``)."""
    size = 2 * radius + 1
    mean_guide = box_filter(guide, size)
    mean_alpha = box_filter(alpha, size)
    cross = box_filter(guide * alpha, size) - mean_guide * mean_alpha  # (N, 3, h, w)
    r, g, b = guide.unbind(1)
    moments = box_filter(torch.stack([r * r, r * g, r * b, g * g, g * b, b * b], 1), size)
    mr, mg, mb = mean_guide.unbind(1)
    squares = torch.stack([mr * mr, mr * mg, mr * mb, mg * mg, mg * mb, mb * mb], 1)
    rr, rg, rb, gg, gb, bb = (moments - squares).unbind(1)
    rr, gg, bb = rr + epsilon, gg + epsilon, bb + epsilon
    # cofactors of the symmetric matrix [[rr, rg, rb], [rg, gg, gb], [rb, gb, bb]]
    c_rr, c_rg, c_rb = gg * bb - gb * gb, rb * gb - rg * bb, rg * gb - rb * gg
    c_gg, c_gb, c_bb = rr * bb - rb * rb, rg * rb - rr * gb, rr * gg - rg * rg
    determinant = rr * c_rr + rg * c_rg + rb * c_rb
    x, y, z = cross.unbind(1)
    coefficients = torch.stack([c_rr * x + c_rg * y + c_rb * z,
                                c_rg * x + c_gg * y + c_gb * z,
                                c_rb * x + c_gb * y + c_bb * z], 1) / determinant.unsqueeze(1)
    offset = mean_alpha - (coefficients * mean_guide).sum(1, keepdim=True)
    # how much of alpha's variation in the window the colours explain (R^2): where the image shows no
    # edge (a subject the colour of what is behind it), the fit has nothing to follow
    variance = (box_filter(alpha * alpha, size) - mean_alpha * mean_alpha).clamp_(min=0)
    explained = ((coefficients * cross).sum(1, keepdim=True) / (variance + 1e-6)).clamp_(0, 1)
    return box_filter(coefficients, size), box_filter(offset, size), box_filter(explained, size)


def guided_upsample(alpha: Tensor, pixels: Tensor, guide: Tensor | None = None, radius: int = RADIUS,
                    epsilon: float = EPSILON) -> Tensor:
    """Alpha (N, H, W) in [0, 1] at the size of ``pixels`` (uint8 NCHW RGB, H x W) from the model's
    probabilities ``alpha`` (N, 1, h, w) at the working size, for frames of more pixels than that.
    ``guide``: the frames at the working size (N, 3, h, w, float in [0, 255]) where the caller has them
    already (the model's input)."""
    height, width = pixels.shape[-2:]
    if guide is None:
        guide = F.interpolate(pixels.float(), size=alpha.shape[-2:], mode="bilinear", align_corners=False,
                              antialias=True)
    coefficients, offset, explained = linear_fit(guide / 255.0, alpha.float(), radius, epsilon)
    # one resize for all the maps; the coefficients take the frame's 0-255 colours as they are
    small = torch.cat([coefficients / 255.0, offset, explained, alpha.float()], 1)
    maps = F.interpolate(small, size=(height, width), mode="bilinear", align_corners=False)
    out, share, resized = maps[:, 3], maps[:, 4], maps[:, 5]
    for channel in range(3):
        out.addcmul_(maps[:, channel], pixels[:, channel].float())
    # where the colours do not explain alpha, the model's own matte, only resized (in place: at 4K each
    # map is 33 MB a frame)
    return out.sub_(resized).mul_(share).add_(resized).clamp_(0.0, 1.0)
