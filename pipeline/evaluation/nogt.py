"""Scores on the real clips themselves, where there is no ground truth.

The per-frame alphas are the demo model's (``network``); a smoother is judged by two numbers that
pull against each other: ``still_flicker`` (alpha change where the image is still: what a viewer sees
as shimmer) and ``departure`` (how far the smoothed matte moved from the per-frame one), so a smoother
that blurs everything over time cannot win by flicker alone.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from pipeline.evaluation.backgrounds import REAL_CLIPS, decoded_clip
from pipeline.evaluation.network import network_predictions
from pipeline.evaluation.runner import cpu_threads, smooth_clip
from pipeline.metrics import departure, still_flicker
from pipeline.temporal.smoother import TemporalSmoother


@dataclass
class RealClip:
    """Frames of a real clip (N, H, W, 3) uint8 and the demo model's per-frame alphas (N, H, W)."""

    name: str
    images: np.ndarray
    per_frame: np.ndarray


@dataclass
class NoTruthRow:
    """Still-image flicker x1e3 of the smoothed matte, its departure x1e3 from the per-frame one, ms/frame."""

    clip: str
    size: str
    frames: int
    still_flicker_x1e3: float
    departure_x1e3: float
    ms_per_frame: float


def real_clip(name: str, frames: int | None = None, height: int | None = None) -> RealClip:
    """The first ``frames`` of real clip ``name`` (all when None), scaled to ``height`` lines (None: as
    decoded), with the demo model's alphas (computed once, then cached)."""
    images = np.array(decoded_clip(name)[:frames])  # a writable copy: the model's input must not alias the cache
    if height is not None and height != images.shape[1]:
        width = max(16, round(images.shape[2] * height / images.shape[1]))
        images = np.stack([cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA) for image in images])
    h, w = images.shape[1:3]
    return RealClip(name, images, network_predictions(images, f"real-{name}-{w}x{h}-{len(images)}"))


def real_clips(frames: int | None = None, height: int | None = None) -> list[RealClip]:
    """Every real clip of ``backgrounds.REAL_CLIPS``."""
    return [real_clip(name, frames, height) for name in REAL_CLIPS]


def evaluate_without_truth(make_smoother: Callable[[], TemporalSmoother], clips: Sequence[RealClip], *,
                           batch: int = 8, threads: int | None = 1) -> list[NoTruthRow]:
    """One row per clip: a fresh ``make_smoother()`` over its per-frame alphas, scored without ground truth."""
    rows = []
    for clip in clips:
        with cpu_threads(threads):
            smoothed, ms = smooth_clip(make_smoother(), clip.images, clip.per_frame, batch)
        h, w = clip.images.shape[1:3]
        rows.append(NoTruthRow(clip.name, f"{w}x{h}", len(clip.images), still_flicker(clip.images, smoothed) * 1e3,
                               departure(smoothed, clip.per_frame) * 1e3, ms))
    return rows
