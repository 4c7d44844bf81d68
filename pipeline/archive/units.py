"""Units of work: a whole video, or a segment of one cut at a keyframe, small enough to travel to a worker.

A unit names its frames ``[start, stop)`` and the frames it decodes around them: ``warmup`` frames
before the start so temporal smoothing starts warm, and the smoother's look-ahead after the stop, so
its frames are smoothed as in one pass over the video. Cuts fall on keyframes, so a unit's decode
starts cleanly. Only outputs coded frame by frame (ProRes, FFV1, QuickTime Animation, PNG) are cut:
their parts join without re-encoding; any other output is one unit per video.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import av

from birefnet.errors import InputError
from pipeline.media import open_input, parse_frame_range
from pipeline.sources.probe import stream_rate

INTRA_CODECS = ("prores", "ffv1", "qtrle", "png")


@dataclass(frozen=True)
class Unit:
    """One unit: ``video`` frames ``[start, stop)`` (``stop`` None: to the end) written to ``part``,
    decoding ``[decode_start, decode_stop)``. Plain values only: it is sent to workers as a dict."""

    id: str
    video: str
    output: str
    index: int
    start: int
    stop: int | None
    decode_start: int
    decode_stop: int | None
    frames: int | None  # expected frames (None: unknown)
    part: str
    stream_start: int  # the video stream's first timestamp: time zero of the deliverable
    whole: bool  # the only unit of its video: written as `process` writes it (audio included), then renamed
    settings: dict[str, Any] = field(default_factory=dict)  # its video's own settings (a manifest row's)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Unit:
        return cls(**data)


@dataclass(frozen=True)
class VideoLayout:
    """What cutting needs to know about a video: frame count, rate, keyframes, first timestamp."""

    frame_count: int
    fps: Fraction | None
    keyframes: list[int]
    stream_start: int


def read_layout(path: str) -> VideoLayout:
    """Reads the packets of the video stream (no decoding): the keyframes' frame indices from their
    timestamps at the constant rate, as the reader numbers frames after a seek."""
    with open_input(path) as container:
        if not container.streams.video:
            raise InputError(f"no video stream in {path}")
        stream = container.streams.video[0]
        fps, _ = stream_rate(stream)
        start = stream.start_time if stream.start_time is not None else 0
        tb = stream.time_base or Fraction(1, 90000)
        keyframes, count = [], 0
        try:
            for packet in container.demux(stream):
                if packet.size == 0:
                    continue
                count += 1
                if packet.is_keyframe and packet.pts is not None and fps is not None:
                    keyframes.append(round(float((packet.pts - start) * tb * fps)))
        except av.error.FFmpegError as exc:
            raise InputError(f"{path}: cannot read packets: {exc.strerror or exc}") from None
    return VideoLayout(count, fps, sorted(set(keyframes)), start)


def cut_points(layout: VideoLayout, segment_frames: int) -> list[int]:
    """Start frames of the segments: 0, then the first keyframe at least ``segment_frames`` after the
    previous cut (the last segment may be shorter, never empty)."""
    cuts = [0]
    for key in layout.keyframes:
        if key - cuts[-1] >= segment_frames and key < layout.frame_count:
            cuts.append(key)
    return cuts


def plan_units(video: str, output: str, parts_dir: Path, part_suffix: str, *, segment_seconds: float,
               warmup: int, lookahead: int, cut: bool, settings: dict[str, Any] | None = None) -> list[Unit]:
    """The units of one video; ``cut`` False (or a variable frame rate) keeps it whole. ``settings``:
    the video's own (a ``frames`` range among them is the whole unit's range)."""
    layout = read_layout(video)
    cuts = [0]
    if cut and layout.fps is not None:
        cuts = cut_points(layout, max(1, round(segment_seconds * float(layout.fps))))
    units = []
    for n, start in enumerate(cuts):
        last = n == len(cuts) - 1
        stop = None if last else cuts[n + 1]
        decode_stop = None if stop is None else min(stop + lookahead, layout.frame_count)
        frames = (layout.frame_count if stop is None else stop) - start
        if settings and settings.get("frames"):
            low, high = parse_frame_range(settings["frames"])
            frames = max(0, min(layout.frame_count, high or layout.frame_count) - low)
        units.append(Unit(
            id=f"{output}@{start}", video=video, output=output, index=n, start=start, stop=stop,
            decode_start=max(0, start - warmup), decode_stop=decode_stop, frames=frames,
            part=str(parts_dir / f"{n:05d}_{start}{part_suffix}"), stream_start=layout.stream_start,
            whole=len(cuts) == 1, settings=dict(settings or {})))
    return units
