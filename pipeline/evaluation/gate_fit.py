"""Fits the learned gate (``pipeline.temporal.gate``) on the evaluation's tuning split, and only there.

The gate decides the smoothed state, and the state decides what the gate sees next, so the fit runs in
rounds. Round 0 replays the causal smoother without the gate (confidence x strength) and records, at
thumbnail pixels where the carried state and the new alpha differ: the gate's measures, the new alpha,
the difference that the ghost and fill gates let through, the previous output, and the exact alpha and
its change. Each later round replays with the gate fitted so far and adds its own records. The fit
minimises the squared error of new + gate x (that difference) against the exact thumbnail, plus that of
its change since the previous output against the truth's change (what dtSSD scores). Everything is
seeded and runs on one thread. The shipped weights were fitted when the replay's CPU path was torch ops;
it is now compiled passes (``pipeline.temporal.fused``) that agree with them to float rounding, so a
refit will not write them again byte for byte (how far it lands from them has not been measured)::

    python -m pipeline.evaluation.gate_fit --out pipeline/temporal/gate.safetensors
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass, fields
from pathlib import Path

import torch

from pipeline.evaluation.runner import CaseClip, Size, prepare
from pipeline.evaluation.split import tuning_cases
from pipeline.temporal.analysis import frame_contexts
from pipeline.temporal.carry import envelope, hand_gates
from pipeline.temporal.confidence import FlowModel
from pipeline.temporal.config import SmootherConfig
from pipeline.temporal.gate import HIDDEN, LearnedGate, pixel_measures
from pipeline.temporal.smoother import causal_step

TEMPORAL_WEIGHT = 1.0  # the change term's weight against the error term's in the fit
PIXELS_PER_FRAME = 4000  # records per frame, drawn among the pixels where the two alphas differ
SIZES: tuple[Size, ...] = ((912, 512), (1920, 1080))  # the evaluation's two sizes
FRAMES = {512: 30, 1080: 16}  # frames per clip at each height, as benchmarks/temporal.py runs them


@dataclass
class Records:
    """The gate's measures (N, F) at N thumbnail pixels, with the new alpha, carried minus new (times the
    hand-built gates) and the exact alpha."""

    features: torch.Tensor
    alpha: torch.Tensor
    difference: torch.Tensor
    truth: torch.Tensor
    previous: torch.Tensor  # the previous frame's output at the same pixel
    truth_change: torch.Tensor  # the exact alpha's change since the previous frame there

    @staticmethod
    def join(parts: Sequence[Records]) -> Records:
        return Records(*(torch.cat([getattr(p, field.name) for p in parts]) for field in fields(Records)))


def replay(clip: CaseClip, config: SmootherConfig, gate: LearnedGate | None, generator: torch.Generator) -> Records:
    """The causal smoother over ``clip`` (the hand-built gates when ``gate`` is None), recording its gate's
    inputs where the carried state and the new alpha differ by more than 1e-3."""
    images = torch.from_numpy(clip.images)
    contexts = frame_contexts(images, torch.from_numpy(clip.predictions), config.analysis_size)
    truths = frame_contexts(images, torch.from_numpy(clip.truth), config.analysis_size)
    motion, parts = FlowModel(config), []
    previous, state, previous_truth = None, None, truths[0]
    for context, truth in zip(contexts, truths, strict=True):
        step = causal_step(motion, config, gate, previous, state, context)
        if step.past is not None and step.transition is not None and state is not None:
            past = step.past
            peak, trough = envelope(context, config)
            difference = ((past - context.alpha) * hand_gates(past, peak, trough, config)).reshape(-1)
            chosen = (difference.abs() > 1e-3).nonzero()[:, 0]
            chosen = chosen[torch.randperm(chosen.numel(), generator=generator)[:PIXELS_PER_FRAME]]
            features = pixel_measures(past, context, step.transition, peak, trough, chosen).T
            truth_change = truth.alpha - previous_truth.alpha
            parts.append(Records(features, context.alpha.reshape(-1)[chosen], difference[chosen],
                                 truth.alpha.reshape(-1)[chosen], state.reshape(-1)[chosen],
                                 truth_change.reshape(-1)[chosen]))
        previous, state, previous_truth = context, step.causal, truth
    return Records.join(parts)


def fit(records: Records, seed: int, steps: int = 1500, batch: int = 32768, hidden: int = HIDDEN,
        temporal_weight: float = TEMPORAL_WEIGHT) -> LearnedGate:
    """A fresh gate fitted to ``records`` by Adam on the squared error of the blend against the truth, plus
    ``temporal_weight`` times that of its change since the previous output against the truth's change
    (what dtSSD scores)."""
    torch.manual_seed(seed)
    gate = LearnedGate(hidden)
    optimiser = torch.optim.Adam(gate.parameters(), lr=1e-2)
    generator = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        pick = torch.randint(0, len(records.truth), (batch,), generator=generator)
        weight = gate(records.features[pick].T)
        blended = records.alpha[pick] + weight * records.difference[pick]
        change = blended - records.previous[pick] - records.truth_change[pick]
        loss = (blended - records.truth[pick]).square().mean() + temporal_weight * change.square().mean()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    return gate.eval().requires_grad_(False)


def fit_gate(clips: Sequence[CaseClip], rounds: int = 2, seed: int = 0, hidden: int = HIDDEN,
             temporal_weight: float = TEMPORAL_WEIGHT) -> LearnedGate:
    """The gate after round 0 (the smoother replayed without it) and ``rounds`` replays with the gate so
    far, each round fitted to every record collected until then."""
    config = SmootherConfig()
    generator = torch.Generator().manual_seed(seed)
    gate: LearnedGate | None = None
    collected: list[Records] = []
    for round_ in range(rounds + 1):
        with torch.no_grad():
            collected.extend(replay(clip, config, gate, generator) for clip in clips)
        gate = fit(Records.join(collected), seed + round_, hidden=hidden, temporal_weight=temporal_weight)
    assert gate is not None  # rounds + 1 >= 1 fits
    return gate


def tuning_clips(sizes: Sequence[Size] = SIZES) -> list[CaseClip]:
    return [clip for size in sizes for clip in prepare(tuning_cases(), size, FRAMES.get(size[1], 16))]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--hidden", type=int, default=HIDDEN, help="hidden units of the gate")
    parser.add_argument("--temporal-weight", type=float, default=TEMPORAL_WEIGHT)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    fit_gate(tuning_clips(), args.rounds, hidden=args.hidden, temporal_weight=args.temporal_weight).save(args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
