"""The streaming smoothers: ``off``, and ``ema``/``flow`` (a motion model carries the previous smoothed
alpha forward), with optional look-ahead; ``make_smoother`` builds one for a mode."""

from __future__ import annotations

import warnings
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
import torch

from birefnet.pixels import INTEGER_PEAKS, from_unit_float, unit_float
from pipeline.temporal.analysis import FrameContext, frame_contexts, is_scene_cut
from pipeline.temporal.carry import blend, carried, with_correction
from pipeline.temporal.confidence import FlowModel, MotionModel, StillnessModel, Transition
from pipeline.temporal.config import MODE_DEFAULTS, SmootherConfig
from pipeline.temporal.denormals import denormals_flushed
from pipeline.temporal.edges import along_edges
from pipeline.temporal.gate import WEIGHTS_FILE, LearnedGate
from pipeline.temporal.kernels import uses_opencv
from pipeline.temporal.maps import median_of_three
from pipeline.temporal.modes import TEMPORAL_MODES

Array = np.ndarray | torch.Tensor  # numpy in -> numpy out, torch in -> torch out on the same device


class TemporalSmoother(Protocol):
    """What the graph and the webcam engine drive: frames in order, smoothed alphas out."""

    def smooth(self, frames: Array, alphas: Array, overwrite_input: bool = False) -> Array:
        """The next frames (N, H, W, 3) uint8 with their alphas (N, H, W); returns the alphas ready.
        ``overwrite_input``: the caller is done with ``alphas``, so the result may be written over them."""
        ...

    def flush(self) -> Array | None:
        """Every frame still held back, or None when none is."""
        ...

    def reset(self) -> None:
        """Forget the past (a new shot or stream follows)."""
        ...


def _check_batch(frames: Array, alphas: Array) -> None:
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"frames must be (N, H, W, 3), got {tuple(frames.shape)}")
    if frames.dtype not in (np.uint8, torch.uint8):
        raise ValueError(f"frames must be uint8 (birefnet.pixels.to_uint8 converts deeper ones), got {frames.dtype}")
    if tuple(alphas.shape) != tuple(frames.shape[:3]):
        raise ValueError(f"alphas must be (N, H, W) = {tuple(frames.shape[:3])}, got {tuple(alphas.shape)}")


def _as_tensor(x: Array, device: torch.device | None = None) -> torch.Tensor:
    """``x`` as a contiguous tensor (OpenCV reads the CPU ones' memory as it lies), on ``device``. A read-only
    array is shared as it is, without torch's warning: the smoother only reads those."""
    if isinstance(x, torch.Tensor):
        t = x.contiguous()
    else:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "The given NumPy array is not writable")
            t = torch.from_numpy(np.ascontiguousarray(x))
    return t if device is None else t.to(device)


def _working_alphas(alphas: torch.Tensor) -> torch.Tensor:
    """The alphas the smoother works on: 8/16-bit ones on the CPU as they are (``carry`` adds to them in
    OpenCV), anything else as float in [0, 1]."""
    if uses_opencv(alphas.device) and alphas.dtype in INTEGER_PEAKS:
        return alphas
    return unit_float(alphas)


def _alpha_like(result: torch.Tensor, like: Array) -> Array:
    """``result`` (float in [0, 1], or already in ``like``'s dtype) in the container, dtype and value range of
    ``like``."""
    dtype = like.dtype if isinstance(like, torch.Tensor) else torch.from_numpy(np.empty(0, like.dtype)).dtype
    result = from_unit_float(result, dtype) if result.is_floating_point() and not dtype.is_floating_point \
        else result.to(dtype)
    return result if isinstance(like, torch.Tensor) else result.cpu().numpy()


class OffSmoother:
    """Mode ``off``: returns the per-frame alphas unchanged."""

    def smooth(self, frames: Array, alphas: Array, overwrite_input: bool = False) -> Array:
        _check_batch(frames, alphas)
        return alphas

    def flush(self) -> Array | None:
        return None

    def reset(self) -> None:
        """Nothing to forget."""


@dataclass
class _Pending:
    """A frame held back for look-ahead: its full-size ``alpha`` and causal thumbnail; ``backward``
    carries the next frame's alpha into this one."""

    context: FrameContext
    alpha: torch.Tensor
    frame: torch.Tensor  # (H, W, 3) uint8, the guide of ``edges.along_edges``
    causal: torch.Tensor
    starts_shot: bool
    backward: Transition | None = None
    past: torch.Tensor | None = None  # the previous frame's causal result carried into this one
    trust: torch.Tensor | None = None  # the confidence in that carry's motion


