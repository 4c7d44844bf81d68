"""What temporal smoothing costs per frame on one CPU thread, fed as the pipeline feeds it.

The matting stage hands the smoother 8-bit (16-bit for deep outputs) alphas as numpy arrays and takes the same back,
so the conversions in and out are part of the cost; ``benchmarks/temporal.py`` times the smoother on
float alphas instead. Thread CPU time (``time.thread_time``), so other jobs on the machine slow it less
than wall time; the minimum over ``--repeats`` runs of the whole clip, fed in batches of 8. The clip is a
synthetic scene (``birefnet.train.scenes``) with its exact alpha plus soft-band noise, so there is
something to smooth. The API is ``make_smoother``'s only, so an older checkout can be timed the same
way in the same sitting (copy this file into its ``benchmarks/``).

    python -m benchmarks.temporal_cost --size 1920x1080 --modes flow flow:window=2 ema
"""

from __future__ import annotations

import argparse
import inspect
import time

import cv2
import numpy as np
import torch

from benchmarks.temporal import parse_mode
from birefnet.train.scenes import SyntheticScene
from pipeline.temporal.smoother import make_smoother

BATCH = 8


def clip(width: int, height: int, frames: int) -> tuple[np.ndarray, np.ndarray]:
    """Frames (N, H, W, 3) uint8 and noisy alphas (N, H, W) float32 of a moving synthetic scene."""
    images, truth = SyntheticScene(5, frames, height, width).frames()
    soft = (truth > 0) & (truth < 1)
    noise = np.random.default_rng(0).normal(0.0, 0.05, truth.shape).astype(np.float32)
    return images, np.clip(truth + noise * soft, 0.0, 1.0)


def ms_per_frame(mode: str, options: dict[str, float | int | str], images: np.ndarray, alphas: np.ndarray,
                 repeats: int) -> float:
    """Least thread CPU time per frame of smoothing the whole clip, over ``repeats`` runs. Where ``smooth``
    takes ``overwrite_input``, it gets it as the pipeline gives it, on a fresh copy of the alphas made
    before the clock starts (an older checkout without it allocates its outputs, as its pipeline did)."""
    overwrite = "overwrite_input" in inspect.signature(make_smoother(mode, **options).smooth).parameters
    best = float("inf")
    for _ in range(repeats):
        smoother = make_smoother(mode, **options)
        given = alphas.copy() if overwrite else alphas
        extra = {"overwrite_input": True} if overwrite else {}
        started = time.thread_time()
        for start in range(0, len(images), BATCH):
            smoother.smooth(images[start:start + BATCH], given[start:start + BATCH], **extra)
        smoother.flush()
        best = min(best, (time.thread_time() - started) / len(images) * 1e3)
    return best


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="1920x1080", help="WIDTHxHEIGHT")
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--modes", nargs="+", default=["flow"], help="NAME[:KEY=VALUE,...]")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    width, height = (int(v) for v in args.size.lower().split("x"))
    images, alphas = clip(width, height, args.frames)
    inputs = {"uint8": (alphas * 255 + 0.5).astype(np.uint8), "uint16": (alphas * 65535 + 0.5).astype(np.uint16),
              "float32": alphas}
    print(f"# temporal cost, {time.strftime('%Y-%m-%d %H:%M')}, {width}x{height}, {args.frames} frames, "
          f"one thread, thread CPU ms/frame (min of {args.repeats})")
    with torch.no_grad():
        for text in args.modes:
            name, options = parse_mode(text)
            figures = ", ".join(f"{dtype} alphas {ms_per_frame(name, options, images, given, args.repeats):.1f}"
                                for dtype, given in inputs.items())
            print(f"{text}: {figures}", flush=True)


if __name__ == "__main__":
    main()
