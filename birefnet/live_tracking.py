"""Following the subjects of a live stream, where no frame after the current one may be waited for.

The causal form of ``birefnet.tracking``: the same subjects (``subject_boxes``) and crops
(``frame_crops``), but a frame's crops come from the alpha of the frames before it, each subject
followed with its velocity, and the whole frame matted again when the crops lost it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from .boxes import Box, Region
from .tracking import TrackSettings, crop_region, escapes, frame_crops, match_boxes, subject_boxes


@dataclass(frozen=True)
class _Followed:
    """One subject a ``LiveTracker`` follows: its box's centre, motion per frame and half sizes (fractions)."""

    centre: tuple[float, float]
    velocity: tuple[float, float]
    half: tuple[float, float]
    seen: int = 1

    @staticmethod
    def of(box: Box) -> _Followed:
        return _Followed(((box[0] + box[2]) / 2, (box[1] + box[3]) / 2), (0.0, 0.0),
                         ((box[2] - box[0]) / 2, (box[3] - box[1]) / 2))

    def ahead(self) -> Box:
        """Where the box will be next frame: moved on by the velocity, grown by it on every side."""
        (cx, cy), (vx, vy), (hw, hh) = self.centre, self.velocity, self.half
        cx, cy, hw, hh = cx + vx, cy + vy, hw + abs(vx), hh + abs(vy)
        return cx - hw, cy - hh, cx + hw, cy + hh

    def seen_at(self, box: Box, follow: float) -> _Followed:
        """Followed on to ``box`` (an alpha-beta filter on the centre, gain ``follow``; the second sighting
        sets the velocity outright), the half sizes an exponential mean grown to hold ``box``."""
        measured = _Followed.of(box)
        (mx, my), (cx, cy), (vx, vy) = measured.centre, self.centre, self.velocity
        if self.seen == 1:
            centre, velocity = (mx, my), (mx - cx, my - cy)
        else:
            beta = follow * follow / (2 - follow)
            rx, ry = mx - (cx + vx), my - (cy + vy)  # residual against the prediction
            centre = (cx + vx + follow * rx, cy + vy + follow * ry)
            velocity = (vx + beta * rx, vy + beta * ry)
        half = (max(follow * measured.half[0] + (1 - follow) * self.half[0], abs(mx - centre[0]) + measured.half[0]),
                max(follow * measured.half[1] + (1 - follow) * self.half[1], abs(my - centre[1]) + measured.half[1]))
        return _Followed(centre, velocity, half, self.seen + 1)


class LiveTracker:
    """``--roi auto`` for a live stream, where no frame after the current one may be waited for: the crops
    of a frame come from the alpha of the frames before it.

    After each frame, the subjects are found in its alpha (at the coarse pass's thumbnail size) and each
    is followed with its velocity (``_Followed``); the next frame's crop holds where its box will be,
    grown by the velocity on every side, so a moving subject stays inside. The whole frame is matted
    when nothing is followed, after a change of frame size, and every ``refind_every`` frames, since
    alpha outside the crops is 0 and a subject entering there could not be seen otherwise. A frame whose
    crops lost the subject (nothing found in them, or alpha on an inner edge outside the other crops) is
    to be matted again whole: ``update`` says so, and learns nothing from the cut alpha.
    """

    def __init__(self, settings: TrackSettings, follow: float = 0.5, refind_every: int = 15):
        self.settings, self.follow, self.refind_every = settings, follow, refind_every
        self._subjects: list[_Followed] = []
        self._since_whole = 0
        self._size: tuple[int, int] | None = None

    def regions(self, height: int, width: int, working: tuple[int, int]) -> list[Region]:
        """Crops for the next frame, for a model at ``working`` size (W, H)."""
        if not self._subjects or self._since_whole >= self.refind_every or self._size != (height, width):
            return [(0, 0, width, height)]
        return frame_crops([s.ahead() for s in self._subjects], self._crop(height, width, working), self.settings,
                           height, width)

    def update(self, alpha: np.ndarray, regions: Sequence[Region], working: tuple[int, int]) -> bool:
        """Learn from a frame's alpha (H, W) float in [0, 1], matted inside ``regions``; False when the crops
        lost the subject, so the frame must be matted whole (and this called again with that alpha)."""
        height, width = alpha.shape
        whole = list(regions) == [(0, 0, width, height)]
        if self._size != (height, width):
            self._subjects, self._size = [], (height, width)
        if not whole and escapes(alpha, regions, self.settings.edge_level):
            return False
        scale = min(1.0, 2 * self.settings.coarse_resolution / max(height, width))
        small = cv2.resize(alpha, (max(1, round(width * scale)), max(1, round(height * scale))),
                           interpolation=cv2.INTER_AREA)
        found = subject_boxes(small, self.settings, self._crop(height, width, working))
        if not whole and not found:
            return False
        before = match_boxes([s.ahead() for s in self._subjects], found)
        self._subjects = [_Followed.of(box) if b not in before else self._subjects[before[b]].seen_at(box, self.follow)
                          for b, box in enumerate(found)]
        self._since_whole = 0 if whole else self._since_whole + 1
        return True

    def _crop(self, height: int, width: int, working: tuple[int, int]) -> Callable[[Box], Region]:
        return lambda box: crop_region(box, height, width, self.settings, working)