@dataclass
class _Stream:
    previous: FrameContext | None = None
    state: torch.Tensor | None = None  # the smoothed alpha thumbnail of the previous frame
    pending: deque[_Pending] = field(default_factory=deque)
    template: Array | None = None  # the last input alphas, to shape outputs on flush()


@dataclass
class CausalStep:
    """One frame of the causal smoother: its smoothed thumbnail, and how it came about (no ``past`` or
    ``transition`` at a shot's first frame, which is its own alpha)."""

    causal: torch.Tensor
    starts_shot: bool
    past: torch.Tensor | None = None  # the previous state carried into this frame
    transition: Transition | None = None


def causal_step(motion: MotionModel, config: SmootherConfig, gate: LearnedGate | None,
                previous: FrameContext | None, state: torch.Tensor | None, context: FrameContext) -> CausalStep:
    """The causal smoother's step into ``context`` from the ``previous`` frame and its smoothed ``state``:
    the past carried in and blended, or a fresh start at the first frame and after a cut. The streaming
    smoother and the gate's fit (``pipeline.evaluation.gate_fit``) both take it, so the fit sees the
    states the smoother makes."""
    if previous is None or state is None or is_scene_cut(previous, context, config.cut_threshold):
        return CausalStep(context.alpha, True)
    transition = motion.transition(previous, context)
    past = carried(state, transition)
    return CausalStep(blend(past, context, transition, config, gate), False, past, transition)


