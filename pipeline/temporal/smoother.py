"""Temporal alpha smoothing: steadies per-frame mattes without smearing motion.

BiRefNet mattes each frame on its own, so soft edges shimmer and thin parts blink. Every mode here
carries the previous smoothed alpha into the current frame and blends it with the new prediction
under a per-pixel confidence:

* ``off``  - the per-frame alphas, untouched.
* ``ema``  - no motion compensation; confidence falls where the image changed, so still regions are
  averaged over many frames and moving ones keep the new prediction.
* ``flow`` (default) - where the image is still, as ``ema``; elsewhere the previous alpha is warped
  along the optical flow of the foreground (luma premultiplied by alpha, at reduced resolution:
  OpenCV DIS on the CPU, a pyramidal Lucas-Kanade in torch on a GPU), with confidence falling with
  the warp's photometric error and with speed (fast motion is where flow fails and ghosts appear).

In both, confidence also falls with disagreement between the carried and the new alpha, measured on
thumbnails so boundary jitter counts as noise and real changes do not, and wherever the carried alpha
holds matte that the new prediction has nowhere within a few pixels: a ghost left behind by motion
too thin or faint (hair strands) for the thumbnails to see.

Scene cuts (colour-histogram jumps) reset the state, so no frame is blended across a cut. With
``window=N`` (batch work) each output also looks N frames ahead: a backward pass from the newest
frame's causal result is averaged with the causal result; frames are held back and returned by later
calls or ``flush()``. State is a few frames, so memory stays bounded on any length of video.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Protocol

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from birefnet.pixels import box_filter
from pipeline.temporal.modes import TEMPORAL_MODES

_LUMA = (0.299, 0.587, 0.114)


@dataclass
class SmootherConfig:
    """Knobs of the smoothers; the defaults (those of ``flow``; ``ema`` starts from ``MODE_DEFAULTS``)
    were tuned on the synthetic benchmark (benchmarks/temporal.py, seed 0).

    ``strength``: weight of the carried-over alpha where confidence is full (0 = off, 0.9 ~ 10-frame
    memory). ``motion_scale``/``warp_error_scale``: luma change (0-255) at which confidence has fallen
    to 1/e. ``disagreement_scale``: alpha difference (between thumbnails) at which confidence halves.
    ``flow_speed_scale``: motion (thumbnail pixels per frame) at which flow confidence has halved, as
    fast motion is where flow fails and ghosts appear.
    ``ghost_radius``: pixels (at 1080 lines, scaled with the height) within which the new alpha may move
    and still vouch for the carried one, i.e. the boundary jitter tolerated (rounded to whole thumbnail
    cells, at least one); ``ghost_scale``: excess of the carried alpha's peak over the new one's local
    peak at which confidence reaches 0.
    ``analysis_size``: long side of the thumbnails used for motion, flow and cut detection.
    ``cut_threshold``: histogram distance in [0, 1] above which a frame starts a new shot.
    ``window``: look-ahead frames (0 = causal, lowest latency). ``flow_backend``: auto, dis or torch.
    """

    strength: float = 0.85
    motion_scale: float = 2.5
    warp_error_scale: float = 10.0
    disagreement_scale: float = 0.3
    flow_speed_scale: float = 2.0
    ghost_radius: float = 5.0
    ghost_scale: float = 0.25
    analysis_size: int = 480
    cut_threshold: float = 0.35
    window: int = 0
    flow_backend: str = "auto"

    def __post_init__(self) -> None:
        if not 0.0 <= self.strength < 1.0:
            raise ValueError(f"strength must be in [0, 1), got {self.strength}")
        if self.window < 0:
            raise ValueError(f"window must be >= 0, got {self.window}")
        if self.flow_backend not in ("auto", "dis", "torch"):
            raise ValueError(f"flow_backend must be auto, dis or torch, got {self.flow_backend!r}")
        scales = (self.motion_scale, self.warp_error_scale, self.disagreement_scale, self.flow_speed_scale,
                  self.ghost_radius, self.ghost_scale)
        if min(*scales, self.analysis_size) <= 0:
            raise ValueError("scales and analysis_size must be positive")


# Without motion compensation, ema must smooth harder where it can (still pixels, agreeing alphas) and
# lean on the ghost gate where the matte moved; tuned like the flow defaults above.
MODE_DEFAULTS = {"ema": {"strength": 0.91, "motion_scale": 4.5, "disagreement_scale": 0.5, "ghost_scale": 0.07}}


# ----------------------------------------------------------------------------------------------
# Containers: numpy in -> numpy out, torch in -> torch out on the same device.


def _as_tensor(x: np.ndarray | torch.Tensor, device: torch.device | None = None) -> torch.Tensor:
    t = x if isinstance(x, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(x))
    return t if device is None else t.to(device)


def _alpha_to_float(alphas: torch.Tensor) -> torch.Tensor:
    if alphas.is_floating_point():
        return alphas.float()
    return alphas.float() / (255.0 if alphas.dtype == torch.uint8 else 65535.0)


def _alpha_like(result: torch.Tensor, like: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
    """``result`` (float in [0, 1]) in the container, dtype and value range of ``like``."""
    dtype = like.dtype if isinstance(like, torch.Tensor) else torch.from_numpy(np.empty(0, like.dtype)).dtype
    if not dtype.is_floating_point:
        peak = 255.0 if dtype == torch.uint8 else 65535.0
        result = (result * peak).round_().clamp_(0.0, peak)
    result = result.to(dtype)
    return result if isinstance(like, torch.Tensor) else result.cpu().numpy()


# ----------------------------------------------------------------------------------------------
# Per-frame analysis: thumbnails and scene-cut signatures.


@dataclass
class FrameContext:
    """What the smoother remembers of a frame: luma (0-255) and per-frame alpha thumbnails (mean and
    peak over each cell), and a colour histogram for cut detection."""

    luma: torch.Tensor  # (1, 1, h, w) float32
    alpha: torch.Tensor  # (1, 1, h, w) float32, the unsmoothed prediction
    alpha_peak: torch.Tensor  # (1, 1, h, w) float32, its maximum over each cell: thin strands survive
    histogram: torch.Tensor  # (3 * bins,) float32, sums to 3
    full_size: tuple[int, int]


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
        return images.float()
    if images.device.type == "cpu":
        small = np.stack([_area_downsample(im, factor) for im in images.numpy()])
        return torch.from_numpy(small.reshape(*small.shape[:3], -1)).float()
    return F.avg_pool2d(images.permute(0, 3, 1, 2).float(), factor, ceil_mode=True).permute(0, 2, 3, 1)


def peak_thumbnail(alpha: torch.Tensor, factor: int) -> torch.Tensor:
    """Maximum over each ``factor`` x ``factor`` cell of a (1, 1, H, W) float map (edge cells padded by
    replication), so a one-pixel strand still shows in the thumbnail. Two reshaped ``amax`` passes:
    on the CPU ~2x faster than max pooling or strided numpy."""
    if factor == 1:
        return alpha
    height, width = alpha.shape[-2:]
    pad_y, pad_x = -height % factor, -width % factor
    if pad_y or pad_x:
        alpha = F.pad(alpha, (0, pad_x, 0, pad_y), mode="replicate")
    rows = alpha.reshape(-1, factor, alpha.shape[-1]).amax(dim=1)  # (H / f, W)
    return rows.reshape(rows.shape[0], -1, factor).amax(dim=2)[None, None]


def frame_contexts(
    frames: torch.Tensor, alphas: torch.Tensor, analysis_size: int, bins: int = 16
) -> list[FrameContext]:
    """Contexts for a batch: frames (N, H, W, 3) uint8 or uint16 and alphas (N, H, W) float, on their
    device. Thumbnails are in 0-255 units whatever the bit depth, so the scales mean the same."""
    n, height, width, _ = frames.shape
    factor = analysis_factor(height, width, analysis_size)
    rgb = _thumbnails(frames, factor)  # (n, h, w, 3), channels last: the layout the CPU ops below like
    if frames.dtype != torch.uint8:
        rgb = rgb / 257.0
    small_alpha = _thumbnails(alphas[..., None], factor).permute(0, 3, 1, 2)
    luma = (rgb @ torch.tensor(_LUMA, device=rgb.device)).unsqueeze(1)
    # Every other thumbnail pixel is plenty for a cut detector and quarters its cost.
    quantised = (rgb[:, ::2, ::2] * (bins / 256.0)).long().clamp_(0, bins - 1)
    slots = quantised + torch.arange(3, device=rgb.device) * bins
    slots = slots + (torch.arange(n, device=rgb.device) * 3 * bins).view(n, 1, 1, 1)
    counts = torch.bincount(slots.flatten(), minlength=n * 3 * bins).view(n, 3 * bins).float()
    hist = counts / quantised[0, ..., 0].numel()
    return [
        FrameContext(luma[i : i + 1], small_alpha[i : i + 1], peak_thumbnail(alphas[i][None, None], factor), hist[i],
                     (height, width))
        for i in range(n)
    ]


def is_scene_cut(previous: FrameContext, current: FrameContext, threshold: float) -> bool:
    """True when the colour distributions of two frames differ by more than ``threshold`` in [0, 1]."""
    if previous.full_size != current.full_size:
        return True
    distance = 0.5 * (previous.histogram - current.histogram).abs().sum().item() / 3.0
    return distance > threshold


# ----------------------------------------------------------------------------------------------
# Warping and optical flow.


def warp(image: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """Sample ``image`` (N, C, H, W) at x + flow(x); ``flow`` (N, 2, H, W) in pixels, borders replicated."""
    n, _, height, width = image.shape
    ys = torch.arange(height, device=image.device, dtype=image.dtype).view(1, height, 1)
    xs = torch.arange(width, device=image.device, dtype=image.dtype).view(1, 1, width)
    gx = (xs + flow[:, 0]) * (2.0 / max(width - 1, 1)) - 1.0
    gy = (ys + flow[:, 1]) * (2.0 / max(height - 1, 1)) - 1.0
    grid = torch.stack((gx, gy), dim=-1)
    return F.grid_sample(image, grid, mode="bilinear", padding_mode="border", align_corners=True)


def _dis_flow(current: torch.Tensor, previous: torch.Tensor, dis: cv2.DISOpticalFlow) -> torch.Tensor:
    """OpenCV DIS flow such that current(x) ~ previous(x + flow)."""
    cur = current[0, 0].clamp(0, 255).to(torch.uint8).cpu().numpy()
    prev = previous[0, 0].clamp(0, 255).to(torch.uint8).cpu().numpy()
    flow = dis.calc(cur, prev, None)
    return torch.from_numpy(flow).permute(2, 0, 1)[None].to(current.device)


def lucas_kanade_flow(
    current: torch.Tensor, previous: torch.Tensor, levels: int = 4, iterations: int = 3, window: int = 9
) -> torch.Tensor:
    """Dense pyramidal Lucas-Kanade in torch (the GPU path): flow with current(x) ~ previous(x + flow).

    ``current``/``previous`` are (1, 1, h, w) luma. Each level refines the upsampled coarser flow by
    solving the windowed 2x2 normal equations per pixel, regularised where texture is flat.
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
            gx = (F.pad(warped, (0, 2, 0, 0), mode="replicate")[..., 2:] - F.pad(warped, (2, 0, 0, 0), mode="replicate")[..., :-2]) / 2
            gy = (F.pad(warped, (0, 0, 0, 2), mode="replicate")[..., 2:, :] - F.pad(warped, (0, 0, 2, 0), mode="replicate")[..., :-2, :]) / 2
            err = cur - warped
            sums = box_filter(torch.cat([gx * gx, gx * gy, gy * gy, gx * err, gy * err], dim=1), window)
            a, b, c, ex, ey = sums.unbind(dim=1)
            a, c = a + 1e-2, c + 1e-2
            det = a * c - b * b
            du = (c * ex - b * ey) / det
            dv = (a * ey - b * ex) / det
            flow = flow + torch.stack((du, dv), dim=1).clamp(-2.0, 2.0)
    return flow


