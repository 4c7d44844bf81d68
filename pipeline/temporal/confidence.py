"""Motion models: how far the previous frame's alpha can be trusted in the current frame.

``StillnessModel`` (mode ``ema``) trusts it where neither the image nor the per-frame alpha changed;
``FlowModel`` (mode ``flow``) also warps it along the foreground's optical flow where the image moved.
Both answer a ``Transition``: a confidence map at thumbnail resolution, and for flow the flow itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import torch

from pipeline.temporal.analysis import FrameContext
from pipeline.temporal.config import SmootherConfig
from pipeline.temporal.flow import FlowEstimator, warp
from pipeline.temporal.fused import flow_confidence_maps
from pipeline.temporal.kernels import uses_opencv
from pipeline.temporal.maps import smoothed_abs


@dataclass
class Transition:
    """Carries an alpha from one frame into another: an optional flow (full resolution comes later)
    and a per-pixel confidence in [0, 1] at thumbnail resolution."""

    confidence: torch.Tensor  # (1, 1, h, w)
    flow: torch.Tensor | None = None  # (1, 2, h, w) in thumbnail pixels
    stillness: torch.Tensor | None = None  # (1, 1, h, w): 1 = take the state unwarped
    motion: torch.Tensor | None = None  # (1, 1, h, w): the confidence in the motion alone (no alpha agreement)


class MotionModel(Protocol):
    def transition(self, source: FrameContext, target: FrameContext) -> Transition: ...


def _falloff(x: torch.Tensor) -> torch.Tensor:
    """exp(-x^2), floored at 1e-6: products of tiny confidences would otherwise reach subnormal
    floats, which are ~100x slower on x86 CPUs."""
    return torch.exp(-x.square().clamp_max(13.8))


def _stillness(source: FrameContext, target: FrameContext, scale: float) -> torch.Tensor:
    """1 where the luma did not change between the frames, falling to 1/e at a change of ``scale``."""
    change = smoothed_abs(target.luma - source.luma)
    return _falloff(change / scale)


def _agreement(carried_alpha: torch.Tensor, target: FrameContext, scale: float) -> torch.Tensor:
    """1 / (1 + (d / scale)^4) for the alpha difference d between thumbnails: near 1 for noise and
    boundary jitter (which area-averaging shrinks), near 0 where the matte really changed."""
    difference = smoothed_abs(target.alpha - carried_alpha)
    ratio = difference.mul_(1.0 / scale).clamp_(1e-2, 1e3)
    return ratio.square_().square_().add_(1.0).reciprocal_()


class StillnessModel:
    """EMA motion model: no compensation; confidence is high where neither the image nor the
    per-frame alpha changed."""

    def __init__(self, config: SmootherConfig):
        self.config = config

    def transition(self, source: FrameContext, target: FrameContext) -> Transition:
        still = _stillness(source, target, self.config.motion_scale)
        return Transition(still * _agreement(source.alpha, target, self.config.disagreement_scale), motion=still)


class FlowModel:
    """Flow motion model: still pixels carry the state as EMA does (no resampling, which would blur
    thin strands a little more every frame); moving ones warp it along the optical flow of the
    foreground, with confidence falling with the warp's error, with speed and with alpha disagreement."""

    def __init__(self, config: SmootherConfig):
        self.config = config
        self._flow = FlowEstimator(config.flow_backend)

    def transition(self, source: FrameContext, target: FrameContext) -> Transition:
        config = self.config
        # Flow of the foreground alone: luma premultiplied by alpha. On plain luma, semi-transparent
        # hair over a panning background follows the background and drags alpha into ghost trails.
        flow = self._flow(target.luma * target.alpha, source.luma * source.alpha)
        warped_luma, warped_alpha = warp(torch.cat((source.luma, source.alpha), dim=1), flow).split(1, dim=1)
        confidence, still, motion = flow_confidence(source, target, flow, warped_luma, warped_alpha, config)
        return Transition(confidence, flow, still, motion)


def flow_confidence(
    source: FrameContext, target: FrameContext, flow: torch.Tensor, warped_luma: torch.Tensor,
    warped_alpha: torch.Tensor, config: SmootherConfig,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``FlowModel``'s confidence, stillness and motion maps, given the flow and ``source``'s luma and alpha
    warped along it: the motion confidence falls with the warp's error and with speed, the stillness
    with the luma change in place, and the confidence also with the alphas' disagreement. On the CPU in
    two compiled passes (``fused``), elsewhere in torch ops."""
    if uses_opencv(flow.device):
        return flow_confidence_maps(target.luma, source.luma, warped_luma, warped_alpha, source.alpha, target.alpha,
                                    flow, config.warp_error_scale, config.motion_scale, config.flow_speed_scale,
                                    config.disagreement_scale)
    error = smoothed_abs(target.luma - warped_luma)
    squared_speed = flow[:, :1].square().addcmul_(flow[:, 1:], flow[:, 1:])
    flow_confidence = _falloff(error / config.warp_error_scale)
    flow_confidence = flow_confidence / (1.0 + squared_speed / config.flow_speed_scale ** 2)
    still = _stillness(source, target, config.motion_scale)
    carried_alpha = torch.lerp(warped_alpha, source.alpha, still)
    agreement = _agreement(carried_alpha, target, config.disagreement_scale)
    motion = still + (1 - still) * flow_confidence
    return motion * agreement, still, motion
