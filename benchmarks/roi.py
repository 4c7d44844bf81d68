"""Subject-tracking crops (``--roi auto``) against whole frames: edge quality and time on 4K clips.

Clips: subjects with hair-like strands (``birefnet.train.scenes``) rendered small, then composited at
a moving position into a 3840x2160 frame over the scene's own background scaled up, so the truth is
exact at 4K and the subject fills a small part of the frame. The same model at the same working
resolution mattes every frame twice through the matting workers, as the pipeline's matting stage does:
whole frames; *oracle* boxes (each subject's exact bounding box plus the default 10% margin, as
``--boxes`` from a perfect tracker would give); and ``--roi auto`` (coarse pass + crop pass) as the
CLI runs it for that model (the subject spans at most the model pixels the model learned from,
``birefnet.registry``: 192 for demo) and, with ``--subject-pixels N``, once more with that limit set
to N (0: none). ``--subjects 2`` puts a second subject into the frame, half the frame away, and runs
``--roi auto`` once more with one crop for both (``--roi-subjects 1``); ``--live`` also runs the
webcam's causal tracker (``webcam --roi auto``), every frame through the live engine in turn. Measured
on the subjects' edges (the band where the true alpha is neither 0 nor 1, grown by a few pixels):
MAD, and the gradient error over the subjects' bounding box (``birefnet.metrics``); and seconds per
frame of matting.

    python -m benchmarks.roi --frames 6 --resolution 512 --coarse 256 --subject-pixels 192
    python -m benchmarks.roi --frames 8 --resolution 384 --coarse 192 --subjects 2 --live
"""

from __future__ import annotations

import argparse
import platform
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from fractions import Fraction

import cv2
import numpy as np
import torch

from birefnet.boxes import DEFAULT_MARGIN, region_of
from birefnet.live_tracking import LiveTracker
from birefnet.metrics import gradient_error, mad
from birefnet.predictor import Predictor
from birefnet.registry import subject_pixels_of
from birefnet.tracking import TrackSettings
from birefnet.train.scenes import SyntheticScene
from birefnet.upsampling import UPSAMPLING_MODES
from pipeline.frames import FrameBatch
from pipeline.roi.requests import track_requests
from pipeline.webcam.engine import Engine
from workers.base import MattingBackend
from workers.local import LocalBackend
from workers.matting import PredictorSpec
from workers.payload import Images, RegionAlpha, RegionRequest

WIDTH, HEIGHT = 3840, 2160


@dataclass
class Clip:
    images: np.ndarray  # (N, H, W, 3) uint8
    alpha: np.ndarray  # (N, H, W) float32
    boxes: list[list[tuple[int, int, int, int]]]  # per frame, each subject's exact box (alpha above 0), pixels