# ----------------------------------------------------------------------------------------------
# How the previous state is carried into the current frame.


@dataclass
class Transition:
    """Carries an alpha from one frame into another: an optional flow (full resolution comes later)
    and a per-pixel confidence in [0, 1] at thumbnail resolution."""

    confidence: torch.Tensor  # (1, 1, h, w)
    flow: torch.Tensor | None = None  # (1, 2, h, w) in thumbnail pixels
    stillness: torch.Tensor | None = None  # (1, 1, h, w): 1 = take the state unwarped


class MotionModel(Protocol):
    def transition(self, source: FrameContext, target: FrameContext) -> Transition: ...


def _smoothed_abs(x: torch.Tensor) -> torch.Tensor:
    """3x3 local mean of |x| for a (1, 1, h, w) map (OpenCV on the CPU: ~20x faster than torch there)."""
    if x.device.type == "cpu":
        return torch.from_numpy(cv2.blur(np.abs(x[0, 0].numpy()), (3, 3), borderType=cv2.BORDER_REPLICATE))[None, None]
    return F.avg_pool2d(x.abs(), 3, stride=1, padding=1, count_include_pad=False)


def _resize_bilinear(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(1, C, h, w) -> (1, C, *size), bilinear with pixel centres aligned (OpenCV on the CPU)."""
    if x.device.type == "cpu":
        planes = [cv2.resize(plane, (size[1], size[0]), interpolation=cv2.INTER_LINEAR) for plane in x[0].numpy()]
        return torch.from_numpy(np.stack(planes) if len(planes) > 1 else planes[0][None])[None]
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False)


def _local_max(x: torch.Tensor, radius: int) -> torch.Tensor:
    """Maximum of a (1, 1, H, W) map over the (2 radius + 1)^2 square around each pixel."""
    if x.device.type == "cpu":
        kernel = np.ones((2 * radius + 1, 2 * radius + 1), np.uint8)
        return torch.from_numpy(cv2.dilate(np.ascontiguousarray(x[0, 0].numpy()), kernel))[None, None]
    return F.max_pool2d(x, 2 * radius + 1, stride=1, padding=radius)


def _falloff(x: torch.Tensor) -> torch.Tensor:
    """exp(-x^2), floored at 1e-6: products of tiny confidences would otherwise reach subnormal
    floats, which are ~100x slower on x86 CPUs."""
    return torch.exp(-x.square().clamp_max(13.8))


def _stillness(source: FrameContext, target: FrameContext, scale: float) -> torch.Tensor:
    """1 where the luma did not change between the frames, falling to 1/e at a change of ``scale``."""
    change = _smoothed_abs(target.luma - source.luma)
    return _falloff(change / scale)


def _agreement(carried_alpha: torch.Tensor, target: FrameContext, scale: float) -> torch.Tensor:
    """1 / (1 + (d / scale)^4) for the alpha difference d between thumbnails: near 1 for noise and
    boundary jitter (which area-averaging shrinks), near 0 where the matte really changed."""
    difference = _smoothed_abs(target.alpha - carried_alpha)
    return 1.0 / (1.0 + (difference / scale).clamp(1e-2, 1e3) ** 4)


class StillnessModel:
    """EMA motion model: no compensation; confidence is high where neither the image nor the
    per-frame alpha changed."""

    def __init__(self, config: SmootherConfig):
        self.config = config

    def transition(self, source: FrameContext, target: FrameContext) -> Transition:
        still = _stillness(source, target, self.config.motion_scale)
        return Transition(still * _agreement(source.alpha, target, self.config.disagreement_scale))


class FlowModel:
    """Flow motion model: still pixels carry the state as EMA does (no resampling, which would blur
    thin strands a little more every frame); moving ones warp it along the optical flow of the
    foreground, with confidence falling with the warp's error, with speed and with alpha disagreement."""

    def __init__(self, config: SmootherConfig):
        self.config = config
        self._dis = None

    def _flow(self, target: torch.Tensor, source: torch.Tensor) -> torch.Tensor:
        backend = self.config.flow_backend
        if backend == "auto":
            backend = "dis" if target.device.type == "cpu" else "torch"
        if backend == "torch":
            return lucas_kanade_flow(target, source)
        if self._dis is None:
            self._dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_FAST)
        return _dis_flow(target, source, self._dis)

    def transition(self, source: FrameContext, target: FrameContext) -> Transition:
        config = self.config
        # Flow of the foreground alone: luma premultiplied by alpha. On plain luma, semi-transparent
        # hair over a panning background follows the background and drags alpha into ghost trails.
        flow = self._flow(target.luma * target.alpha, source.luma * source.alpha)
        error = _smoothed_abs(target.luma - warp(source.luma, flow))
        speed = flow.square().sum(dim=1, keepdim=True).sqrt()
        flow_confidence = _falloff(error / config.warp_error_scale)
        flow_confidence = flow_confidence / (1.0 + (speed / config.flow_speed_scale) ** 2)
        still = _stillness(source, target, config.motion_scale)
        carried_alpha = torch.lerp(warp(source.alpha, flow), source.alpha, still)
        confidence = (still + (1 - still) * flow_confidence) * _agreement(carried_alpha, target, config.disagreement_scale)
        return Transition(confidence, flow, still)


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
    size = alpha.shape[-2:]
    if transition.flow is not None:
        scale_y = size[0] / transition.flow.shape[-2]
        scale_x = size[1] / transition.flow.shape[-1]
        flow = _resize_bilinear(transition.flow, size)
        flow = flow * torch.tensor([scale_x, scale_y], device=flow.device).view(1, 2, 1, 1)
        warped = warp(state, flow)
        still = _resize_bilinear(transition.stillness, size)
        state = warped.add_(still.mul_(state - warped))
    # Ghost gate: where the carried alpha peaks above everything the new alpha holds within the jitter
    # radius, the matte has moved away (hair strands too thin for the mean thumbnails to notice);
    # confidence falls linearly to 0 at an excess of ghost_scale.
    factor = analysis_factor(size[0], size[1], config.analysis_size)
    radius = max(1, round(config.ghost_radius * size[0] / 1080 / factor))
    shortfall = _local_max(alpha_peak, radius).sub_(peak_thumbnail(state, factor)).clamp_(-config.ghost_scale, 0.0)
    gate = shortfall.mul_(1.0 / config.ghost_scale).add_(1.0)
    confidence = _resize_bilinear(transition.confidence * gate * config.strength, size)
    return torch.lerp(alpha, state, confidence) if out is None else torch.lerp(alpha, state, confidence, out=out)


