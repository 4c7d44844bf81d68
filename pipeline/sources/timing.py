"""Which frame of the video a decoded picture is, and at what time: the one place that reads timestamps.

Frames are numbered by counting them in decode output order from the first frame of the stream, as
FFmpeg numbers them; no index is ever derived from a timestamp or a seek's landing point, because real
files lie about both (packed B-frames in AVI, pts equal to dts on B-frames in MP4). Timestamps are
FFmpeg's best-effort choice between pts and dts (``pipeline.timestamps.BestEffortClock``), with only
what still cannot be muxed repaired (``repair_timeline``), so output frame i carries input frame i's
time exactly as FFmpeg decodes it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from fractions import Fraction

import av

from pipeline.timestamps import BestEffortClock, repair_timeline


class FrameClock:
    """Numbers and times the decoded frames of one pass over a stream, from its first frame."""

    def __init__(self, *, time_base: Fraction, nominal_fps: Fraction):
        self.time_base, self.nominal_fps = time_base, nominal_fps
        self.frame_duration = max(1, round(1 / (nominal_fps * time_base)))

    def frames(self, decoded: Iterable[av.VideoFrame]) -> Iterator[tuple[int, int, av.VideoFrame]]:
        """(index, pts, frame) for each decoded frame: index counts from 0, pts strictly increases."""
        best_effort = BestEffortClock()
        stamped = ((frame, best_effort(frame.pts, frame.dts)) for frame in decoded)
        for index, (frame, pts) in enumerate(repair_timeline(stamped, self.frame_duration)):
            yield index, pts, frame
