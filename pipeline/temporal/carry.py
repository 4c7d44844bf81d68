"""Carrying the smoothed alpha into the next frame, at the analysis thumbnails' resolution, and adding
the result back to the full-size per-frame alpha as a correction.

The smoothed state lives on the thumbnails (long side ``analysis_size``); what the smoother changes in
a frame is the difference between its smoothed and its per-frame thumbnail, upsampled and added to the
full-size alpha. Detail finer than a thumbnail cell (a strand's exact edge) therefore stays each
frame's own and is never resampled by a warp: on the evaluation (``benchmarks/temporal.py``) that
lowered MAD and dtSSD on the tuning and held-out-seed splits against carrying the full-size alpha (the
network family moved by under a point), and at 1080p on the CPU it replaces a full-size warp and two
full-size blends with a few cheap full-size passes. With ``edges="guided"`` (the ``flow`` default) the
soft pixels are then rebuilt along the frame's own colour edges (``edges.along_edges``).
"""

from __future__ import annotations

import cv2
import numpy as np
import torch

from birefnet.pixels import INTEGER_PEAKS
from pipeline.temporal.analysis import FrameContext
from pipeline.temporal.confidence import Transition
from pipeline.temporal.config import SmootherConfig
from pipeline.temporal.flow import warp
from pipeline.temporal.fused import learned_blend
from pipeline.temporal.gate import LearnedGate, measure_maps
from pipeline.temporal.kernels import uses_opencv
from pipeline.temporal.maps import local_max, local_min, resize_bilinear_into


def carried(state: torch.Tensor, transition: Transition) -> torch.Tensor:
    """``state`` (1, 1, h, w) moved into the next frame: warped along the flow where the image moved, kept
    where it is still."""
    if transition.flow is not None and transition.stillness is not None:
        return torch.lerp(warp(state, transition.flow), state, transition.stillness)
    return state