# ----------------------------------------------------------------------------------------------
# Smoothers.


class TemporalSmoother(Protocol):
    def smooth(self, frames, alphas): ...
    def flush(self): ...
    def reset(self) -> None: ...


def _check_batch(frames, alphas) -> None:
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"frames must be (N, H, W, 3), got {tuple(frames.shape)}")
    if tuple(alphas.shape) != tuple(frames.shape[:3]):
        raise ValueError(f"alphas must be (N, H, W) = {tuple(frames.shape[:3])}, got {tuple(alphas.shape)}")


class OffSmoother:
    """Mode ``off``: returns the per-frame alphas unchanged."""

    def smooth(self, frames, alphas):
        _check_batch(frames, alphas)
        return alphas

    def flush(self):
        return None

    def reset(self) -> None:
        """Nothing to forget."""


@dataclass
class _Pending:
    """A frame held back for look-ahead; ``backward`` carries the next frame's alpha into this one."""

    context: FrameContext
    alpha: torch.Tensor
    causal: torch.Tensor
    starts_shot: bool
    backward: Transition | None = None


@dataclass
class _Stream:
    previous: FrameContext | None = None
    state: torch.Tensor | None = None
    pending: deque = field(default_factory=deque)
    template: object = None  # the last input alphas, to shape outputs on flush()


