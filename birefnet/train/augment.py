"""Training augmentation on numpy pairs: background replacement, random crop/resize, flip, colour jitter.

Every random choice comes from the ``numpy.random.Generator`` passed in, so a sample is a function of
(seed, epoch, index) and a resumed run sees exactly the batches the interrupted one would have seen.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class AugmentConfig:
    size: tuple[int, int] = (512, 512)  # (W, H) of the training crops; multiples of 32
    crop_scale: tuple[float, float] = (0.35, 1.0)  # fraction of the image area a crop keeps
    flip: bool = True
    jitter: float = 0.2  # brightness / contrast / saturation amplitude; 0 disables
    background_prob: float = 0.0  # matting data: chance of compositing the subject over another background


def replace_background(image: np.ndarray, alpha: np.ndarray, background: np.ndarray,
                       foreground: np.ndarray | None = None) -> np.ndarray:
    """Composite over ``background`` (uint8, any size). Without the true foreground the image itself
    stands in for it, which keeps a little of the old background in soft edges."""
    h, w = alpha.shape
    if background.shape[:2] != (h, w):
        background = cv2.resize(background, (w, h), interpolation=cv2.INTER_LINEAR)
    fg = foreground * 255.0 if foreground is not None else image.astype(np.float32)
    a = alpha[..., None]
    return np.clip(a * fg + (1.0 - a) * background.astype(np.float32) + 0.5, 0, 255).astype(np.uint8)


def random_resized_crop(rng: np.random.Generator, image: np.ndarray, alpha: np.ndarray,
                        size: tuple[int, int], scale: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
    """A random crop of ``scale`` of the area at the output's aspect ratio, resized to ``size`` (W, H)."""
    h, w = alpha.shape
    out_w, out_h = size
    area = rng.uniform(*scale) * h * w
    crop_h = int(round(min(h, np.sqrt(area * out_h / out_w))))
    crop_w = int(round(min(w, crop_h * out_w / out_h)))
    y = int(rng.integers(0, h - crop_h + 1))
    x = int(rng.integers(0, w - crop_w + 1))
    image, alpha = image[y:y + crop_h, x:x + crop_w], alpha[y:y + crop_h, x:x + crop_w]
    shrinking = crop_w > out_w
    interp = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
    return cv2.resize(image, size, interpolation=interp), cv2.resize(alpha, size, interpolation=interp)


def colour_jitter(rng: np.random.Generator, image: np.ndarray, amount: float) -> np.ndarray:
    """Random brightness, contrast and saturation, each scaled by 1 +- ``amount``."""
    x = image.astype(np.float32)
    brightness, contrast, saturation = rng.uniform(1 - amount, 1 + amount, 3)
    grey = x.mean(axis=2, keepdims=True)
    x = grey + (x - grey) * saturation
    x = (x - x.mean()) * contrast + x.mean()
    return np.clip(x * brightness + 0.5, 0, 255).astype(np.uint8)


class Augmenter:
    """Turns one (image, alpha) pair into a training crop of ``config.size``."""

    def __init__(self, config: AugmentConfig) -> None:
        self.config = config

    def __call__(self, rng: np.random.Generator, image: np.ndarray, alpha: np.ndarray,
                 foreground: np.ndarray | None = None,
                 background: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        c = self.config
        if background is not None and rng.random() < c.background_prob:
            image = replace_background(image, alpha, background, foreground)
        image, alpha = random_resized_crop(rng, image, alpha, c.size, c.crop_scale)
        if c.flip and rng.random() < 0.5:
            image, alpha = image[:, ::-1], alpha[:, ::-1]
        if c.jitter:
            image = colour_jitter(rng, image, c.jitter)
        return np.ascontiguousarray(image), np.ascontiguousarray(alpha)


def resize_pair(image: np.ndarray, alpha: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Validation: the whole image at ``size`` (W, H), no randomness."""
    if image.shape[1::-1] == tuple(size):
        return image, alpha
    return (cv2.resize(image, size, interpolation=cv2.INTER_AREA),
            cv2.resize(alpha, size, interpolation=cv2.INTER_AREA))
