"""The reader interface every source implements: frames one at a time, batches, looping, counting.

Frames are decoded and converted one at a time and handed out in ``FrameBatch``es, so memory does not
grow with the length of the input. Each frame keeps its index, presentation timestamp and time base
so the sink can write it at the same time it came in.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from types import TracebackType
from typing import Self

import numpy as np

from birefnet.errors import ConfigError
from pipeline.frames import FrameBatch
from pipeline.sources.probe import SourceInfo

BIT_DEPTHS = (8, 16)


@dataclass(frozen=True, slots=True)
class DecodedFrame:
    index: int
    pts: int
    image: np.ndarray  # (H, W, 3) uint8 or uint16 RGB, upright (RGBA (H, W, 4) when read with alpha)


@dataclass(frozen=True, slots=True)
class Truncation:
    """A file that ends before its stated length: where it ends and where it should, in seconds of the
    range, and how many frames its header listed for the range (an estimate, None when unknown)."""

    ends_s: float
    expected_s: float
    frames_listed: int | None


def check_bit_depth(bit_depth: int) -> int:
    if bit_depth not in BIT_DEPTHS:
        raise ConfigError(f"bit depth must be 8 or 16, got {bit_depth}")
    return bit_depth


class VideoSource:
    """Base reader: subclasses implement ``_frames_once``; this class batches, loops and counts.

    ``frames_read`` counts frames handed out; ``frames_bad`` frames that could not be decoded
    (corrupt packets, unreadable images). ``truncation`` says where an input that stops short of its
    stated length ends (None: it does not, or cannot tell).
    ``bit_depth`` (8: uint8, 16: uint16 pictures) may be changed after opening, once ``info`` tells
    what the input holds, and before reading: the reader converts each frame only when it hands it out.
    """

    info: SourceInfo

    def __init__(self, loop: bool = False, bit_depth: int = 8):
        self.loop = loop
        self.bit_depth = bit_depth
        self.frames_read = 0
        self.frames_bad = 0
        self.truncation: Truncation | None = None

    @property
    def bit_depth(self) -> int:
        return self._bit_depth

    @bit_depth.setter
    def bit_depth(self, bit_depth: int) -> None:
        self._bit_depth = check_bit_depth(bit_depth)

    def _frames_once(self) -> Iterator[DecodedFrame]:
        raise NotImplementedError

    def _rewind(self) -> bool:
        """Go back to the start of the range for another loop; False when the input cannot."""
        return False

    def frames(self) -> Iterator[DecodedFrame]:
        """Frames in presentation order; with ``loop`` the range repeats until the caller stops."""
        while True:
            produced = 0
            for frame in self._frames_once():
                produced += 1
                self.frames_read += 1
                yield frame
            if not self.loop or not produced or not self._rewind():
                return

    def batches(self, batch_size: int) -> Iterator[FrameBatch]:
        """``FrameBatch``es of up to ``batch_size`` consecutive frames; a gap in the indices (a
        frame that could not be decoded) ends a batch so each batch's indices stay consecutive."""
        if batch_size < 1:
            raise ConfigError(f"batch size must be at least 1, got {batch_size}")
        pending: list[DecodedFrame] = []
        for frame in self.frames():
            if pending and (len(pending) == batch_size or frame.index != pending[-1].index + 1):
                yield self._batch(pending)
                pending = []
            pending.append(frame)
        if pending:
            yield self._batch(pending)

    def _batch(self, frames: list[DecodedFrame]) -> FrameBatch:
        return FrameBatch(index=frames[0].index, images=np.stack([f.image for f in frames]),
                          pts=[f.pts for f in frames], time_base=self.info.time_base)

    def close(self) -> None:
        pass

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