class MotionSmoother:
    """Modes ``ema`` and ``flow``: a motion model carries the previous smoothed alpha thumbnail forward,
    and each frame's full-size alpha gets the change smoothing made to its thumbnail (``carry``).

    Its arithmetic runs with subnormal floats flushed to zero (``denormals_flushed``), on the calling
    thread and only while it runs."""

    def __init__(self, motion: MotionModel, config: SmootherConfig):
        self.motion = motion
        self.config = config
        self.gate = None if config.gate == "hand" else \
            LearnedGate.load(WEIGHTS_FILE if config.gate == "learned" else Path(config.gate))
        self._stream = _Stream()

    def reset(self) -> None:
        self._stream = _Stream()

    def smooth(self, frames: Array, alphas: Array, overwrite_input: bool = False) -> Array:
        """Smooth the next frames in order; returns as many as are ready (all of them when window=0).

        With ``overwrite_input``, causal mode on the CPU writes the result over the working alphas (the
        given ones, when they are writable, contiguous, 8/16-bit or float32, and not inference tensors) and
        returns them: no new batch to fault in and no copy of each frame into it (at 1080p about a fifth of
        the smoother's CPU time on float alphas, under a tenth on 8-bit ones: docs/benchmarks.md). Every
        thumbnail of the batch is taken before any frame is written."""
        _check_batch(frames, alphas)
        stream = self._stream
        stream.template = alphas
        device = alphas.device if isinstance(alphas, torch.Tensor) else torch.device("cpu")
        frames_t = _as_tensor(frames, device)
        alphas_t = _working_alphas(_as_tensor(alphas, device))
        # torch refuses in-place writes to inference tensors (a Predictor's) outside inference mode
        overwrite_input &= alphas.flags.writeable if isinstance(alphas, np.ndarray) else not alphas_t.is_inference()
        ready: list[torch.Tensor] = []
        # Causal mode writes each frame straight into the returned batch; look-ahead keeps its own. On the
        # CPU numpy allocates it: measured ~2 ms/frame cheaper than torch.empty at 1080p (page faults).
        result = None
        if self.config.window == 0:
            if uses_opencv(device):
                result = alphas_t if overwrite_input else torch.from_numpy(np.empty_like(alphas_t.numpy()))
            else:
                result = torch.empty(alphas_t.shape, device=device)
        with torch.no_grad(), denormals_flushed():
            contexts = frame_contexts(frames_t, alphas_t, self.config.analysis_size)
            for i, (context, alpha) in enumerate(zip(contexts, alphas_t, strict=True)):
                out = None if result is None else result[i][None, None]
                ready.extend(self._push(context, alpha[None, None], frames_t[i], out))
            if result is not None:
                return _alpha_like(result, alphas)
            return self._output(ready, alphas)

    def flush(self) -> Array | None:
        """Every held-back frame (look-ahead mode), or None when none is held; the stream may go on."""
        stream = self._stream
        if not stream.pending or stream.template is None:
            return None
        with torch.no_grad(), denormals_flushed():
            ready = [self._finish() for _ in range(len(stream.pending))]
            return self._output(ready, stream.template)

    def _push(self, context: FrameContext, alpha: torch.Tensor, frame: torch.Tensor,
              out: torch.Tensor | None = None) -> list[torch.Tensor]:
        stream, config = self._stream, self.config
        step = causal_step(self.motion, config, self.gate, stream.previous, stream.state, context)
        stream.previous, stream.state = context, step.causal
        if config.window == 0:
            return [self._finished(alpha, step.causal, context, frame, out)]
        if stream.pending and not step.starts_shot:
            stream.pending[-1].backward = self.motion.transition(context, stream.pending[-1].context)
        trust = step.transition.motion if step.transition is not None else None
        stream.pending.append(_Pending(context, alpha, frame, step.causal, step.starts_shot, past=step.past,
                                       trust=trust))
        return [self._finish()] if len(stream.pending) > config.window else []

    def _finish(self) -> torch.Tensor:
        """Output the oldest held frame: its causal result averaged with a backward pass that starts from
        the causal result of the newest frame of its shot within the window (so it too carries the whole
        past) and is carried back through the per-frame alphas; then, as far as the motion of both carries
        into it is trusted, the median of the past carried in, its own alpha and the future carried in.

        Looking one way, a frame that departs from the past may be the matte moving (the gates let it
        through); with the future in view, one that departs from both sides is the odd one out (a
        drop-out, a gain dip, a spike) and the median drops it, while a change that either side shares
        (motion the flow missed, a part entering or leaving) is kept. On the evaluation this lowered
        dtSSD and MAD on every held-out split but one and on the real clips (docs/benchmarks.md)."""
        pending = self._stream.pending
        chain = [pending[0]]
        for entry in list(pending)[1:]:
            if entry.starts_shot:
                break
            chain.append(entry)
        backward, future = chain[-1].causal, None
        for entry in reversed(chain[:-1]):
            future = None
            if entry.backward is not None:
                future = carried(backward, entry.backward)
                backward = blend(future, entry.context, entry.backward, self.config, self.gate)
        oldest = pending.popleft()
        if len(chain) == 1:
            return self._finished(oldest.alpha, oldest.causal, oldest.context, oldest.frame)
        smoothed = 0.5 * (oldest.causal + backward)
        if oldest.past is not None and oldest.trust is not None and future is not None and \
                oldest.backward is not None and oldest.backward.motion is not None:
            trust = torch.minimum(oldest.trust, oldest.backward.motion).mul_(self.config.strength)
            smoothed = torch.lerp(smoothed, median_of_three(oldest.past, oldest.context.alpha, future), trust)
        return self._finished(oldest.alpha, smoothed, oldest.context, oldest.frame)

    def _finished(self, alpha: torch.Tensor, smoothed: torch.Tensor, context: FrameContext, frame: torch.Tensor,
                  out: torch.Tensor | None = None) -> torch.Tensor:
        """The frame's full-size alpha from its ``smoothed`` thumbnail: corrected (``carry.with_correction``),
        then, with ``edges="guided"``, its soft pixels rebuilt along the frame's edges (``edges.along_edges``),
        in ``out`` or a new tensor, never in ``alpha`` itself (which the correction returns when nothing was
        carried)."""
        result = with_correction(alpha, smoothed, context, out)
        if self.config.edges == "guided":
            result = along_edges(result.clone() if result is alpha else result, smoothed, context, frame)
        return result

    @staticmethod
    def _output(ready: list[torch.Tensor], like: Array) -> Array:
        if ready:
            result = torch.cat(ready, dim=0)[:, 0]
        else:
            device = like.device if isinstance(like, torch.Tensor) else None
            result = torch.zeros(0, *like.shape[1:], device=device)
        return _alpha_like(result, like)


def make_smoother(mode: str = "flow", **options: float | str) -> TemporalSmoother:
    """A temporal smoother for ``mode`` in ``off``, ``ema``, ``flow``; ``options`` are SmootherConfig fields
    and override the mode's defaults (``MODE_DEFAULTS``, then SmootherConfig's).

    ``smooth(frames, alphas)`` takes the next N frames in order (uint8 RGB (N, H, W, 3)) with their
    alphas ((N, H, W), float in [0, 1]) as numpy or torch, and returns smoothed alphas in the same
    container, dtype and device. With a look-ahead window it returns fewer frames at first and the
    rest on later calls or ``flush()``; count and order are always preserved. ``reset()`` forgets all.
    ``smooth(..., overwrite_input=True)`` lets causal mode on the CPU write the result over the alphas.
    """
    if mode not in TEMPORAL_MODES:
        raise ValueError(f"temporal mode must be one of {', '.join(TEMPORAL_MODES)}, got {mode!r}")
    if mode == "off":
        return OffSmoother()
    config = SmootherConfig(**{**MODE_DEFAULTS.get(mode, {}), **options})  # type: ignore[arg-type]
    motion = StillnessModel(config) if mode == "ema" else FlowModel(config)
    return MotionSmoother(motion, config)
