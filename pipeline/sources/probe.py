"""What an input is, learned once when a reader opens it: size, rate, colour, rotation, timecode, audio.

The readers hand their open container (or the sequence's first image) to these functions, so the
description comes from the same open file the frames are then read from. A caller decides what
depends on the input (the 16-bit path for a 10-bit source, the sink's settings) from ``SourceInfo``
before the first frame is read.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import av

from pipeline.colour import ColourInfo
from pipeline.media import FrameRange, shift_timecode

log = logging.getLogger("birefnet_video")


@dataclass(frozen=True)
class AudioStreamInfo:
    """One audio stream of an input, as a sink needs it to copy or re-encode the stream."""

    index: int
    codec: str
    sample_rate: int
    channels: int
    layout: str
    start_s: float | None
    duration_s: float | None
    language: str | None = None

    def describe(self) -> str:
        lang = f" [{self.language}]" if self.language else ""
        return f"#{self.index} {self.codec} {self.sample_rate} Hz {self.layout}{lang}"


@dataclass
class SourceInfo:
    """What a sink and the pipeline need to know about an input (after rotation and range choice).

    ``fps`` is None for variable frame rate or unknown; ``nominal_fps`` is always a usable guess (for
    encoders that need a rate). ``start_pts`` is the timestamp that becomes time zero of the output:
    the stream start for a full run, the first frame of the range for a partial run (so partial
    outputs start at 0, and ``timecode`` is shifted to their first frame). ``frame_count`` is the
    number of frames in the chosen range when known: exact only where ``frame_count_exact`` (image
    sequences, frames made in memory); a container's count comes from its header and is an estimate
    (AVI counts empty index entries, MP4 may list a sample that does not decode). ``end_s`` is the
    input time where the video stream's stated duration ends (None when the file does not say).
    ``bit_depth`` is the input's own precision (10 for a 10-bit file), whatever depth it is read at.
    """

    path: str
    kind: str  # "file", "stream", "camera", "sequence" or "generated" (frames made in memory)
    container: str
    codec: str
    pix_fmt: str
    width: int
    height: int
    fps: Fraction | None
    nominal_fps: Fraction
    time_base: Fraction
    frame_count: int | None
    frame_count_exact: bool
    duration_s: float | None
    colour: ColourInfo
    bit_depth: int
    rotation: int = 0
    sample_aspect_ratio: Fraction = Fraction(1)
    audio: list[AudioStreamInfo] = field(default_factory=list)
    timecode: str | None = None
    start_pts: int = 0
    end_s: float | None = None
    start_index: int = 0
    stop_index: int | None = None
    partial: bool = False
    frame_numbers: tuple[int, ...] = ()  # a numbered image sequence: the file number of each frame index

    @property
    def start_s(self) -> float:
        """Input time (s) that maps to output time 0; audio is cut and shifted by the same amount."""
        return float(self.start_pts * self.time_base)

    def frame_end_s(self, pts: int) -> float:
        """Seconds into the range at which the frame at ``pts`` ends (its start plus one nominal frame)."""
        return float((pts - self.start_pts) * self.time_base) + 1 / float(self.nominal_fps)


def probe_stream(spec: str, kind: str, container: av.container.InputContainer, stream: av.VideoStream,
                 first: tuple[int, int, av.VideoFrame], frame_range: FrameRange | None) -> SourceInfo:
    """Describe a container's video stream from its headers and its first frame in the range
    (``first``: index, pts, frame)."""
    first_index, first_pts, first_frame = first
    fps, nominal = stream_rate(stream)
    frame_count = stream_frame_count(stream, container, nominal)
    rotation = int(round(first_frame.rotation or 0)) % 360
    width, height = first_frame.width, first_frame.height
    sar = stream.sample_aspect_ratio or Fraction(1)
    if rotation in (90, 270):
        width, height, sar = height, width, 1 / sar
    colour = ColourInfo.from_frame(first_frame).resolved(first_frame.height)
    partial = bool(frame_range)
    stream_start = stream.start_time if stream.start_time is not None else 0
    if frame_count is not None:
        stop = frame_count if not frame_range or frame_range[1] is None else min(frame_count, frame_range[1])
        frame_count = max(0, stop - first_index)
    timecode = _find_timecode(container, stream)
    if rotation:
        log.info("%s: display rotation %d degrees applied", spec, rotation)
    return SourceInfo(
        path=spec, kind=kind, container=container.format.name, codec=stream.codec_context.name,
        pix_fmt=first_frame.format.name, width=width, height=height, fps=fps, nominal_fps=nominal,
        time_base=stream.time_base or Fraction(1, 90000), frame_count=frame_count,
        frame_count_exact=False,
        duration_s=float(container.duration / av.time_base) if container.duration else None,
        colour=colour, bit_depth=max(c.bits for c in first_frame.format.components),
        rotation=rotation, sample_aspect_ratio=sar, audio=describe_audio_streams(container),
        timecode=shift_timecode(timecode, first_index, fps or nominal) if partial else timecode,
        start_pts=first_pts if partial else stream_start, end_s=stream_end_s(stream, container, nominal),
        start_index=first_index,
        stop_index=frame_range[1] if frame_range else None, partial=partial,
    )


def stream_rate(stream: av.VideoStream) -> tuple[Fraction | None, Fraction]:
    """(constant frame rate or None for VFR/unknown, a nominal rate that is always usable)."""
    average, base = stream.average_rate, stream.base_rate or stream.guessed_rate
    nominal = Fraction(average or base or 25)
    if average and base and abs(float(average) - float(base)) <= 0.002 * float(base):
        return Fraction(base), Fraction(base)
    if base and not average:
        return Fraction(base), Fraction(base)
    return None, nominal.limit_denominator(1001)


def stream_frame_count(stream: av.VideoStream, container: av.container.InputContainer,
                       nominal: Fraction) -> int | None:
    """Frames in the whole stream as the header lists them, else as many as the duration holds at the
    nominal rate: an estimate either way."""
    if stream.frames:
        return int(stream.frames)
    if stream.duration and stream.time_base:
        return int(round(float(stream.duration * stream.time_base) * nominal))
    if container.duration:
        return int(round(container.duration / av.time_base * float(nominal)))
    return None


def stream_end_s(stream: av.VideoStream, container: av.container.InputContainer,
                 nominal: Fraction | None = None) -> float | None:
    """Input time (s) where the video stream's stated length ends: the later of its duration (the
    stream's own, a Matroska DURATION tag, or the container's when the video is its only stream: with
    other streams the container's may be the audio's) and the end of the frames its header lists at the
    ``nominal`` rate. An AVI cut short keeps its header's count (15 frames) while FFmpeg rebuilds the
    duration from the data it found (0.4 s), so the duration alone would call it complete."""
    tb = stream.time_base or Fraction(1, 90000)
    start = float(stream.start_time * tb) if stream.start_time is not None else 0.0
    # an MP4's count includes the samples an edit list leaves out (a copy cut at 0.5 s lists them all):
    # its table is checked sample for sample instead (``samples_listed``)
    counted = stream.frames and samples_listed(stream, container) is None
    ends = [start + float(stream.frames / nominal)] if counted and nominal else []
    tagged = _parse_clock(stream.metadata.get("DURATION") or stream.metadata.get("duration"))
    if stream.duration:
        ends.append(start + float(stream.duration * tb))
    elif tagged is not None:
        ends.append(start + tagged)
    elif container.duration and len(container.streams) == 1:
        ends.append((container.start_time or 0) / av.time_base + container.duration / av.time_base)
    return max(ends) if ends else None


def samples_listed(stream: av.VideoStream, container: av.container.InputContainer) -> int | None:
    """The packets an ISO-BMFF (MP4, MOV) sample table lists, every one of which a complete file holds;
    None for other containers (AVI indexes hold entries that are no packets: tree.avi lists 444, has 68)."""
    return int(stream.frames) if stream.frames and "mov" in container.format.name.split(",") else None


def _parse_clock(text: str | None) -> float | None:
    """'HH:MM:SS.fraction' -> seconds, None when absent or malformed."""
    try:
        hours, minutes, seconds = (text or "").split(":")
        return int(hours) * 3600 + int(minutes) * 60 + float(seconds)
    except ValueError:
        return None


def _find_timecode(container: av.container.InputContainer, stream: av.VideoStream) -> str | None:
    candidates: list[Any] = [stream, *container.streams.data, container]
    for candidate in candidates:
        tc = candidate.metadata.get("timecode")
        if tc:
            return tc
    return None


def describe_audio_streams(container: av.container.InputContainer) -> list[AudioStreamInfo]:
    streams = []
    for stream in container.streams.audio:
        ctx = stream.codec_context
        tb = stream.time_base
        streams.append(AudioStreamInfo(
            index=stream.index,
            codec=ctx.name,
            sample_rate=int(ctx.sample_rate or 0),
            channels=int(ctx.channels or 0),
            layout=ctx.layout.name if ctx.layout else "",
            start_s=float(stream.start_time * tb) if stream.start_time is not None and tb else None,
            duration_s=float(stream.duration * tb) if stream.duration and tb else None,
            language=stream.language,
        ))
    return streams
