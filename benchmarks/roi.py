"""Subject-tracking crops (``--roi auto``) against whole frames: edge quality and time on 4K clips.

Clips: subjects with hair-like strands (``birefnet.train.scenes``) rendered small, then composited at
a moving position into a 3840x2160 frame over the scene's own background scaled up, so the truth is
exact at 4K and the subject fills a small part of the frame. The same model at the same working
resolution mattes every frame twice through the matting workers, as the pipeline's matting stage does:
whole frames, and ``--roi auto`` (coarse pass + crop pass). Measured on the subject's edges (the band
where the true alpha is neither 0 nor 1, grown by a few pixels): MAD, and the gradient error over the
subject's bounding box (``birefnet.metrics``); and seconds per frame of matting.

    python -m benchmarks.roi --frames 6 --resolution 512 --coarse 256
"""

from __future__ import annotations

import argparse
import platform
import time
from dataclasses import dataclass
from fractions import Fraction

import cv2
import numpy as np
import torch

from birefnet.metrics import gradient_error, mad
from birefnet.tracking import TrackSettings
from birefnet.train.scenes import SyntheticScene
from pipeline.frames import FrameBatch
from pipeline.roi.requests import track_requests
from workers.local import LocalBackend
from workers.matting import PredictorSpec
from workers.payload import RegionAlpha

WIDTH, HEIGHT = 3840, 2160


@dataclass
class Clip:
    images: np.ndarray  # (N, H, W, 3) uint8
    alpha: np.ndarray  # (N, H, W) float32


def small_subject_clip(seed: int, frames: int, subject_height: int) -> Clip:
    """A scene rendered ``subject_height / 0.6`` lines high (its subject is 0.6 of that), placed into a 4K
    frame at a position that drifts across it, over the scene's background scaled to 4K."""
    scale_h = int(subject_height / 0.6)
    scene = SyntheticScene(seed, max(frames, 8), scale_h, scale_h * 16 // 9)
    images, alphas = [], []
    for t in range(frames):
        small = scene.render(t)
        background = cv2.resize(small.background, (WIDTH, HEIGHT), interpolation=cv2.INTER_CUBIC)
        # the subject's part of the small frame: where the small frame's alpha is
        x = int(0.15 * WIDTH + t * 0.01 * WIDTH)
        y = int(0.4 * HEIGHT + 0.03 * HEIGHT * np.sin(t / 3))
        h, w = small.alpha.shape
        alpha = np.zeros((HEIGHT, WIDTH), np.float32)
        alpha[y:y + h, x:x + w] = small.alpha
        fg = np.zeros((HEIGHT, WIDTH, 3), np.float32)
        fg[y:y + h, x:x + w] = small.foreground
        image = alpha[..., None] * fg + (1 - alpha[..., None]) * background
        noise = np.random.default_rng([seed, t]).normal(0, 2.0, (HEIGHT, WIDTH, 1)).astype(np.float32)
        images.append(np.clip(image * 255 + noise + 0.5, 0, 255).astype(np.uint8))
        alphas.append(alpha)
    return Clip(np.stack(images), np.stack(alphas))


def edge_scores(pred: np.ndarray, true: np.ndarray) -> tuple[float, float]:
    """MAD on the edge band, gradient error over the subject's bounding box (padded 16 px)."""
    band = ((true > 0.002) & (true < 0.998)).astype(np.uint8)
    band = cv2.dilate(band, np.ones((7, 7), np.uint8)).astype(bool)
    ys, xs = np.nonzero(true > 0.002)
    y0, y1 = max(0, ys.min() - 16), min(true.shape[0], ys.max() + 17)
    x0, x1 = max(0, xs.min() - 16), min(true.shape[1], xs.max() + 17)
    return mad(pred[band], true[band]), gradient_error(pred[y0:y1, x0:x1], true[y0:y1, x0:x1])


def run(backend: LocalBackend, clip: Clip, batch: int, track: TrackSettings | None) -> tuple[np.ndarray, float]:
    """Alpha (float) of every frame and seconds per frame of matting."""
    batches = [FrameBatch(i, clip.images[i:i + batch], [None] * len(clip.images[i:i + batch]), Fraction(1, 25))
               for i in range(0, len(clip.images), batch)]
    pairs = track_requests(batches, track) if track else ((b, b.images) for b in batches)
    started = time.perf_counter()
    out = [r.alpha if isinstance(r, RegionAlpha) else r for _, r in backend.matte(pairs)]
    seconds = (time.perf_counter() - started) / len(clip.images)
    return np.concatenate(out).astype(np.float32) / 255.0, seconds


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="demo")
    parser.add_argument("--resolution", type=int, default=512)
    parser.add_argument("--coarse", type=int, default=256)
    parser.add_argument("--frames", type=int, default=6)
    parser.add_argument("--batch-size", type=int, default=3)
    parser.add_argument("--subject-height", type=int, default=540, help="subject height in 4K lines")
    parser.add_argument("--seeds", type=int, nargs="+", default=[101, 202])
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    track = TrackSettings(coarse_resolution=args.coarse, radius=2)
    print(f"# roi benchmark: {platform.processor() or platform.machine()}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads; model {args.model} at {args.resolution}, coarse {args.coarse}, "
          f"{args.frames} frames x {len(args.seeds)} clips at {WIDTH}x{HEIGHT}, subject {args.subject_height} lines")
    rows = {"full frame": [], "roi auto": []}
    with LocalBackend(PredictorSpec(args.model, "fp32", args.resolution)) as backend:
        for seed in args.seeds:
            clip = small_subject_clip(seed, args.frames, args.subject_height)
            for name, settings in (("full frame", None), ("roi auto", track)):
                alpha, seconds = run(backend, clip, args.batch_size, settings)
                scores = [edge_scores(a, t) for a, t in zip(alpha, clip.alpha, strict=True)]
                rows[name].append((np.mean([s[0] for s in scores]), np.mean([s[1] for s in scores]), seconds))
                print(f"seed {seed} {name}: edge MAD {rows[name][-1][0]:.4f}, grad {rows[name][-1][1]:.1f}, "
                      f"{seconds:.2f} s/frame", flush=True)
    full, roi = (np.mean(rows[k], axis=0) for k in ("full frame", "roi auto"))
    print("| | edge MAD | edge gradient error | s/frame |\n|---|---|---|---|")
    for name, (m, g, s) in (("full frame", full), ("roi auto", roi)):
        print(f"| {name} | {m:.4f} | {g:.1f} | {s:.2f} |")
    print(f"gradient error {1 - roi[1] / full[1]:+.0%} lower with ROI (target >= 30%), MAD {1 - roi[0] / full[0]:+.0%} "
          f"lower, time x{roi[2] / full[2]:.2f} (target <= 1.3)")


if __name__ == "__main__":
    main()
