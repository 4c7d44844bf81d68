"""The unit of data that flows through the pipeline: a batch of consecutive decoded frames."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import numpy as np


@dataclass
class FrameBatch:
    """Consecutive frames of one source, in presentation order.

    ``images`` is (N, H, W, 3) RGB, uint8 (or uint16 on the 16-bit path). ``pts`` holds each frame's
    presentation timestamp in ``time_base`` units (None where the container gave none), so sinks can
    write every output frame at its input time. ``index`` is the source-wide index of the first frame.
    The matting stage's alpha travels beside the batch, not in it.
    """

    index: int
    images: np.ndarray
    pts: list[int | None]
    time_base: Fraction

    def __len__(self) -> int:
        return int(self.images.shape[0])

    @property
    def stop(self) -> int:
        """Index one past the last frame of the batch."""
        return self.index + len(self)
