"""Synthetic video clips with exact ground-truth alpha, and a simulator of per-frame matting flicker.

Lets temporal smoothing and compositing be measured without footage or a trained model. The clips are
scenes of ``birefnet.train.scenes`` (two shots, a pan, fast motion, an object entering and leaving, a
hard cut), the very renderer the demo model is trained on; every value is a function of the seed.
``FlickerSimulator`` is the mixed family of ``pipeline.evaluation.families``, kept importable here.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from birefnet.train.scenes import SyntheticScene
from pipeline.evaluation.families import FlickerSimulator

__all__ = ["FlickerSimulator", "SyntheticScene", "make_clip", "write_clip"]


def make_clip(seed: int, n_frames: int, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """A whole synthetic clip: (frames uint8 (N, H, W, 3), alpha float32 (N, H, W)); ``size`` is (H, W)."""
    return SyntheticScene(seed, n_frames, *size).frames()


def write_clip(path: Path, frames: np.ndarray | Sequence[np.ndarray], fps: int) -> Path:
    """H.264 MP4 of RGB frames (high quality, 4:2:0, untagged like a camera file), through the pipeline's sink."""
    from pipeline.sinks import open_sink
    from pipeline.sources import ArraySource

    source = ArraySource(frames, fps)
    with open_sink(str(path), source.info, output="composite", codec="h264", crf=12, preset="veryfast",
                   audio="drop", overwrite=True, faststart=False) as sink:
        for batch in source.batches(4):
            sink.write(batch, batch.images, None)
    return path
