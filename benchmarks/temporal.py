"""Temporal smoothing on the synthetic benchmark: matte quality per mode against per-frame predictions.

Renders a seeded synthetic clip (pipeline.synthetic) per resolution, turns its exact alpha into
flickering per-frame predictions (FlickerSimulator), runs every smoothing mode over it in batches and
prints MAD, MSE, Grad, Conn, dtSSD, flicker and ms/frame (smoothing only), the fast-motion segment's
MAD, and the issue's targets (dtSSD -40%, MAD within +5%, fast-motion MAD within +10%).

    python -m benchmarks.temporal --sizes 1920x1080 912x512 --frames 90
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch

from birefnet.train.scenes import SyntheticScene
from pipeline.metrics import ClipEvaluator
from pipeline.synthetic import FlickerSimulator
from pipeline.temporal.smoother import make_smoother

MODES = {"off": {}, "ema": {}, "flow": {}, "ema window=2": {"window": 2}, "flow window=2": {"window": 2}}


def run_mode(mode: str, options: dict, frames, predictions, batch: int, device: str) -> tuple[np.ndarray, float]:
    """Smoothed alphas of the whole clip and the smoothing time in ms per frame."""
    smoother = make_smoother(mode.split()[0], **options)
    outputs, elapsed = [], 0.0
    for start in range(0, len(frames), batch):
        f, a = frames[start : start + batch], predictions[start : start + batch]
        if device != "cpu":
            f, a = torch.from_numpy(f).to(device), torch.from_numpy(a).to(device)
            torch.cuda.synchronize()
        began = time.perf_counter()
        out = smoother.smooth(f, a)
        if device != "cpu":
            torch.cuda.synchronize()
        elapsed += time.perf_counter() - began
        outputs.append(out)
    began = time.perf_counter()
    rest = smoother.flush()
    elapsed += time.perf_counter() - began
    if rest is not None:
        outputs.append(rest)
    result = [o.cpu().numpy() if isinstance(o, torch.Tensor) else o for o in outputs]
    return np.concatenate(result), elapsed / len(frames) * 1e3


def benchmark_size(width: int, height: int, args: argparse.Namespace) -> list[str]:
    scene = SyntheticScene(args.seed, args.frames, height, width)
    frames, truth = scene.frames()
    predictions = FlickerSimulator(args.seed).predict_batch(truth, 0)
    fast = scene.segments["fast"]
    rows, baseline = [], None
    for name, options in MODES.items():
        smoothed, ms = run_mode(name, options, frames, predictions, args.batch, args.device)
        assert smoothed.shape == truth.shape, "smoothing changed the frame count"
        whole = ClipEvaluator(with_grad_conn=not args.skip_grad_conn)
        whole.update(smoothed, truth, frames)
        scores = whole.result()
        fast_eval = ClipEvaluator(with_grad_conn=False)
        fast_eval.update(smoothed[fast.start : fast.stop], truth[fast.start : fast.stop])
        fast_mad = fast_eval.result().mad_x1e3
        if baseline is None:
            baseline = (scores.mad_x1e3, scores.dtssd_x1e2, fast_mad)
        d_mad = 100 * (scores.mad_x1e3 / baseline[0] - 1)
        d_dt = 100 * (scores.dtssd_x1e2 / baseline[1] - 1)
        d_fast = 100 * (fast_mad / baseline[2] - 1)
        met = d_dt <= -40 and d_mad <= 5 and d_fast <= 10
        rows.append(
            f"| {width}x{height} | {name} | {scores.mad_x1e3:.3f} | {scores.mse_x1e3:.3f} | {scores.grad_div1e3:.3f} "
            f"| {scores.conn_div1e3:.3f} | {scores.dtssd_x1e2:.3f} | {scores.flicker_x1e3:.3f} | {fast_mad:.3f} "
            f"| {ms:.1f} | {d_mad:+.1f}% | {d_dt:+.1f}% | {d_fast:+.1f}% "
            f"| {'-' if name == 'off' else ('yes' if met else 'NO')} |"
        )
        print(rows[-1], flush=True)
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", nargs="+", default=["1920x1080", "912x512"], help="WIDTHxHEIGHT list")
    parser.add_argument("--frames", type=int, default=90)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--device", default="cpu", help="cpu or cuda (frames and alphas moved there)")
    parser.add_argument("--skip-grad-conn", action="store_true", help="skip the two slow metrics")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    args = parser.parse_args()
    torch.set_grad_enabled(False)
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"synthetic benchmark: seed {args.seed}, {args.frames} frames, device {args.device}, batch {args.batch}, "
          f"torch threads {torch.get_num_threads()}, load average {os.getloadavg()[0]:.1f} at start")
    print("MAD/MSE x1e3, Grad/Conn /1e3 (per frame), dtSSD x1e2, flicker x1e3; deltas against 'off';")
    print("targets: dtSSD <= -40%, MAD <= +5%, fast-motion MAD <= +10%\n")
    print("| size | mode | MAD | MSE | Grad | Conn | dtSSD | flicker | fast MAD | ms/frame | dMAD | ddtSSD "
          "| dfast MAD | targets |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for size in args.sizes:
        width, height = (int(v) for v in size.lower().split("x"))
        benchmark_size(width, height, args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
