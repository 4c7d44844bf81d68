"""Frame timestamps as FFmpeg's own decode gives them, with only what is broken repaired.

Real files carry timestamps that lie: AVI stores one per packet, so packed B-frames come out of the
decoder with swapped presentation times; some MP4 muxers write pts equal to dts on B-frames. FFmpeg
does not trust either field alone: per stream it counts how often pts and dts went backwards and
takes whichever has been wrong less often (libavcodec's "best effort timestamp"). PyAV hands out the
raw pts and dts, so ``BestEffortClock`` redoes that choice here.

What still is not increasing after that (a duplicate where the two fields disagreed on the first
frames, two frames swapped at the flush of the decoder, frames without any timestamp) cannot be muxed.
``repair_timeline`` fixes just those frames, looking a few frames ahead: a swapped pair is swapped
back, a duplicate or backward step is placed between its neighbours, a missing one follows its
predecessor by one frame duration. Every other timestamp passes through unchanged.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")


class BestEffortClock:
    """libavcodec's choice between a frame's pts and its packet's dts, one instance per decoded stream."""

    def __init__(self) -> None:
        self._last_pts: int | None = None
        self._last_dts: int | None = None
        self._faulty_pts = 0
        self._faulty_dts = 0

    def __call__(self, pts: int | None, dts: int | None) -> int | None:
        if dts is not None:
            self._faulty_dts += self._last_dts is not None and dts <= self._last_dts
            self._last_dts = dts
        elif pts is not None:
            self._last_dts = pts
        if pts is not None:
            self._faulty_pts += self._last_pts is not None and pts <= self._last_pts
            self._last_pts = pts
        elif dts is not None:
            self._last_pts = dts
        if pts is not None and (dts is None or self._faulty_pts <= self._faulty_dts):
            return pts
        return dts


LOOKAHEAD = 4  # frames held back to judge a timestamp against its successors


def repair_timeline(frames: Iterable[tuple[T, int | None]], frame_duration: int,
                    lookahead: int = LOOKAHEAD) -> Iterator[tuple[T, int]]:
    """``(item, timestamp)`` pairs with strictly increasing timestamps, in the order given.

    ``frame_duration`` (in the timestamps' unit, at least 1) places frames that have no timestamp.
    A timestamp is kept when it lies between the previous output and the next usable timestamp.
    """
    step = max(1, frame_duration)
    pending: deque[list] = deque()  # [item, timestamp or None]
    previous: int | None = None

    def settle() -> tuple[T, int]:
        nonlocal previous
        item, stamp = pending.popleft()
        usable = [k for k, (_, s) in enumerate(pending) if s is not None and (previous is None or s > previous)]
        after = [pending[k][1] for k in usable]
        following = after[0] if after else None  # the next timestamp that is itself usable
        broken = stamp is None or (previous is not None and stamp <= previous) \
            or (following is not None and stamp >= following)
        if broken and stamp is not None and following is not None and stamp > following \
                and (len(after) < 2 or stamp < after[1]):
            pending[usable[0]][1] = stamp  # a swapped pair: swap the two back
            stamp = following
        elif broken:
            stamp = _between(previous, pending, step)
        previous = stamp
        return item, stamp

    for item, stamp in frames:
        pending.append([item, stamp])
        if len(pending) > lookahead:
            yield settle()
    while pending:
        yield settle()


def _between(previous: int | None, pending: deque[list], step: int) -> int:
    """A timestamp for a frame whose own is missing or out of order: evenly between the previous output
    and the next timestamp after it that is usable, or one frame duration after the previous."""
    if previous is None:
        later = [(k, s) for k, (_, s) in enumerate(pending) if s is not None]
        return later[0][1] - (later[0][0] + 1) * step if later else 0
    for k, (_, stamp) in enumerate(pending):
        if stamp is not None and stamp > previous:
            gap = (stamp - previous) // (k + 2)
            if gap >= 1:
                return previous + min(gap, step)
    return previous + step