def small_subject_clip(seed: int, frames: int, subject_height: int, subjects: int = 1) -> Clip:
    """``subjects`` scenes (seeds ``seed``, ``seed + 1000``, ...) each rendered ``subject_height / 0.6``
    lines high (its subject is 0.6 of that), placed into a 4K frame at a position that drifts across it
    (the second from the right, drifting left, higher up), over the first scene's background scaled to 4K."""
    scale_h = int(subject_height / 0.6)
    scenes = [SyntheticScene(seed + 1000 * k, max(frames, 8), scale_h, scale_h * 16 // 9) for k in range(subjects)]
    images, alphas, boxes = [], [], []
    for t in range(frames):
        rendered = [scene.render(t) for scene in scenes]
        boxes.append([])
        image = cv2.resize(rendered[0].background, (WIDTH, HEIGHT), interpolation=cv2.INTER_CUBIC)
        alpha = np.zeros((HEIGHT, WIDTH), np.float32)
        for k, small in enumerate(rendered):
            if k == 0:
                x, y = int(0.15 * WIDTH + t * 0.01 * WIDTH), int(0.4 * HEIGHT + 0.03 * HEIGHT * np.sin(t / 3))
            else:
                x, y = int((0.55 + 0.1 * k) * WIDTH - t * 0.01 * WIDTH), int(0.05 * HEIGHT)
            h, w = small.alpha.shape
            w = min(w, WIDTH - x)
            part = np.zeros((HEIGHT, WIDTH, 1), np.float32)
            part[y:y + h, x:x + w, 0] = small.alpha[:h, :w]
            fg = np.zeros((HEIGHT, WIDTH, 3), np.float32)
            fg[y:y + h, x:x + w] = small.foreground[:h, :w]
            image = part * fg + (1 - part) * image  # each subject over what is behind it
            ys, xs = np.nonzero(part[..., 0] > 0)
            boxes[-1].append((int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1))
            alpha = 1 - (1 - part[..., 0]) * (1 - alpha)
        noise = np.random.default_rng([seed, t]).normal(0, 2.0, (HEIGHT, WIDTH, 1)).astype(np.float32)
        images.append(np.clip(image * 255 + noise + 0.5, 0, 255).astype(np.uint8))
        alphas.append(alpha)
    return Clip(np.stack(images), np.stack(alphas), boxes)


def edge_scores(pred: np.ndarray, true: np.ndarray) -> tuple[float, float]:
    """MAD on the edge band, gradient error over the subject's bounding box (padded 16 px)."""
    band = ((true > 0.002) & (true < 0.998)).astype(np.uint8)
    band = cv2.dilate(band, np.ones((7, 7), np.uint8)).astype(bool)
    ys, xs = np.nonzero(true > 0.002)
    y0, y1 = max(0, ys.min() - 16), min(true.shape[0], ys.max() + 17)
    x0, x1 = max(0, xs.min() - 16), min(true.shape[1], xs.max() + 17)
    return mad(pred[band], true[band]), gradient_error(pred[y0:y1, x0:x1], true[y0:y1, x0:x1])


Requests = Callable[[list[FrameBatch], Clip], Iterable[tuple[FrameBatch, Images]]]


def whole_frames(batches: list[FrameBatch], clip: Clip) -> Iterator[tuple[FrameBatch, Images]]:
    return ((b, b.images) for b in batches)


def oracle_boxes(batches: list[FrameBatch], clip: Clip) -> Iterator[tuple[FrameBatch, Images]]:
    """Each frame's exact subject boxes (alpha above 0) plus the default margin, as given boxes."""
    height, width = clip.alpha.shape[1:]
    for batch in batches:
        boxes = [np.array([region_of(box, height, width, DEFAULT_MARGIN) for box in frame_boxes])
                 for frame_boxes in clip.boxes[batch.index:batch.index + len(batch)]]
        yield batch, RegionRequest(batch.images, boxes=boxes)


def tracked(settings: TrackSettings) -> Requests:
    return lambda batches, clip: track_requests(batches, settings)


def run(backend: MattingBackend, clip: Clip, batch: int, requests: Requests) -> tuple[np.ndarray, float]:
    """Alpha (float) of every frame and seconds per frame of matting."""
    batches = [FrameBatch(i, clip.images[i:i + batch], [None] * len(clip.images[i:i + batch]), Fraction(1, 25))
               for i in range(0, len(clip.images), batch)]
    pairs = requests(batches, clip)
    started = time.perf_counter()
    out = [r.alpha if isinstance(r, RegionAlpha) else r for _, r in backend.matte(pairs)]
    seconds = (time.perf_counter() - started) / len(clip.images)
    return np.concatenate(out).astype(np.float32) / 255.0, seconds


def run_live(predictor: Predictor, clip: Clip, track: TrackSettings) -> tuple[np.ndarray, float]:
    """``webcam --roi auto``: every frame through the live engine in turn (none dropped), its crops from
    the frames before it; alpha of every frame and seconds per frame."""
    engine = Engine(predictor, tracker=LiveTracker(track))
    started = time.perf_counter()
    alphas = engine.matte_in_turn(clip.images, timeout=600)
    print(f"  live: {engine.report()['roi_frames_rematted']} frame(s) matted again whole", flush=True)
    return alphas, (time.perf_counter() - started) / len(clip.images)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="demo")
    parser.add_argument("--resolution", type=int, default=512)
    parser.add_argument("--coarse", type=int, default=256)
    parser.add_argument("--frames", type=int, default=6)
    parser.add_argument("--batch-size", type=int, default=3)
    parser.add_argument("--subject-height", type=int, default=540, help="subject height in 4K lines")
    parser.add_argument("--live", action="store_true", help="also run the webcam's causal tracker (webcam --roi auto)")
    parser.add_argument("--subjects", type=int, default=1,
                        help="subjects per clip, apart; above 1 also runs roi auto with one crop for them all")
    parser.add_argument("--seeds", type=int, nargs="+", default=[101, 202])
    parser.add_argument("--upsample", choices=UPSAMPLING_MODES, default="guided",
                        help="how the matte comes back to the frame (birefnet.upsampling)")
    parser.add_argument("--subject-pixels", type=int, default=None,
                        help="also run --roi auto with the subject at most N model pixels across (0: no limit)")
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    track = TrackSettings(coarse_resolution=args.coarse, radius=2, subject_pixels=subject_pixels_of(args.model))
    variants: dict[str, Requests] = {"full frame": whole_frames, "oracle box": oracle_boxes, "roi auto": tracked(track)}
    spec = PredictorSpec(args.model, "fp32", args.resolution, upsample=args.upsample)
    if args.subject_pixels is not None:
        variants[f"roi auto, subject <= {args.subject_pixels or 'any'} px"] = tracked(
            replace(track, subject_pixels=args.subject_pixels or None))
    if args.subjects > 1:
        variants["roi auto, one crop"] = tracked(replace(track, max_subjects=1))
    print(f"# roi benchmark: {platform.processor() or platform.machine()}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads; model {args.model} at {args.resolution}, coarse {args.coarse}, "
          f"{args.frames} frames x {len(args.seeds)} clips at {WIDTH}x{HEIGHT}, {args.subjects} subject(s) "
          f"{args.subject_height} lines; {args.upsample} upsampling; "
          f"roi auto: subject <= {track.subject_pixels or 'any'} model px")
    with LocalBackend(spec) as backend:
        runs: dict[str, Callable[[Clip], tuple[np.ndarray, float]]] = {
            name: (lambda clip, r=requests: run(backend, clip, args.batch_size, r))
            for name, requests in variants.items()}
        if args.live:
            live = spec("cpu")
            runs["roi live (webcam)"] = lambda clip: run_live(live, clip, track)
        rows: dict[str, list[tuple[float, float, float]]] = {name: [] for name in runs}
        for seed in args.seeds:
            clip = small_subject_clip(seed, args.frames, args.subject_height, args.subjects)
            for name, matte in runs.items():
                alpha, seconds = matte(clip)
                scores = [edge_scores(a, t) for a, t in zip(alpha, clip.alpha, strict=True)]
                rows[name].append((float(np.mean([s[0] for s in scores])), float(np.mean([s[1] for s in scores])),
                                   seconds))
                print(f"seed {seed} {name}: edge MAD {rows[name][-1][0]:.4f}, grad {rows[name][-1][1]:.1f}, "
                      f"{seconds:.2f} s/frame", flush=True)
    means = {name: np.mean(values, axis=0) for name, values in rows.items()}
    full = means["full frame"]
    print("| | edge MAD | edge gradient error | s/frame |\n|---|---|---|---|")
    for name, (m, g, s) in means.items():
        print(f"| {name} | {m:.4f} | {g:.1f} | {s:.2f} |")
    for name, (m, g, s) in means.items():
        if name != "full frame":
            per_seed = ", ".join(f"{1 - r[1] / f[1]:+.0%}" for r, f in zip(rows[name], rows["full frame"], strict=True))
            print(f"{name}: gradient error {1 - g / full[1]:+.0%} lower (target >= 30%; per seed {per_seed}), "
                  f"MAD {1 - m / full[0]:+.0%} lower, time x{s / full[2]:.2f} (target <= 1.3)")


if __name__ == "__main__":
    main()
