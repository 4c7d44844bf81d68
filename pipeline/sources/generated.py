"""Frames made in memory (a synthetic clip) read like any other input, so they can go through a sink."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from fractions import Fraction

import numpy as np

from pipeline.colour import ColourInfo
from pipeline.sources.probe import SourceInfo
from pipeline.sources.reader import DecodedFrame, VideoSource


class ArraySource(VideoSource):
    """(H, W, 3) uint8 RGB frames at ``fps``; frame n has timestamp n in a 1/fps time base.

    ``frames`` is an (N, H, W, 3) array or any sequence of such pictures (one that renders each on
    access keeps a long clip out of memory). The pictures carry no colour description (like an untagged
    file), so a sink writes them untagged.
    """

    def __init__(self, frames: np.ndarray | Sequence[np.ndarray], fps: Fraction | int):
        super().__init__()
        rate = Fraction(fps)
        count = len(frames)
        height, width = frames[0].shape[:2]
        self._frames = frames
        self.info = SourceInfo(
            path="", kind="generated", container="", codec="rawvideo", pix_fmt="rgb24", width=width,
            height=height, fps=rate, nominal_fps=rate, time_base=1 / rate, frame_count=count,
            frame_count_exact=True, duration_s=float(count / rate), colour=ColourInfo(), bit_depth=8)

    def _frames_once(self) -> Iterator[DecodedFrame]:
        for index, image in enumerate(self._frames):
            yield DecodedFrame(index, index, image)
