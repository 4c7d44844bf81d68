"""Small media facts shared by sources and sinks: opening containers with one-line errors, stream
descriptions, frame/time range parsing, timecode arithmetic and rotation of decoded pictures.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from birefnet.errors import ConfigError, InputError

log = logging.getLogger("birefnet_video")

# schemes PyAV/FFmpeg open as network streams (no local file to check for)
STREAM_SCHEMES = ("rtsp://", "rtsps://", "rtmp://", "rtmps://", "http://", "https://", "udp://", "tcp://", "srt://")


def is_url(spec: str) -> bool:
    return spec.lower().startswith(STREAM_SCHEMES)


def open_input(spec: str, *, format: str | None = None, options: dict | None = None,
               timeout: float | None = None) -> av.container.InputContainer:
    """``av.open`` for reading, turning FFmpeg's errors into one-line ``InputError`` messages."""
    if format is None and not is_url(spec):
        path = Path(spec)
        if not path.exists():
            raise InputError(f"input not found: {spec}")
        if path.is_dir():
            raise InputError(f"input is a directory without images: {spec}")
        if path.stat().st_size == 0:
            raise InputError(f"input is an empty file: {spec}")
    try:
        return av.open(spec, "r", format=format, options=options or {}, timeout=timeout)
    except av.error.InvalidDataError:
        raise InputError(f"not a media file (or cut off before its header): {spec}") from None
    except av.error.EOFError:
        raise InputError(f"no media data in {spec} (empty or cut off)") from None
    except av.error.FFmpegError as exc:
        raise InputError(f"cannot open {spec}: {exc.strerror or exc}") from None


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


# ---------------------------------------------------------------------------------------- ranges

def parse_time(text: str) -> float:
    """'12.5', '1:02.5' or '01:00:02.5' -> seconds."""
    parts = text.strip().split(":")
    try:
        if len(parts) > 3 or not all(parts):
            raise ValueError
        seconds = 0.0
        for part in parts:
            seconds = seconds * 60 + float(part)
    except ValueError:
        raise ConfigError(f"not a time: {text!r} (use seconds, M:S or H:M:S)") from None
    if seconds < 0:
        raise ConfigError(f"time must not be negative: {text!r}")
    return seconds


def parse_frame_range(text: str) -> tuple[int, int | None]:
    """'A:B' (frames A..B-1), 'A:' (A to the end) or ':B' -> (start, stop or None)."""
    match = re.fullmatch(r"\s*(\d*)\s*:\s*(\d*)\s*", text)
    if not match:
        raise ConfigError(f"not a frame range: {text!r} (use A:B, A: or :B)")
    start = int(match.group(1)) if match.group(1) else 0
    stop = int(match.group(2)) if match.group(2) else None
    if stop is not None and stop <= start:
        raise ConfigError(f"empty frame range: {text!r}")
    return start, stop


def check_ranges(frame_range, time_range) -> None:
    """Reject a combination or a shape the sources cannot honour, before anything is opened."""
    if frame_range is not None and time_range is not None:
        raise ConfigError("give either a frame range or a time range, not both")
    for name, rng in (("frame range", frame_range), ("time range", time_range)):
        if rng is None:
            continue
        start, stop = rng
        if start is None or start < 0 or (stop is not None and stop <= start):
            raise ConfigError(f"bad {name}: {rng!r}")


# ------------------------------------------------------------------------------- numbered files

PRINTF_NUMBER = re.compile(r"%0?(\d*)d")


def numbered_files(folder: Path, pattern: str) -> list[tuple[int, Path]]:
    """(number, path) of the files in ``folder`` whose names fit the printf ``pattern`` (e.g.
    'shot_%05d.png'), by number."""
    match = PRINTF_NUMBER.search(pattern)
    if match is None or not folder.is_dir():
        return []
    digits = rf"\d{{{int(match.group(1))},}}" if match.group(1) else r"\d+"
    regex = re.compile(re.escape(pattern[:match.start()]) + f"({digits})" + re.escape(pattern[match.end():]))
    found = []
    for path in folder.iterdir():
        hit = regex.fullmatch(path.name)
        if hit:
            found.append((int(hit.group(1)), path))
    return sorted(found)


# -------------------------------------------------------------------------------------- timecode

def _timecode_rate(fps: Fraction) -> tuple[int, bool]:
    """Nominal integer rate and whether SMPTE drop-frame counting applies (29.97, 59.94)."""
    nominal = round(float(fps))
    drop = nominal in (30, 60) and fps.denominator == 1001
    return nominal, drop


def timecode_to_frames(tc: str, fps: Fraction) -> int:
    """SMPTE timecode 'HH:MM:SS:FF' (';' before FF for drop-frame) -> frame number."""
    match = re.fullmatch(r"(\d+):(\d\d):(\d\d)[:;.,](\d\d)", tc.strip())
    if not match:
        raise ValueError(f"not a timecode: {tc!r}")
    hh, mm, ss, ff = (int(g) for g in match.groups())
    nominal, drop = _timecode_rate(fps)
    frames = ((hh * 60 + mm) * 60 + ss) * nominal + ff
    if drop:
        dropped_per_minute = nominal // 15  # 2 at 29.97, 4 at 59.94
        minutes = hh * 60 + mm
        frames -= dropped_per_minute * (minutes - minutes // 10)
    return frames


def frames_to_timecode(frames: int, fps: Fraction) -> str:
    nominal, drop = _timecode_rate(fps)
    if drop:
        dropped = nominal // 15
        per_10min = nominal * 600 - dropped * 9
        per_min = nominal * 60 - dropped
        tens, rest = divmod(frames, per_10min)
        extra = 0 if rest < dropped else dropped * ((rest - dropped) // per_min)
        frames = frames + dropped * 9 * tens + extra
    ff = frames % nominal
    ss = frames // nominal % 60
    mm = frames // (nominal * 60) % 60
    hh = frames // (nominal * 3600) % 24
    return f"{hh:02d}:{mm:02d}:{ss:02d}{';' if drop else ':'}{ff:02d}"


def shift_timecode(tc: str | None, frames: int, fps: Fraction | None) -> str | None:
    """Timecode ``frames`` later than ``tc`` (the start timecode of a partial run)."""
    if tc is None or frames == 0:
        return tc
    if fps is None:
        log.warning("timecode %s not shifted for the partial range: frame rate unknown", tc)
        return tc
    try:
        return frames_to_timecode(timecode_to_frames(tc, fps) + frames, fps)
    except ValueError:
        log.warning("timecode %r not understood; not carried", tc)
        return None


# -------------------------------------------------------------------------------------- geometry

def rotate_upright(image: np.ndarray, rotation: int) -> np.ndarray:
    """Apply a display-matrix rotation (degrees counter-clockwise, as ``VideoFrame.rotation``)
    so the picture stands as players show it. Returns a view."""
    turns = (round(rotation / 90) % 4)
    return np.rot90(image, k=turns) if turns else image


def writable_dir_error(directory: Path) -> str | None:
    """Why files cannot be created in ``directory`` (None when they can)."""
    if not directory.exists():
        return f"output directory does not exist: {directory}"
    if not directory.is_dir():
        return f"output parent is not a directory: {directory}"
    if not os.access(directory, os.W_OK | os.X_OK):
        return f"output directory is not writable: {directory}"
    return None
