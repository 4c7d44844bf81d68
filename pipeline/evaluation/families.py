"""Flicker families: generators that turn an exact alpha into the per-frame errors of one kind of failure.

Each family is one way a single-image matting model goes wrong from frame to frame, so a smoother
tuned on some of them can be judged on the others:

* ``jitter``     - the whole matte shifted by a sub-pixel amount the image does not move by;
* ``soft_noise`` - smooth noise in and around the soft (semi-transparent) regions;
* ``dropout``    - semi-transparent parts (strands, veils, halos) fading out in a region, now and then;
* ``boundary``   - the matte eroded or dilated by a fraction of a pixel to a few pixels, per frame;
* ``gain``       - the whole matte scaled by a per-frame gain (confidence drifting up and down);
* ``mixed``      - the three-way mix of ``FlickerSimulator`` (a smooth displacement field, soft noise,
  thin structures dropping out), the simulator the smoother's defaults were first tuned on.

The errors of a real network are the ``network`` family of ``pipeline.evaluation.network``. Every
generator is a function of (seed, frame index) alone, so the same seed gives the same bytes; pixel
amounts are given at 1080 lines and scale with the frame's height.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

SOFT_LOW, SOFT_HIGH = 0.01, 0.99  # alpha strictly between these is semi-transparent


def smooth_field(rng: np.random.Generator, cells: tuple[int, int], size: tuple[int, int]) -> np.ndarray:
    """Unit-variance noise on a coarse grid of ``cells`` (rows, columns), upsampled smoothly to ``size`` (w, h)."""
    coarse = rng.standard_normal(cells).astype(np.float32)
    return cv2.resize(coarse, size, interpolation=cv2.INTER_CUBIC)


def soft_mask(alpha: np.ndarray) -> np.ndarray:
    """1.0 where ``alpha`` is semi-transparent, else 0.0."""
    return ((alpha > SOFT_LOW) & (alpha < SOFT_HIGH)).astype(np.float32)


def soft_band(alpha: np.ndarray, radius: int) -> np.ndarray:
    """The semi-transparent pixels grown by ``radius``: where a model's soft-region errors live."""
    grown = cv2.dilate(soft_mask(alpha).astype(np.uint8), np.ones((2 * radius + 1,) * 2, np.uint8))
    return grown.astype(np.float32)


