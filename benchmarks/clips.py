"""Input clips for the benchmarks: synthetic scenes at any size, rendered frame by frame as they are encoded.

A scene is rendered at a modest size and scaled up, so a 4K clip costs about what a 1080p render does
and never sits in memory whole; the content (a figure with hair and a veil moving over a textured
background) decodes and mattes like footage, unlike a flat test pattern.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from birefnet.train.scenes import SyntheticScene
from pipeline.synthetic import write_clip

RENDER_HEIGHT = 540


class ScaledScene(Sequence[np.ndarray]):
    """Frames of ``SyntheticScene(seed)`` at ``width`` x ``height``, each rendered when asked for."""

    def __init__(self, width: int, height: int, frames: int, seed: int = 0):
        scale = min(1.0, RENDER_HEIGHT / height)
        self._scene = SyntheticScene(seed, frames, max(32, round(height * scale)), max(32, round(width * scale)))
        self._size = (width, height)
        self._frames = frames

    def __len__(self) -> int:
        return self._frames

    def __getitem__(self, index: int) -> np.ndarray:  # type: ignore[override]  # ints only, no slices
        if not 0 <= index < self._frames:
            raise IndexError(index)
        rgb = self._scene.render(index).image
        return cv2.resize(rgb, self._size, interpolation=cv2.INTER_LINEAR)


def synthetic_clip(path: Path, width: int, height: int, frames: int, fps: int = 25, seed: int = 0) -> Path:
    """An H.264 MP4 of a synthetic scene, written through the pipeline's own sink."""
    return write_clip(path, ScaledScene(width, height, frames, seed), fps)
