"""Training and validation samples rendered from synthetic scenes (``scenes``).

Each training sample is a frame of a fresh random scene (textured subject with hair strands and a
veil, a soft-edged ball, textured backgrounds) rendered at a random scale and aspect, with exact alpha.
Scene seeds of training samples are drawn at or above ``TRAIN_SEED_FLOOR``; validation and the demo use
small seeds, so they are never seen in training.
"""

from __future__ import annotations

import numpy as np
from torch import Tensor
from torch.utils.data import Dataset

from .augment import Augmenter, resize_pair
from .data import to_tensors
from .scenes import SyntheticScene

TRAIN_SEED_FLOOR = 1_000_000
SCENE_FRAMES = 40


class SyntheticMattingDataset(Dataset):
    """``length`` samples per epoch, each a function of (seed, epoch, index) only.

    With an augmenter (training) the scene is rendered at ``render_scale`` (a range) times the crop height
    with a random aspect ratio (its strands are sub-pixel at any size, so the scale sets how fine they
    get), and with ``background_prob`` the subject is moved onto the scene's other background (exact
    foreground, exact composite). Without one (validation) the samples are frames spread evenly over
    held-out scene ``seed``, rendered at the middle of ``render_scale`` and taken down to ``size``, so
    validation sees strands as fine as training does.
    """

    def __init__(self, seed: int, length: int, size: tuple[int, int], augmenter: Augmenter | None = None,
                 render_scale: tuple[float, float] = (1.0, 2.0)) -> None:
        self.seed, self.length, self.size, self.augmenter = seed, length, size, augmenter
        self.render_scale = render_scale
        self.epoch = 0
        self._validation_scene = None
        if augmenter is None:
            scale = sum(render_scale) / 2
            self._validation_scene = SyntheticScene(seed, SCENE_FRAMES, round(size[1] * scale), round(size[0] * scale))

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        if self.augmenter is None:
            assert self._validation_scene is not None  # built in __init__ when there is no augmenter
            frame = self._validation_scene.render(index * SCENE_FRAMES // self.length)
            return to_tensors(*resize_pair(frame.image, frame.alpha, self.size))
        rng = np.random.default_rng([self.seed, self.epoch, index])
        out_w, out_h = self.size
        height = int(rng.uniform(*self.render_scale) * out_h)
        width = max(out_w, int(height * rng.uniform(1.0, 16 / 9)))
        scene = SyntheticScene(int(rng.integers(TRAIN_SEED_FLOOR, 2**31 - 1)), SCENE_FRAMES, height, width)
        t = int(rng.integers(SCENE_FRAMES))
        frame = scene.render(t)
        background = None
        if self.augmenter.config.background_prob > 0 and scene.cuts:
            cut = scene.cuts[0]
            other = int(rng.integers(cut, SCENE_FRAMES)) if t < cut else int(rng.integers(0, cut))
            background = (scene.render(other).background * 255.0 + 0.5).astype(np.uint8)
        image, alpha = self.augmenter(rng, frame.image, frame.alpha, frame.foreground, background)
        return to_tensors(image, alpha)
