"""Which frame of the video a decoded picture is, and at what time: the one place that reads timestamps.

Containers do not always say: a frame may carry no timestamp, a repeated one, or one that goes back.
``FrameClock`` gives every decoded picture a frame index and a strictly increasing timestamp, so ranges,
batches and the sink's output times all agree on the same numbers.
"""

from __future__ import annotations

from fractions import Fraction

import av


class FrameClock:
    """(index, pts) of each decoded frame of one pass over a stream, in decode order.

    After a seek (``index_from_pts``) the index comes from the timestamp at the constant rate ``fps``;
    decoding from the start it is a count of the frames decoded. A frame without a timestamp gets its
    decode timestamp, else the previous one plus one frame at ``nominal_fps``; a timestamp that does
    not increase is moved one tick past the previous one (encoders refuse repeats).
    """

    def __init__(self, *, stream_start: int, time_base: Fraction, fps: Fraction | None,
                 nominal_fps: Fraction, index_from_pts: bool):
        self.stream_start, self.time_base, self.fps = stream_start, time_base, fps
        self.nominal_fps, self.index_from_pts = nominal_fps, index_from_pts
        self._index = -1
        self._pts: int | None = None

    def place(self, frame: av.VideoFrame) -> tuple[int, int]:
        pts = frame.pts if frame.pts is not None else frame.dts
        last = self._pts
        if pts is None:  # no timestamps at all: count frames at the nominal rate
            pts = 0 if last is None else last + max(1, round(1 / (self.nominal_fps * self.time_base)))
        if last is not None and pts <= last:  # a duplicated or reordered timestamp
            pts = last + 1
        self._pts = pts
        if self.index_from_pts and self.fps is not None:
            seconds = float((pts - self.stream_start) * self.time_base)
            index = max(self._index + 1, round(seconds * self.fps))
        else:
            index = self._index + 1
        self._index = index
        return index, pts
