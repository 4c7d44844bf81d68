"""Per-frame matte quality of checkpoints on synthetic scenes, at several working resolutions.

The demo model's figures and its choices are made with this script: candidates (checkpoints and
working resolutions) are ranked by the mean MAD over the *validation* scene seeds, and only the chosen
one is then measured on the held-out seeds (11 and 23), which never take part in a choice. Training
scenes use seeds of a million and up (``birefnet.train.synthetic_data``), so small seeds are unseen.

    python -m benchmarks.demo_model --checkpoints demo runs/demo11/best.safetensors \
        --resolutions 256 288 320 --seeds 1 2 3 7
    python -m benchmarks.demo_model --resolutions 288 --upsample guided bilinear --size 1024

Each row gives MAD x1e-3 / dtSSD x1e-2 per seed, then the mean MAD and the mean gradient error
(/1e3) over the seeds.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from birefnet import Predictor
from birefnet.train.scenes import SyntheticScene
from birefnet.upsampling import UPSAMPLING_MODES
from pipeline.metrics import ClipEvaluator


def scene_scores(predictor: Predictor, frames: np.ndarray, truth: np.ndarray) -> tuple[float, float, float]:
    """(MAD x1e-3, dtSSD x1e-2, gradient error /1e3) of the predictor's per-frame mattes against the
    exact alpha."""
    evaluator = ClipEvaluator(with_grad_conn=True)
    evaluator.update(predictor.predict(frames), truth)
    scores = evaluator.result()
    return scores.mad_x1e3, scores.dtssd_x1e2, scores.grad_div1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoints", nargs="+", default=["demo"], help="model sources")
    parser.add_argument("--resolutions", nargs="+", type=int, default=[256], help="working sides, multiples of 32")
    parser.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3, 7], help="synthetic scene seeds")
    parser.add_argument("--frames", type=int, default=24)
    parser.add_argument("--size", type=int, default=512, help="side of the rendered scenes")
    parser.add_argument("--upsample", nargs="+", choices=UPSAMPLING_MODES, default=["guided"],
                        help="how the matte comes back to the scene's size (birefnet.upsampling)")
    args = parser.parse_args()

    scenes = {seed: SyntheticScene(seed, args.frames, args.size, args.size).frames() for seed in args.seeds}
    seeds = " ".join(f"{f'seed {s}':>13}" for s in args.seeds)
    print(f"MAD x1e-3 / dtSSD x1e-2 per frame, {args.frames} frames of {args.size}x{args.size}")
    print(f"{'checkpoint':<40} {'res':>4} {'upsample':>8} {seeds} {'mean MAD':>9} {'grad':>6} {'s/frame':>8}")
    for checkpoint in args.checkpoints:
        for resolution in args.resolutions:
            for upsample in args.upsample:
                predictor = Predictor(checkpoint, device="cpu", resolution=resolution, upsample=upsample)
                began = time.perf_counter()
                scores = [scene_scores(predictor, *scenes[seed]) for seed in args.seeds]
                per_frame = (time.perf_counter() - began) / (len(args.seeds) * args.frames)
                cells = " ".join(f"{mad:6.2f}/{dtssd:5.2f}" for mad, dtssd, _ in scores)
                mad, grad = np.mean([s[0] for s in scores]), np.mean([s[2] for s in scores])
                print(f"{checkpoint[-40:]:<40} {resolution:>4} {upsample:>8} {cells} {mad:9.2f} {grad:6.2f} "
                      f"{per_frame:8.3f}", flush=True)


if __name__ == "__main__":
    main()
