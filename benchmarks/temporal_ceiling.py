"""The ceiling of any gate: causal ``flow`` with each thumbnail pixel's blend weight chosen from the truth.

The smoother's output thumbnail is lerp(own, carried, weight), whatever decides the weight (the
hand-built confidence, the learned gate). Here the weight is the one that brings each pixel closest to
the exact alpha thumbnail, clipped to [0, 1]: no gate can do better on the same carried state, so the
figures bound what a better gate could still gain (docs/benchmarks.md). The exact thumbnails reach the
blend through a wrapper around ``pipeline.temporal.smoother``'s ``frame_contexts`` and ``blend``, for
this measurement only.

    python -m benchmarks.temporal_ceiling --size 912x512 --frames 30 --split held-out
"""

from __future__ import annotations

import argparse

import torch

import pipeline.temporal.smoother as smoother_module
from benchmarks.temporal import parse_size
from pipeline.evaluation import family_changes, mean_change, prepare
from pipeline.evaluation.runner import CaseClip, Row, score, smooth_clip
from pipeline.evaluation.split import cases_of
from pipeline.temporal.analysis import FrameContext, frame_contexts
from pipeline.temporal.confidence import Transition
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


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=parse_size, default=(912, 512), help="WIDTHxHEIGHT")
    parser.add_argument("--frames", type=int, default=30)
    parser.add_argument("--split", choices=("tuning", "held-out"), default="held-out")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    rows: dict[str, list[Row]] = {"off": [], "flow": [], "ceiling": []}
    for clip in prepare(cases_of(args.split), args.size, args.frames):
        rows["off"].append(run(clip, "off", None))
        rows["flow"].append(run(clip, "flow", None))
        rows["ceiling"].append(run(clip, "flow", TruthChosenWeights()))
    print("| mode | family | split | cases | ddtSSD | dMAD | dfast MAD |\n|---|---|---|---|---|---|---|")
    for name in ("flow", "ceiling"):
        changes = family_changes(rows[name], rows["off"])
        for c in [*changes, mean_change(changes)]:
            figures = f"{c.dtssd:+.1%} | {c.mad:+.1%} | {c.fast_mad:+.1%}"
            print(f"| {name} | {c.family} | {c.split} | {c.cases} | {figures} |")


if __name__ == "__main__":
    main()
