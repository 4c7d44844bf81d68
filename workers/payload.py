"""What travels with a batch besides its frames: boxes or a tracking window in, alpha with its crops out.

A backend hands each batch's images to a worker as they come: a plain array (N, H, W, 3), or a
``RegionRequest`` for box-guided matting; the worker's answer is then a ``RegionAlpha``. Both are
small picklable dataclasses of arrays, so they cross to Ray actors as they are.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from birefnet.boxes import Region
from birefnet.tracking import TrackSettings


@dataclass(frozen=True)
class TrackWindow:
    """What a worker needs to find the subject in a batch: thumbnails (M, h, w, 3) uint8 of the batch's
    frames and of up to ``settings.radius`` frames either side, each frame's shot number (M,), and where
    the batch's frames start among them."""

    thumbnails: np.ndarray
    shots: np.ndarray
    first: int
    settings: TrackSettings


@dataclass(frozen=True)
class RegionRequest:
    """Frames (N, H, W, 3) to matte inside boxes: ``boxes`` per frame ((K, 4) pixels, the margin already
    in them), or found by ``track``."""

    images: np.ndarray
    boxes: list[np.ndarray] | None = None
    track: TrackWindow | None = None

    def __len__(self) -> int:
        return len(self.images)


@dataclass(frozen=True)
class RegionAlpha:
    """Alpha (N, H, W) of a ``RegionRequest``, with per frame the crops it came from (pixel regions) and the
    model pixels each pixel inside them got (``model_scale``; 0 for a frame without crops), and the same
    for the whole frame (``full_scale``)."""

    alpha: np.ndarray
    regions: list[list[Region]]
    model_scale: np.ndarray
    full_scale: float

    def __len__(self) -> int:
        return len(self.alpha)


Images = np.ndarray | RegionRequest  # what a batch hands to the workers
Alpha = np.ndarray | RegionAlpha  # what comes back


def owned(alpha: Alpha) -> Alpha:
    """``alpha`` in memory of its own: a read-only array (a view into Ray's object store) is copied."""
    if isinstance(alpha, RegionAlpha):
        return alpha if alpha.alpha.flags.writeable else replace(alpha, alpha=alpha.alpha.copy())
    return alpha if alpha.flags.writeable else alpha.copy()