def soft_noise(alpha: np.ndarray, rng: np.random.Generator, amplitude: float, radius: int) -> np.ndarray:
    """Additive smooth noise (about 8-pixel grain) confined to the soft band of ``alpha``."""
    h, w = alpha.shape
    return amplitude * smooth_field(rng, (max(2, h // 8), max(2, w // 8)), (w, h)) * soft_band(alpha, radius)


def thin_parts(alpha: np.ndarray, radius: int) -> np.ndarray:
    """What a morphological opening of ``2 * radius + 3`` pixels removes: strands and other thin structures."""
    kernel = np.ones((2 * radius + 3,) * 2, np.uint8)
    return np.clip(alpha - cv2.morphologyEx(alpha, cv2.MORPH_OPEN, kernel), 0.0, 1.0)


def _rng(seed: int, index: int, salt: int) -> np.random.Generator:
    return np.random.default_rng([seed, index, salt])


@dataclass
class Flicker:
    """Base of the families: a subclass's ``perturb(alpha, index)`` is frame ``index``'s error applied to the
    exact ``alpha`` (H, W), before clipping."""

    seed: int = 0

    def perturb(self, alpha: np.ndarray, index: int) -> np.ndarray:
        raise NotImplementedError

    def predict(self, alpha: np.ndarray, index: int) -> np.ndarray:
        """The simulated prediction for ground truth ``alpha`` (H, W) of frame ``index``: float32 in [0, 1]."""
        return np.clip(self.perturb(alpha, index), 0.0, 1.0).astype(np.float32)

    def predict_batch(self, alphas: np.ndarray, start_index: int = 0) -> np.ndarray:
        """Predictions for consecutive frames (N, H, W) whose first is frame ``start_index``."""
        return np.stack([self.predict(a, start_index + i) for i, a in enumerate(alphas)])


@dataclass
class MatteJitter(Flicker):
    """The whole matte translated by up to ``shift_px`` in x and y (uniform, independent per frame)."""

    shift_px: float = 1.0

    def perturb(self, alpha: np.ndarray, index: int) -> np.ndarray:
        h, w = alpha.shape
        dx, dy = _rng(self.seed, index, 11).uniform(-1.0, 1.0, 2) * self.shift_px * h / 1080
        matrix = np.array([[1, 0, dx], [0, 1, dy]], np.float32)
        return cv2.warpAffine(alpha, matrix, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


@dataclass
class SoftNoise(Flicker):
    """Smooth noise of ``amplitude`` (standard deviation) over the soft band (2 px at 1080 lines)."""

    amplitude: float = 0.15

    def perturb(self, alpha: np.ndarray, index: int) -> np.ndarray:
        radius = max(1, round(2 * alpha.shape[0] / 1080))
        return alpha + soft_noise(alpha, _rng(self.seed, index, 12), self.amplitude, radius)


@dataclass
class SoftDropout(Flicker):
    """With probability ``probability`` per frame, semi-transparent alpha loses 50-100% of its value in a
    random smooth region (about a third of the frame); opaque and empty pixels are never touched."""

    probability: float = 0.35

    def perturb(self, alpha: np.ndarray, index: int) -> np.ndarray:
        rng = _rng(self.seed, index, 13)
        if rng.random() >= self.probability:
            return alpha.copy()
        h, w = alpha.shape
        region = (smooth_field(rng, (3, 3), (w, h)) > 0.3).astype(np.float32)
        return alpha * (1.0 - soft_mask(alpha) * region * rng.uniform(0.5, 1.0))


@dataclass
class BoundaryFlicker(Flicker):
    """The matte eroded or dilated by a random radius in [-``radius_px``, ``radius_px``] per frame (a
    fractional radius blends between the two neighbouring whole-pixel results)."""

    radius_px: float = 2.5

    def perturb(self, alpha: np.ndarray, index: int) -> np.ndarray:
        radius = _rng(self.seed, index, 14).uniform(-1.0, 1.0) * self.radius_px * alpha.shape[0] / 1080
        whole = int(np.ceil(abs(radius)))
        if whole == 0:
            return alpha.copy()
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * whole + 1,) * 2)
        morphed = cv2.dilate(alpha, kernel) if radius > 0 else cv2.erode(alpha, kernel)
        return alpha + (abs(radius) / whole) * (morphed - alpha)


@dataclass
class GainFlicker(Flicker):
    """The whole matte times a per-frame gain exp(N(0, ``sigma``)), clipped to [0, 1]."""

    sigma: float = 0.08

    def perturb(self, alpha: np.ndarray, index: int) -> np.ndarray:
        return alpha * float(np.exp(_rng(self.seed, index, 15).normal(0.0, self.sigma)))


@dataclass
class FlickerSimulator(Flicker):
    """The mixed family: plausible per-frame predictions of a single-image matting model.

    Independently per frame: the boundary is displaced by a smooth random field (``jitter_px`` pixels at
    1080 lines), soft regions get smooth noise (``soft_noise``), and with probability ``dropout_prob``
    thin structures fade out in a random region.
    """

    jitter_px: float = 1.5
    soft_noise: float = 0.12
    dropout_prob: float = 0.2

    def perturb(self, alpha: np.ndarray, index: int) -> np.ndarray:
        h, w = alpha.shape
        rng = _rng(self.seed, index, 7)
        scale = h / 1080
        cells = (max(2, h // 60), max(2, w // 60))
        dx = smooth_field(rng, cells, (w, h)) * (self.jitter_px * scale)
        dy = smooth_field(rng, cells, (w, h)) * (self.jitter_px * scale)
        grid_x, grid_y = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
        pred = cv2.remap(alpha, grid_x + dx, grid_y + dy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        radius = max(1, int(round(2 * scale)))
        pred = pred + soft_noise(alpha, rng, self.soft_noise, radius)
        if rng.random() < self.dropout_prob:
            region = smooth_field(rng, (3, 3), (w, h)) > 0.3
            pred = pred - thin_parts(alpha, radius) * region * rng.uniform(0.6, 1.0)
        return pred


FAMILIES: dict[str, Callable[[int], Flicker]] = {
    "jitter": MatteJitter,
    "soft_noise": SoftNoise,
    "dropout": SoftDropout,
    "boundary": BoundaryFlicker,
    "gain": GainFlicker,
    "mixed": FlickerSimulator,
}
"""The synthetic families by name, each built from a seed with its default strength."""