def envelope(target: FrameContext, config: SmootherConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """The local maximum and minimum of ``target``'s alpha thumbnail within the jitter radius
    (``ghost_radius`` px at 1080 lines, in whole thumbnail cells, at least one)."""
    radius = max(1, round(config.ghost_radius * target.alpha.shape[-2] / 1080))
    return local_max(target.alpha, radius), local_min(target.alpha, radius)


def hand_gates(state: torch.Tensor, peak: torch.Tensor, trough: torch.Tensor, config: SmootherConfig) -> torch.Tensor:
    """The two mirror gates, 1 where the carried ``state`` lies within the new alpha's ``envelope`` and
    falling linearly to 0 at ``ghost_scale`` outside it.

    Where the carried alpha stands above everything the new alpha holds within the jitter radius, the matte
    has moved away (a ghost would follow); where it stands below everything the new alpha holds there, the
    matte has grown (a part came back after a drop-out, or entered), and the past would leave a hole. The
    second gate was added after the evaluation showed drop-outs carried into the frames after them; on the
    tuning split it lowered the added MAD at 912x512 and 1080p and left dtSSD as it was
    (docs/benchmarks.md)."""
    scale = config.ghost_scale
    above = (peak - state).clamp_(-scale, 0.0)  # -: the state stands above
    below = (trough - state).clamp_(0.0, scale)  # +: the state stands below
    return above.sub_(below).mul_(1.0 / scale).add_(1.0)  # at most one of the two is non-zero at a pixel


def blend(state: torch.Tensor, target: FrameContext, transition: Transition, config: SmootherConfig,
          gate: LearnedGate | None = None) -> torch.Tensor:
    """The ``carried`` state blended into ``target``'s alpha thumbnail: its weight is the ``hand_gates``
    times what the learned ``gate`` says (``gate.LearnedGate``, the ``flow`` default), or without one,
    times ``transition``'s confidence and ``strength``. On the CPU the learned blend is one compiled pass
    (``fused``)."""
    peak, trough = envelope(target, config)
    if gate is not None and uses_opencv(state.device):
        return learned_blend(*measure_maps(state, target, transition, peak, trough), (gate.hidden, gate.output),
                             config.ghost_scale)
    weight = hand_gates(state, peak, trough, config)
    if gate is not None:
        weight.mul_(gate.weights(state, target, transition, peak, trough))
    else:
        weight.mul_(transition.confidence).mul_(config.strength)
    return torch.lerp(target.alpha, state, weight)


def with_correction(alpha: torch.Tensor, smoothed: torch.Tensor, target: FrameContext,
                    out: torch.Tensor | None = None) -> torch.Tensor:
    """The full-size ``alpha`` (1, 1, H, W) plus the upsampled change the smoother made to its thumbnail
    (``smoothed`` minus ``target.alpha``), on the frame's soft pixels only, clipped to [0, 1]; into
    ``out`` when given. ``alpha`` is float, or 8/16-bit on the CPU (then so is the result).

    Where the frame's own alpha is sure (0 or 1 to 8 bits) it is kept: the model's certainty decides
    where the past may count. Upsampled, a cell's change would otherwise spill onto the sure pixels
    beside an edge; on the evaluation that spill was most of what smoothing cost in MAD. A ``smoothed``
    that is the thumbnail itself (nothing carried: a shot's first frame) gives the frame's alpha exactly."""
    if smoothed is target.alpha:
        return alpha if out is None else out.copy_(alpha)
    correction = smoothed - target.alpha
    result = torch.empty_like(alpha) if out is None else out
    if uses_opencv(alpha.device):
        _add_on_the_cpu(alpha, correction, result)
        return result
    if correction.shape[-2:] == alpha.shape[-2:]:
        torch.add(alpha, correction, out=result)
    else:
        resize_bilinear_into(correction, result).add_(alpha)
    torch.where((alpha < SURE) | (alpha > 1.0 - SURE), alpha, result, out=result)
    return result.clamp_(0.0, 1.0)


SURE = 1.0 / 255  # alpha below this or above 1 minus this: what an 8-bit output writes as 0 or 255


def _add_on_the_cpu(alpha: torch.Tensor, correction: torch.Tensor, result: torch.Tensor) -> None:
    """``with_correction`` on the CPU in OpenCV, for float alphas and for 8/16-bit ones as the pipeline
    hands them over, over the window of the frame that the correction can change (``changed_window``):
    the subject's box is usually a fraction of the frame, and the upsampling and sum over the whole frame
    were a third of the smoother's cost at 1080p. Integers get the same sum on the same soft pixels,
    rounded and saturated once, without the float copies of the frame in and out (which cost about as
    much as the rest of the smoother: benchmarks/temporal_cost.py)."""
    peak = INTEGER_PEAKS.get(alpha.dtype)
    plane, target = alpha[0, 0].numpy(), result[0, 0].numpy()
    if not np.may_share_memory(target, plane):  # the smoother may write over its input (overwrite_input)
        np.copyto(target, plane)
    change = correction[0, 0].numpy()
    if peak is not None:
        change = change * np.float32(peak)  # in quanta: under half of one moves no pixel
    window = changed_window(change, plane.shape, 0.5 if peak is not None else 0.0)
    if window is None:
        return
    cells, pixels = window
    plane, target = plane[pixels], target[pixels]
    upsampled: np.ndarray = change[cells]
    if upsampled.shape != plane.shape:
        upsampled = cv2.resize(upsampled, plane.shape[::-1], interpolation=cv2.INTER_LINEAR)
    if peak is None:
        soft = cv2.inRange(plane, SURE, 1.0 - SURE)
        summed = np.clip(cv2.add(plane, upsampled), 0.0, 1.0)
    else:  # the integers SURE leaves soft; a plain weighted sum is ~0.6 of what OpenCV's masked add costs
        soft = cv2.inRange(plane, -(-peak // 255), peak * 254 // 255)
        summed = cv2.addWeighted(plane, 1.0, upsampled, 1.0, 0.0, dtype=cv2.CV_8U if peak == 255 else cv2.CV_16U)
    cv2.copyTo(summed, soft, target)


Window = tuple[tuple[slice, slice], tuple[slice, slice]]


def changed_window(change: np.ndarray, shape: tuple[int, ...], least: float) -> Window | None:
    """The cells of ``change`` (a thumbnail) whose magnitude is at least ``least`` (for 8/16-bit alphas half
    a quantum, the least that moves a pixel; 0 for floats: any change), with one cell around them, and the
    pixels of a frame of ``shape`` they cover; None when no cell qualifies (the frame stays as it is).

    Bilinear upsampling of the window then equals the whole frame's in every pixel it can change: past the
    margin cell only cells under ``least`` take part, on either side. That needs a whole number of frame
    pixels per cell; otherwise the window is the whole frame."""
    height, width = change.shape
    if shape[0] % height or shape[1] % width:
        return (slice(0, height), slice(0, width)), (slice(0, shape[0]), slice(0, shape[1]))
    magnitude = np.abs(change)
    moving = magnitude >= least if least > 0 else magnitude > 0
    rows, columns = np.flatnonzero(moving.any(axis=1)), np.flatnonzero(moving.any(axis=0))
    if rows.size == 0:
        return None
    top, bottom = max(int(rows[0]) - 1, 0), min(int(rows[-1]) + 2, height)
    left, right = max(int(columns[0]) - 1, 0), min(int(columns[-1]) + 2, width)
    down, across = shape[0] // height, shape[1] // width
    return ((slice(top, bottom), slice(left, right)),
            (slice(top * down, bottom * down), slice(left * across, right * across)))