class MotionSmoother:
    """Modes ``ema`` and ``flow``: a motion model carries the previous smoothed alpha forward."""

    def __init__(self, motion: MotionModel, config: SmootherConfig):
        self.motion = motion
        self.config = config
        self._stream = _Stream()
        # A state decaying towards 0 over hundreds of frames enters subnormal floats, where CPU
        # arithmetic slows ~100x; flush them to zero (process-wide, harmless for this float work).
        torch.set_flush_denormal(True)

    def reset(self) -> None:
        self._stream = _Stream()

    def smooth(self, frames, alphas):
        """Smooth the next frames in order; returns as many as are ready (all of them when window=0)."""
        _check_batch(frames, alphas)
        stream = self._stream
        stream.template = alphas
        device = alphas.device if isinstance(alphas, torch.Tensor) else torch.device("cpu")
        frames_t = _as_tensor(frames, device)
        alphas_t = _alpha_to_float(_as_tensor(alphas, device))
        ready = []
        # Causal mode writes each frame straight into the returned batch; look-ahead keeps its own. On the
        # CPU numpy allocates it: measured ~2 ms/frame cheaper than torch.empty at 1080p (page faults).
        result = None
        if self.config.window == 0:
            if device.type == "cpu":
                result = torch.from_numpy(np.empty(alphas_t.shape, np.float32))
            else:
                result = torch.empty(alphas_t.shape, device=device)
        with torch.no_grad():
            contexts = frame_contexts(frames_t, alphas_t, self.config.analysis_size)
            for i, (context, alpha) in enumerate(zip(contexts, alphas_t)):
                ready.extend(self._push(context, alpha[None, None], None if result is None else result[i][None, None]))
        if result is not None:
            if len(result):
                stream.state = stream.state.clone()  # the caller owns the returned batch
            return _alpha_like(result, alphas)
        return self._output(ready, alphas)

    def flush(self):
        """Every held-back frame (look-ahead mode), or None when none is held; the stream may go on."""
        stream = self._stream
        if not stream.pending:
            return None
        with torch.no_grad():
            ready = [self._finish() for _ in range(len(stream.pending))]
        return self._output(ready, stream.template)

    def _push(self, context: FrameContext, alpha: torch.Tensor, out: torch.Tensor | None = None) -> list[torch.Tensor]:
        stream, config = self._stream, self.config
        starts_shot = stream.previous is None or is_scene_cut(stream.previous, context, config.cut_threshold)
        if starts_shot:
            causal = alpha if out is None else out.copy_(alpha)
        else:
            transition = self.motion.transition(stream.previous, context)
            causal = carry_over(stream.state, alpha, context.alpha_peak, transition, config, out)
        stream.previous, stream.state = context, causal
        if config.window == 0:
            return [causal]
        if stream.pending and not starts_shot:
            stream.pending[-1].backward = self.motion.transition(context, stream.pending[-1].context)
        stream.pending.append(_Pending(context, alpha, causal, starts_shot))
        return [self._finish()] if len(stream.pending) > config.window else []

    def _finish(self) -> torch.Tensor:
        """Output the oldest held frame: its causal result averaged with a backward pass that starts from
        the causal result of the newest frame of its shot within the window (so it too carries the whole
        past) and is carried back through the per-frame alphas."""
        pending = self._stream.pending
        chain = [pending[0]]
        for entry in list(pending)[1:]:
            if entry.starts_shot:
                break
            chain.append(entry)
        backward = chain[-1].causal
        for entry in reversed(chain[:-1]):
            backward = carry_over(backward, entry.alpha, entry.context.alpha_peak, entry.backward, self.config)
        oldest = pending.popleft()
        return oldest.causal if len(chain) == 1 else 0.5 * (oldest.causal + backward)

    @staticmethod
    def _output(ready: list[torch.Tensor], like):
        if ready:
            result = torch.cat(ready, dim=0)[:, 0]
        else:
            device = like.device if isinstance(like, torch.Tensor) else None
            result = torch.zeros(0, *like.shape[1:], device=device)
        return _alpha_like(result, like)


def make_smoother(mode: str = "flow", **options) -> TemporalSmoother:
    """A temporal smoother for ``mode`` in ``off``, ``ema``, ``flow``; ``options`` are SmootherConfig fields
    and override the mode's defaults (``MODE_DEFAULTS``, then SmootherConfig's).

    ``smooth(frames, alphas)`` takes the next N frames in order (uint8 RGB (N, H, W, 3)) with their
    alphas ((N, H, W), float in [0, 1]) as numpy or torch, and returns smoothed alphas in the same
    container, dtype and device. With a look-ahead window it returns fewer frames at first and the
    rest on later calls or ``flush()``; count and order are always preserved. ``reset()`` forgets all.
    """
    if mode not in TEMPORAL_MODES:
        raise ValueError(f"temporal mode must be one of {', '.join(TEMPORAL_MODES)}, got {mode!r}")
    if mode == "off":
        return OffSmoother()
    config = SmootherConfig(**{**MODE_DEFAULTS.get(mode, {}), **options})
    motion = StillnessModel(config) if mode == "ema" else FlowModel(config)
    return MotionSmoother(motion, config)
