"""Ceilings of temporal smoothing: what a smoother that knew the truth could reach on the evaluation.

*The gate ceiling*: causal ``flow`` with each thumbnail pixel's blend weight chosen from the truth. The
smoother's output thumbnail is lerp(own, carried, weight), whatever decides the weight (the hand-built
confidence, the learned gate). Here the weight is the one that brings each pixel closest to the exact
alpha thumbnail, clipped to [0, 1]: no gate can do better on the same carried state. The exact
thumbnails reach the blend through a wrapper around ``pipeline.temporal.smoother``'s ``frame_contexts``
and ``blend``, for this measurement only.

*The selection ceilings* (``--reach K``): each pixel takes the value closest to the truth that any
weighted mean of the frame's own alpha and the per-frame alphas of up to K frames before it (and, for
look-ahead, after it) could give, once carried into it along the same flow: the truth clipped to their
range. That bounds every method that blends motion-compensated per-frame predictions, recursive or
not, learned or not. Once on the thumbnails (the output then goes through the soft-pixel correction, as
the smoother's does) and once at full size (the flow upsampled), to show what the thumbnail state costs.

    python -m benchmarks.temporal_ceiling --size 912x512 --frames 30 --split held-out --reach 1 2 4
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

import pipeline.temporal.smoother as smoother_module
from benchmarks.temporal import parse_size
from pipeline.evaluation import family_changes, mean_change, prepare
from pipeline.evaluation.runner import CaseClip, Row, score, smooth_clip
from pipeline.evaluation.split import cases_of
from pipeline.temporal.analysis import FrameContext, analysis_factor, frame_contexts, is_scene_cut
from pipeline.temporal.carry import carried, with_correction
from pipeline.temporal.confidence import FlowModel, Transition
from pipeline.temporal.config import SmootherConfig
from pipeline.temporal.smoother import make_smoother


class TruthChosenWeights:
    """Feeds the exact thumbnails of one clip, in frame order, to the blend, which takes the best weight."""

    def __init__(self) -> None:
        self.truths: list[torch.Tensor] = []
        self.pending: dict[int, torch.Tensor] = {}

    def contexts(self, frames: torch.Tensor, alphas: torch.Tensor, analysis_size: int) -> list[FrameContext]:
        made = frame_contexts(frames, alphas, analysis_size)
        for context in made:
            self.pending[id(context)] = self.truths.pop(0)
        return made

    def blend(self, state: torch.Tensor, target: FrameContext, transition: Transition, config: SmootherConfig,
              gate: object = None) -> torch.Tensor:
        difference = state - target.alpha
        truth = self.pending[id(target)]
        weight = ((truth - target.alpha) * difference / (difference.square() + 1e-8)).clamp_(0.0, 1.0)
        return target.alpha + weight * difference


def run(clip: CaseClip, mode: str, chooser: TruthChosenWeights | None) -> Row:
    original = smoother_module.frame_contexts, smoother_module.blend
    if chooser is not None:
        chooser.truths = [t.alpha for t in frame_contexts(torch.from_numpy(clip.images), torch.from_numpy(clip.truth),
                                                          SmootherConfig().analysis_size)]
        smoother_module.frame_contexts, smoother_module.blend = chooser.contexts, chooser.blend  # type: ignore[assignment]
    try:
        with torch.no_grad():
            smoothed, ms = smooth_clip(make_smoother(mode), clip.images, clip.predictions)
    finally:
        smoother_module.frame_contexts, smoother_module.blend = original
    return score(clip, smoothed, ms)


@dataclass
class ClipMotion:
    """A clip's thumbnails and the flow's transitions between its neighbouring frames, computed once for
    every selection ceiling: ``forward[t]`` carries frame t - 1 into t, ``backward[t]`` frame t + 1 into t
    (None across a cut and at the clip's ends)."""

    contexts: list[FrameContext]
    forward: list[Transition | None]
    backward: list[Transition | None]


def clip_motion(clip: CaseClip) -> ClipMotion:
    config = SmootherConfig()
    motion = FlowModel(config)
    contexts = frame_contexts(torch.from_numpy(clip.images), torch.from_numpy(clip.predictions).float(),
                              config.analysis_size)

    def transition(source: int, target: int) -> Transition | None:
        earlier, later = contexts[min(source, target)], contexts[max(source, target)]
        cut = is_scene_cut(earlier, later, config.cut_threshold)
        return None if cut else motion.transition(contexts[source], contexts[target])

    n = len(contexts)
    return ClipMotion(contexts, [None] + [transition(t - 1, t) for t in range(1, n)],
                      [transition(t + 1, t) for t in range(n - 1)] + [None])


def at_full_size(transition: Transition, height: int, width: int, factor: int) -> Transition:
    """``transition`` for full-size maps (for ``carry.carried``): its flow (x ``factor``) and stillness upsampled."""
    if transition.flow is None or transition.stillness is None:
        return transition

    def upsampled(plane: torch.Tensor) -> torch.Tensor:
        return F.interpolate(plane, size=(height, width), mode="bilinear", align_corners=False)

    return Transition(transition.confidence, upsampled(transition.flow).mul_(factor), upsampled(transition.stillness))


def carried_back(alphas: Sequence[torch.Tensor], carries: Sequence[Transition | None],
                 reach: int) -> list[list[torch.Tensor]]:
    """For each frame, the alphas of up to ``reach`` frames before it in its shot carried into it, nearest
    first; ``carries[t]`` moves frame t - 1 into frame t (None: frame t starts a shot)."""
    result: list[list[torch.Tensor]] = []
    for t, transition in enumerate(carries):
        result.append([] if transition is None else
                      [carried(a, transition) for a in [alphas[t - 1], *result[t - 1][:reach - 1]]])
    return result


def selection_ceiling(clip: CaseClip, motion: ClipMotion, reach: int, look_ahead: bool, full_size: bool) -> np.ndarray:
    """The truth clipped, per pixel, to the range of the frame's own alpha and the ``reach`` nearest per-frame
    alphas carried into it from before (and after, with ``look_ahead``), on the thumbnails or at full size."""
    alphas = torch.from_numpy(clip.predictions).float()
    contexts, forward, backward = motion.contexts, motion.forward, motion.backward
    if full_size:
        height, width = alphas.shape[1:]
        factor = analysis_factor(height, width, SmootherConfig().analysis_size)
        forward, backward = ([None if t is None else at_full_size(t, height, width, factor) for t in way]
                             for way in (forward, backward))
        own = [alphas[t][None, None] for t in range(len(alphas))]
        truths = list(torch.from_numpy(clip.truth)[:, None, None])
    else:
        own = [c.alpha for c in contexts]
        truths = [c.alpha for c in frame_contexts(torch.from_numpy(clip.images), torch.from_numpy(clip.truth),
                                                  SmootherConfig().analysis_size)]
    candidates = carried_back(own, forward, reach)
    if look_ahead:
        ahead = carried_back(own[::-1], backward[::-1], reach)[::-1]
        candidates = [before + after for before, after in zip(candidates, ahead, strict=True)]
    outputs = []
    for t, (alpha, truth) in enumerate(zip(own, truths, strict=True)):
        stack = torch.cat([alpha, *candidates[t]])
        best = torch.minimum(torch.maximum(truth, stack.amin(0, keepdim=True)), stack.amax(0, keepdim=True))
        outputs.append(best if full_size else with_correction(alphas[t][None, None], best, contexts[t]))
    return torch.cat(outputs)[:, 0].numpy()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=parse_size, default=(912, 512), help="WIDTHxHEIGHT")
    parser.add_argument("--frames", type=int, default=30)
    parser.add_argument("--split", choices=("tuning", "held-out"), default="held-out")
    parser.add_argument("--reach", type=int, nargs="*", default=[],
                        help="also the selection ceilings over this many frames each way (e.g. 1 2 4)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    selections = {f"{where}, {way}, reach {reach}": (reach, way == "look-ahead", where == "full size")
                  for where in ("thumbnails", "full size") for way in ("causal", "look-ahead") for reach in args.reach}
    rows: dict[str, list[Row]] = {"off": [], "flow": [], "ceiling": [], **{name: [] for name in selections}}
    for clip in prepare(cases_of(args.split), args.size, args.frames):
        rows["off"].append(run(clip, "off", None))
        rows["flow"].append(run(clip, "flow", None))
        rows["ceiling"].append(run(clip, "flow", TruthChosenWeights()))
        if selections:
            with torch.no_grad():
                motion = clip_motion(clip)
                for name, (reach, look_ahead, full_size) in selections.items():
                    rows[name].append(score(clip, selection_ceiling(clip, motion, reach, look_ahead, full_size), 0.0))
    print("| mode | family | split | cases | ddtSSD | dMAD | dfast MAD |\n|---|---|---|---|---|---|---|")
    for name in ("flow", "ceiling", *selections):
        changes = family_changes(rows[name], rows["off"])
        for c in [*changes, mean_change(changes)]:
            figures = f"{c.dtssd:+.1%} | {c.mad:+.1%} | {c.fast_mad:+.1%}"
            print(f"| {name} | {c.family} | {c.split} | {c.cases} | {figures} |")


if __name__ == "__main__":
    main()
