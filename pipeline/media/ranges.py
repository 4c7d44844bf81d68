"""The part of an input a run reads: ``--frames A:B`` counts frames from 0, B exclusive."""

from __future__ import annotations

import re

from birefnet.errors import ConfigError

FrameRange = tuple[int, int | None]  # (start, stop or None for the end)


def parse_frame_range(text: str) -> FrameRange:
    """'A:B' (frames A..B-1), 'A:' (A to the end) or ':B' -> (start, stop or None)."""
    match = re.fullmatch(r"\s*(\d*)\s*:\s*(\d*)\s*", text)
    if not match:
        raise ConfigError(f"not a frame range: {text!r} (use A:B, A: or :B)")
    start = int(match.group(1)) if match.group(1) else 0
    stop = int(match.group(2)) if match.group(2) else None
    if stop is not None and stop <= start:
        raise ConfigError(f"empty frame range: {text!r}")
    return start, stop


def check_frame_range(frame_range: FrameRange | None) -> None:
    """Reject a range the sources cannot honour, before anything is opened."""
    if frame_range is None:
        return
    start, stop = frame_range
    if start is None or start < 0 or (stop is not None and stop <= start):
        raise ConfigError(f"bad frame range: {frame_range!r}")
