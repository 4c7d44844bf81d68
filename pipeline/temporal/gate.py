"""The learned gate: how far each thumbnail pixel leans on the carried state, from what the motion model
and the two alphas say there.

A per-pixel network of 8 measures -> 8 -> 1 in place of the hand-built confidence x strength, fitted on
the evaluation's tuning split only (``pipeline.evaluation.gate_fit``) so that the blend of the frame's own
thumbnail and the carried one comes as close to the truth as those measures allow. The hand-built
confidence falls wherever the two alphas disagree, and a flicker is exactly such a disagreement, so it
let most flicker through; from the same measures the fit learns where disagreement is flicker and where
it is motion. The ghost and fill gates (``carry.hand_gates``) still bound it. It became the ``flow``
default on the held-out figures (docs/benchmarks.md tells how it was chosen). Its weights ship as
``gate.safetensors`` next to this file (81 numbers).
"""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from pipeline.temporal.analysis import FrameContext
from pipeline.temporal.confidence import Transition

FEATURES = ("difference", "excess", "shortfall", "motion", "confidence", "stillness", "softness", "alpha")
HIDDEN = 8
WEIGHTS_FILE = Path(__file__).with_name("gate.safetensors")


def gate_features(state: torch.Tensor, alpha: torch.Tensor, peak: torch.Tensor, trough: torch.Tensor,
                  motion: torch.Tensor, confidence: torch.Tensor, stillness: torch.Tensor) -> torch.Tensor:
    """The measures (len(FEATURES), N) the gate sees at N thumbnail pixels, from those pixels' values: the
    carried ``state``'s difference from the new ``alpha``, its excess over the new alpha's local ``peak``
    and shortfall under its local ``trough`` (``carry.envelope``; these three x10, so they span about
    [0, 1]), the confidence in the motion alone and with the alphas' agreement, the stillness of the
    image, the new alpha's softness 4a(1 - a) and the new alpha itself. Each is written into its row of
    one buffer (a stack of eight maps would copy them all once more)."""
    rows = torch.empty(len(FEATURES), state.numel(), dtype=state.dtype, device=state.device)
    difference, excess, shortfall, motion_row, confidence_row, stillness_row, softness, alpha_row = rows
    torch.sub(state, alpha, out=difference).abs_().mul_(10.0)
    torch.sub(state, peak, out=excess).clamp_min_(0.0).mul_(10.0)
    torch.sub(trough, state, out=shortfall).clamp_min_(0.0).mul_(10.0)
    motion_row.copy_(motion)
    confidence_row.copy_(confidence)
    stillness_row.copy_(stillness)
    torch.mul(alpha, 1.0 - alpha, out=softness).mul_(4.0)
    alpha_row.copy_(alpha)
    return rows


Maps = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]


def measure_maps(state: torch.Tensor, target: FrameContext, transition: Transition, peak: torch.Tensor,
                 trough: torch.Tensor) -> Maps:
    """The thumbnail maps ``gate_features`` reads, in its argument order (a motion model without a motion
    or stillness map stands in its confidence, or its motion, for them)."""
    motion = transition.motion if transition.motion is not None else transition.confidence
    stillness = transition.stillness if transition.stillness is not None else motion
    return state, target.alpha, peak, trough, motion, transition.confidence, stillness


def pixel_measures(state: torch.Tensor, target: FrameContext, transition: Transition, peak: torch.Tensor,
                   trough: torch.Tensor, where: torch.Tensor | None = None) -> torch.Tensor:
    """``gate_features`` of the thumbnail maps at every pixel, or at the flat pixel indices ``where``."""
    maps = measure_maps(state, target, transition, peak, trough)
    return gate_features(*(m.reshape(-1) if where is None else m.reshape(-1)[where] for m in maps))


class LearnedGate(torch.nn.Module):
    """Measures (F, N) -> the weight in [0, 1] of the carried state at those N pixels (N,)."""

    def __init__(self, hidden: int = HIDDEN) -> None:
        super().__init__()
        self.hidden = torch.nn.Linear(len(FEATURES), hidden)
        self.output = torch.nn.Linear(hidden, 1)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        if self.hidden.weight.device != features.device:
            self.to(features.device)
        hidden = torch.addmm(self.hidden.bias[:, None], self.hidden.weight, features).relu_()
        return torch.addmm(self.output.bias[:, None], self.output.weight, hidden).sigmoid_()[0]

    def weights(self, state: torch.Tensor, target: FrameContext, transition: Transition, peak: torch.Tensor,
                trough: torch.Tensor) -> torch.Tensor:
        """The weight map (1, 1, h, w) of the carried ``state`` in ``target``, every pixel computed (the torch
        path: picking out the pixels where the weight matters cost more in torch ops than it saved; the
        CPU path's compiled blend, ``fused.learned_blend``, runs the network on those pixels only)."""
        return self(pixel_measures(state, target, transition, peak, trough)).reshape(target.alpha.shape)

    @classmethod
    def load(cls, path: Path = WEIGHTS_FILE) -> LearnedGate:
        """The gate saved in ``path``, every weight present and of its shape; a one-line ValueError if not."""
        try:
            weights = load_file(str(path))
            gate = cls(hidden=weights["hidden.weight"].shape[0])
            gate.load_state_dict(weights, strict=True)
        except (OSError, KeyError, RuntimeError, SafetensorError) as error:
            reason = f"no weight {error}" if isinstance(error, KeyError) else str(error).splitlines()[0]
            raise ValueError(f"gate weights {path} cannot be loaded: {reason}") from None
        return gate.eval().requires_grad_(False)

    def save(self, path: Path) -> None:
        save_file({name: value.detach().cpu().contiguous() for name, value in self.state_dict().items()}, str(path))
