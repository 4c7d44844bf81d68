"""Carrying the smoothed alpha into the next frame at full resolution, under a motion model's
``Transition``, with the ghost gate that clears matte the new prediction no longer holds."""

from __future__ import annotations

import torch

from pipeline.temporal.analysis import analysis_factor, peak_thumbnail
from pipeline.temporal.confidence import Transition
from pipeline.temporal.config import SmootherConfig
from pipeline.temporal.flow import warp_upsampled
from pipeline.temporal.maps import local_max, resize_bilinear


def carry_over(
    state: torch.Tensor,
    alpha: torch.Tensor,
    alpha_peak: torch.Tensor,
    transition: Transition,
    config: SmootherConfig,
    out: torch.Tensor | None = None,
) -> torch.Tensor:
    """Blend the carried ``state`` (1, 1, H, W) into the new ``alpha`` (1, 1, H, W) under ``transition``,
    into ``out`` when given; ``alpha_peak`` is the new alpha's peak thumbnail. At full size this is a
    peak thumbnail of the state, one upsampling and one lerp (plus the warp for flow): at 1080p on the
    CPU each full-size pass costs ~1 ms, so everything else works on thumbnails."""
    size = (alpha.shape[-2], alpha.shape[-1])
    if transition.flow is not None and transition.stillness is not None:
        scale_y = size[0] / transition.flow.shape[-2]
        scale_x = size[1] / transition.flow.shape[-1]
        flow = transition.flow * torch.tensor([scale_x, scale_y], device=transition.flow.device).view(1, 2, 1, 1)
        warped = warp_upsampled(state, flow)
        state = torch.lerp(warped, state, resize_bilinear(transition.stillness, size))
    # Ghost gate: where the carried alpha peaks above everything the new alpha holds within the jitter
    # radius, the matte has moved away (hair strands too thin for the mean thumbnails to notice);
    # confidence falls linearly to 0 at an excess of ghost_scale.
    factor = analysis_factor(size[0], size[1], config.analysis_size)
    radius = max(1, round(config.ghost_radius * size[0] / 1080 / factor))
    shortfall = local_max(alpha_peak, radius).sub_(peak_thumbnail(state, factor)).clamp_(-config.ghost_scale, 0.0)
    gate = shortfall.mul_(1.0 / config.ghost_scale).add_(1.0)
    confidence = resize_bilinear(transition.confidence * gate * config.strength, size)
    return torch.lerp(alpha, state, confidence) if out is None else torch.lerp(alpha, state, confidence, out=out)
