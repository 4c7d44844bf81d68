"""Synthetic video clips with exact ground-truth alpha, and a simulator of per-frame matting flicker.

Lets temporal smoothing and compositing be measured without footage or a trained model. The clips are
scenes of ``birefnet.train.scenes`` (two shots, a pan, fast motion, an object entering and leaving, a
hard cut), the very renderer the demo model is trained on; every value is a function of the seed.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from birefnet.train.scenes import SyntheticScene


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


class FlickerSimulator:
    """Turns ground-truth alpha into plausible per-frame predictions of a single-image matting model.

    Independently per frame: the boundary is displaced by a smooth random field (``jitter_px`` pixels at
    1080 lines, scaled with the height), soft regions get smooth noise (``soft_noise``), and with
    probability ``dropout_prob`` thin structures fade out in a random region. Deterministic in
    (seed, frame index).
    """

    def __init__(self, seed: int = 0, jitter_px: float = 1.5, soft_noise: float = 0.12, dropout_prob: float = 0.2):
        self.seed, self.jitter_px, self.soft_noise, self.dropout_prob = seed, jitter_px, soft_noise, dropout_prob

    @staticmethod
    def _smooth_field(rng: np.random.Generator, cells: tuple[int, int], size: tuple[int, int]) -> np.ndarray:
        coarse = rng.standard_normal(cells).astype(np.float32)
        return cv2.resize(coarse, size, interpolation=cv2.INTER_CUBIC)

    def predict(self, alpha: np.ndarray, index: int) -> np.ndarray:
        """The simulated prediction for ground truth ``alpha`` (H, W) of frame ``index``."""
        h, w = alpha.shape
        rng = np.random.default_rng([self.seed, index, 7])
        scale = h / 1080
        cells = (max(2, h // 60), max(2, w // 60))
        dx = self._smooth_field(rng, cells, (w, h)) * (self.jitter_px * scale)
        dy = self._smooth_field(rng, cells, (w, h)) * (self.jitter_px * scale)
        grid_x, grid_y = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
        pred = cv2.remap(alpha, grid_x + dx, grid_y + dy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        soft = ((alpha > 0.01) & (alpha < 0.99)).astype(np.uint8)
        radius = max(1, int(round(2 * scale)))
        soft = cv2.dilate(soft, np.ones((2 * radius + 1,) * 2, np.uint8)).astype(np.float32)
        noise = self._smooth_field(rng, (max(2, h // 8), max(2, w // 8)), (w, h))
        pred = pred + self.soft_noise * noise * soft
        if rng.random() < self.dropout_prob:
            kernel = np.ones((2 * radius + 3,) * 2, np.uint8)
            thin = np.clip(alpha - cv2.morphologyEx(alpha, cv2.MORPH_OPEN, kernel), 0.0, 1.0)
            region = self._smooth_field(rng, (3, 3), (w, h)) > 0.3
            pred = pred - thin * region * rng.uniform(0.6, 1.0)
        return np.clip(pred, 0.0, 1.0).astype(np.float32)

    def predict_batch(self, alphas: np.ndarray, start_index: int) -> np.ndarray:
        """Predictions for consecutive frames (N, H, W) whose first is frame ``start_index``."""
        return np.stack([self.predict(a, start_index + i) for i, a in enumerate(alphas)])
