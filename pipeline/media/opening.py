"""Where an input lives (a local path or a network URL) and opening it with one-line errors."""

from __future__ import annotations

from pathlib import Path

import av

from birefnet.errors import InputError

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
