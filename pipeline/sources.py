"""Video readers: a file or network stream, an image sequence, a camera.

Every reader streams: frames are decoded and converted one at a time and handed out in
``FrameBatch``es, so memory does not grow with the length of the input. Each frame keeps its index,
presentation timestamp and time base so the sink can write it at the same time it came in.

``open_source(spec, ...)`` picks the reader from the spec:

* ``webcam:N`` or ``/dev/videoN``: a camera (V4L2 on Linux, AVFoundation on macOS, DirectShow on Windows);
* a folder of images, a glob (``shots/*.png``) or a printf pattern (``shot_%05d.png``), or one
  image file: an image sequence (png, jpg, tiff, 8 or 16 bit);
* anything else: a file or URL PyAV opens (mp4, mov, mkv, webm, avi, mxf, rtsp/http streams).

Reading a background video for compositing: ``open_source(path, loop=True)`` and pull
``frames()`` as needed (it rewinds at the end forever); stop pulling to trim.
"""

from __future__ import annotations

import glob
import logging
import re
import sys
import threading
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Iterator, NamedTuple

import av
import numpy as np

from birefnet.errors import ConfigError, InputError
from birefnet.pixels import to_uint8
from pipeline.colour import ColourInfo, frame_to_rgb
from pipeline.frames import FrameBatch
from pipeline.media import (PRINTF_NUMBER, AudioStreamInfo, check_ranges, describe_audio_streams,
                            is_url, numbered_files, open_input, rotate_upright, shift_timecode)

log = logging.getLogger("birefnet_video")

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".exr", ".webp")
DEFAULT_SEQUENCE_FPS = Fraction(25)


@dataclass
class SourceInfo:
    """What a sink and the pipeline need to know about an input (after rotation and range choice).

    ``fps`` is None for variable frame rate or unknown; ``nominal_fps`` is always a usable guess (for
    encoders that need a rate). ``start_pts`` is the timestamp that becomes time zero of the output:
    the stream start for a full run, the first frame of the range for a partial run (so partial
    outputs start at 0, and ``timecode`` is shifted to their first frame). ``frame_count`` is the
    number of frames in the chosen range when known (exact from a container index, or estimated).
    """

    path: str
    kind: str  # "file", "stream", "camera" or "sequence"
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
    start_index: int = 0
    stop_index: int | None = None
    end_s: float | None = None
    partial: bool = False

    @property
    def start_s(self) -> float:
        """Input time (s) that maps to output time 0; audio is cut and shifted by the same amount."""
        return float(self.start_pts * self.time_base)


class DecodedFrame(NamedTuple):
    index: int
    pts: int
    image: np.ndarray  # (H, W, 3) uint8 or uint16 RGB, upright


class VideoSource:
    """Base reader: subclasses implement ``_frames_once``; this class batches, loops and counts.

    ``frames_read`` counts frames handed out; ``frames_bad`` frames that could not be decoded
    (corrupt packets, unreadable images, frames a truncated file promised but did not contain).
    """

    info: SourceInfo

    def __init__(self, loop: bool = False):
        self.loop = loop
        self.frames_read = 0
        self.frames_bad = 0

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

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# ----------------------------------------------------------------------------- container source

def _camera_input(spec: str) -> tuple[str, str]:
    """'webcam:N' or a device path -> (url, FFmpeg input format) for this platform."""
    number = spec.split(":", 1)[1] if spec.startswith("webcam:") else None
    if sys.platform == "darwin":
        return (number or spec), "avfoundation"
    if sys.platform.startswith("win"):
        return (f"video={spec}" if number is None else f"video={number}"), "dshow"
    return (f"/dev/video{number}" if number is not None else spec), "v4l2"


class ContainerSource(VideoSource):
    """A file, network stream or camera read through PyAV with frame threading.

    Ranges: for constant-frame-rate seekable files the reader seeks to the keyframe before the
    range and decodes forward, deriving each frame's index from its timestamp; for VFR, streams
    and cameras it decodes from the start and skips (without RGB conversion) up to the range.
    """

    def __init__(self, spec: str, *, kind: str, frame_range=None, time_range=None,
                 bit_depth: int = 8, loop: bool = False, options: dict | None = None):
        super().__init__(loop=loop)
        self.spec = spec
        self.bit_depth = bit_depth
        self._lock = threading.Lock()
        self._closed = False
        if kind == "camera":
            url, fmt = _camera_input(spec)
            self._container = open_input(url, format=fmt, options=options)
        else:
            if kind == "stream" and spec.lower().startswith("rtsp") and options is None:
                options = {"rtsp_transport": "tcp"}
            self._container = open_input(spec, options=options, timeout=10.0 if kind == "stream" else None)
        try:
            self._setup(kind, frame_range, time_range)
        except BaseException:
            self.close()
            raise

    def _setup(self, kind, frame_range, time_range) -> None:
        container = self._container
        if not container.streams.video:
            raise InputError(f"no video stream in {self.spec}")
        stream = self._stream = container.streams.video[0]
        stream.thread_type = "SLICE" if kind == "camera" else "AUTO"  # frame threads add latency
        stream.codec_context.thread_count = 0
        tb = stream.time_base or Fraction(1, 90000)
        self._tb = tb
        fps, nominal = _stream_rate(stream)
        self._fps, self._nominal = fps, nominal
        self._stream_start = stream.start_time if stream.start_time is not None else 0
        self._seekable = kind == "file" and fps is not None
        frame_count, exact = _frame_count(stream, container, nominal)
        self._frame_range, self._time_range = frame_range, time_range
        self._decoded_errors = 0
        self._first = None
        self._iter = self._range_frames()
        try:
            self._first = next(self._iter)
        except StopIteration:
            what = "frames in the requested range" if (frame_range or time_range) else "video frames"
            raise InputError(f"no {what} in {self.spec}") from None
        first_index, first_pts, first_frame = self._first
        rotation = int(round(first_frame.rotation or 0)) % 360
        width, height = first_frame.width, first_frame.height
        sar = stream.sample_aspect_ratio or Fraction(1)
        if rotation in (90, 270):
            width, height, sar = height, width, 1 / sar
        colour = ColourInfo.from_frame(first_frame).resolved(first_frame.height)
        partial = bool(frame_range or time_range)
        start_pts = first_pts if partial else self._stream_start
        if frame_count is not None:
            frame_count = _range_count(frame_count, first_index, frame_range, time_range, nominal)
        timecode = _find_timecode(container, stream)
        self.info = SourceInfo(
            path=self.spec, kind=kind, container=container.format.name, codec=stream.codec_context.name,
            pix_fmt=first_frame.format.name, width=width, height=height, fps=fps, nominal_fps=nominal,
            time_base=tb, frame_count=frame_count, frame_count_exact=exact and fps is not None,
            duration_s=float(container.duration / av.time_base) if container.duration else None,
            colour=colour, bit_depth=max(c.bits for c in first_frame.format.components),
            rotation=rotation, sample_aspect_ratio=sar, audio=describe_audio_streams(container),
            timecode=shift_timecode(timecode, first_index, fps or nominal) if partial else timecode,
            start_pts=start_pts, start_index=first_index,
            stop_index=frame_range[1] if frame_range else None,
            end_s=time_range[1] if time_range else None, partial=partial,
        )
        if rotation:
            log.info("%s: display rotation %d degrees applied", self.spec, rotation)

    # -- decoding

    def _packets_decoded(self) -> Iterator[av.VideoFrame]:
        """Decoded frames; a packet that fails to decode is counted and skipped, a demux error
        (damaged container) resumes at the next readable packet.

        Each demux + decode step holds ``_lock`` (never across a ``yield``), so ``close()`` from
        another thread waits for the step in progress instead of freeing the container under it.
        """
        stream = self._stream
        demuxer, demux_errors = None, 0
        while True:
            with self._lock:
                if self._closed:
                    return
                if demuxer is None:
                    demuxer = self._container.demux(stream)
                try:
                    packet = next(demuxer)
                except (StopIteration, av.error.EOFError):
                    return
                except av.error.FFmpegError as exc:
                    demux_errors += 1
                    log.warning("%s: read error (%s); skipping ahead", self.spec, exc.strerror or exc)
                    if demux_errors > 50:
                        return
                    demuxer = None
                    continue
                try:
                    frames = stream.decode(packet)
                except av.error.FFmpegError:
                    self._decoded_errors += 1
                    continue
            yield from frames

    def _range_frames(self) -> Iterator[tuple[int, int, av.VideoFrame]]:
        """(index, pts, frame) of the frames in the range, in presentation order."""
        tb, fps, start_pts = self._tb, self._fps, self._stream_start
        frame_range, time_range = self._frame_range, self._time_range
        start_s = None
        if frame_range:
            first, stop = frame_range
        else:
            first, stop = 0, None
        if time_range:
            start_s, end_s = time_range
        index_from_pts = False
        if self._seekable and (first or start_s or self.loop):
            target_s = start_s if start_s is not None else first / fps
            try:
                with self._lock:
                    if self._closed:
                        return
                    self._container.seek(start_pts + int(target_s / tb), stream=self._stream, backward=True)
                index_from_pts = True
            except av.error.FFmpegError:  # an unindexed file: decode from where we are and count
                log.info("%s: cannot seek; decoding from the start to reach the range", self.spec)
        half_frame = 0.5 / float(fps or 25)
        counted = -1
        delivered = 0
        last_pts = None
        for frame in self._packets_decoded():
            pts = frame.pts if frame.pts is not None else frame.dts
            if pts is None:  # no timestamps at all: count frames at the nominal rate
                pts = 0 if last_pts is None else last_pts + max(1, round(1 / (self._nominal * tb)))
            if last_pts is not None and pts <= last_pts:  # a duplicated or reordered timestamp
                pts = last_pts + 1
            last_pts = pts
            t = float((pts - start_pts) * tb)
            if index_from_pts:
                index = max(counted + 1, round(t * fps))
            else:
                index = counted + 1
            counted = index
            if index < first or (start_s is not None and t < start_s - half_frame):
                continue
            if (stop is not None and index >= stop) or (time_range and end_s is not None and t >= end_s - half_frame):
                return
            delivered += 1
            yield index, pts, frame
        if not self._closed:
            self._account_missing(delivered)

    def _account_missing(self, delivered: int) -> None:
        """At the end of the input: count frames that failed to decode and frames the container's
        index promised but the stream did not hold (a truncated file)."""
        errors, self._decoded_errors = self._decoded_errors, 0
        if errors:
            log.warning("%s: %d frame(s) could not be decoded (corrupt data) and were skipped",
                        self.spec, errors)
        info = getattr(self, "info", None)
        missing = 0
        if info is not None and info.frame_count is not None and info.stop_index is None and info.end_s is None:
            missing = info.frame_count - delivered
            if missing - errors > (0 if info.frame_count_exact else 2):  # estimates may be off by a frame
                estimate = "" if info.frame_count_exact else "about "
                log.warning("%s: input ends %s%d frame(s) early (truncated?)", self.spec, estimate,
                            missing - errors)
            if not info.frame_count_exact:
                missing = 0
        self.frames_bad += max(errors, missing)

    def _frames_once(self) -> Iterator[DecodedFrame]:
        rotation = self.info.rotation
        if self._first is not None:
            pending, self._first = [self._first], None
        else:
            pending = []
        for index, pts, frame in _chain(pending, self._iter):
            image = rotate_upright(frame_to_rgb(frame, self.info.colour, self.bit_depth), rotation)
            yield DecodedFrame(index, pts, np.ascontiguousarray(image) if rotation else image)

    def _rewind(self) -> bool:
        if not self._seekable and self.info.kind != "file":
            return False
        if not self._seekable:
            with self._lock:
                if self._closed:
                    return False
                self._container.seek(0)
        self._iter = self._range_frames()
        return True

    def close(self) -> None:
        """Safe to call from another thread while frames are being read; reading then stops."""
        with self._lock:
            if not self._closed:
                self._closed = True
                self._container.close()


def _chain(first: list, rest: Iterator) -> Iterator:
    yield from first
    yield from rest


def _stream_rate(stream) -> tuple[Fraction | None, Fraction]:
    """(constant frame rate or None for VFR/unknown, a nominal rate that is always usable)."""
    average, base = stream.average_rate, stream.base_rate or stream.guessed_rate
    nominal = Fraction(average or base or 25)
    if average and base and abs(float(average) - float(base)) <= 0.002 * float(base):
        return Fraction(base), Fraction(base)
    if base and not average:
        return Fraction(base), Fraction(base)
    return None, nominal.limit_denominator(1001)


def _frame_count(stream, container, nominal: Fraction) -> tuple[int | None, bool]:
    """Frames in the whole stream: exact from the container index where it has one, else an
    estimate from the duration."""
    if stream.frames:
        return int(stream.frames), True
    if stream.duration and stream.time_base:
        return int(round(float(stream.duration * stream.time_base) * nominal)), False
    if container.duration:
        return int(round(container.duration / av.time_base * float(nominal))), False
    return None, False


def _range_count(total: int, first_index: int, frame_range, time_range, fps: Fraction) -> int:
    stop = total
    if frame_range and frame_range[1] is not None:
        stop = min(stop, frame_range[1])
    if time_range and time_range[1] is not None:
        stop = min(stop, int(np.ceil(time_range[1] * float(fps) - 0.5)))
    return max(0, stop - first_index)


def _find_timecode(container, stream) -> str | None:
    for candidate in (stream, *container.streams.data, container):
        tc = candidate.metadata.get("timecode")
        if tc:
            return tc
    return None


# -------------------------------------------------------------------------------- image sequence

def _sequence_files(spec: str) -> list[Path]:
    """The images a folder, glob or printf pattern names, in frame order."""
    path = Path(spec)
    if path.is_dir():
        files = [p for p in path.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith(".")]
        if files:
            common = max({p.suffix.lower() for p in files}, key=lambda s: sum(p.suffix.lower() == s for p in files))
            files = [p for p in files if p.suffix.lower() == common]
        return sorted(files, key=_natural_key)
    if PRINTF_NUMBER.search(path.name):
        return [p for _, p in numbered_files(path.parent, path.name)]
    return sorted((Path(p) for p in glob.glob(spec)), key=_natural_key)


def _natural_key(path: Path):
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", path.name)]


def is_image_sequence(spec: str) -> bool:
    path = Path(spec)
    if path.is_dir() or PRINTF_NUMBER.search(path.name) or any(ch in spec for ch in "*?["):
        return True
    return path.suffix.lower() in IMAGE_EXTENSIONS


def _read_image(path: Path, bit_depth: int) -> np.ndarray | None:
    """An image file as (H, W, 3) RGB at ``bit_depth``; None when it cannot be read."""
    import cv2

    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if image is None:
        return None
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    rgb = image[..., 2::-1] if image.shape[2] >= 3 else np.repeat(image[..., :1], 3, axis=2)
    if rgb.dtype == np.uint8:
        return np.ascontiguousarray(rgb) if bit_depth == 8 else rgb.astype(np.uint16) * 257
    if rgb.dtype == np.uint16:
        return np.ascontiguousarray(rgb) if bit_depth == 16 else to_uint8(rgb)
    scale = 255.0 if bit_depth == 8 else 65535.0  # float EXR/TIFF: [0, 1] linear-as-given
    return (np.clip(rgb, 0.0, 1.0) * scale + 0.5).astype(np.uint8 if bit_depth == 8 else np.uint16)


class ImageSequenceSource(VideoSource):
    """Numbered images read with OpenCV; the n-th file (in frame order) is frame n, at ``fps``.

    An unreadable image, or one whose size differs from the first, is counted in ``frames_bad``
    and skipped.
    """

    def __init__(self, spec: str, *, frame_range=None, time_range=None, bit_depth: int = 8,
                 fps: Fraction | None = None, loop: bool = False):
        super().__init__(loop=loop)
        self.spec = spec
        self.bit_depth = bit_depth
        files = _sequence_files(spec)
        if not files:
            raise InputError(f"no images found for {spec}")
        fps = Fraction(fps or DEFAULT_SEQUENCE_FPS).limit_denominator(1001)
        start, stop = 0, len(files)
        if frame_range:
            start, stop = frame_range[0], min(stop, frame_range[1] if frame_range[1] is not None else stop)
        if time_range:
            start = int(np.ceil(time_range[0] * fps))
            if time_range[1] is not None:
                stop = min(stop, int(np.ceil(time_range[1] * fps)))
        if start >= stop:
            raise InputError(f"no frames in the requested range of {spec} ({len(files)} images)")
        self._files, self._start, self._stop = files, start, stop
        first = self._first_readable()
        height, width = first.shape[:2]
        deep = first.dtype == np.uint16 if bit_depth == 16 else _file_is_deep(files[start])
        partial = bool(frame_range or time_range)
        self.info = SourceInfo(
            path=spec, kind="sequence", container="image2", codec=files[start].suffix.lower().lstrip("."),
            pix_fmt="rgb48le" if deep else "rgb24", width=width, height=height, fps=fps, nominal_fps=fps,
            time_base=1 / fps, frame_count=stop - start, frame_count_exact=True,
            duration_s=len(files) / float(fps),
            colour=ColourInfo(primaries=1, transfer=13, full_range=False).resolved(height),
            bit_depth=16 if deep else 8, start_pts=start if partial else 0, start_index=start,
            stop_index=stop, partial=partial,
        )

    def _first_readable(self) -> np.ndarray:
        for path in self._files[self._start:self._stop]:
            image = _read_image(path, self.bit_depth)
            if image is not None:
                return image
        raise InputError(f"none of the images of {self.spec} could be read")

    def _frames_once(self) -> Iterator[DecodedFrame]:
        shape = (self.info.height, self.info.width, 3)
        for index in range(self._start, self._stop):
            path = self._files[index]
            image = _read_image(path, self.bit_depth)
            if image is None or image.shape != shape:
                self.frames_bad += 1
                why = "unreadable" if image is None else f"size {image.shape[1]}x{image.shape[0]} differs"
                log.warning("%s: %s, skipped", path, why)
                continue
            yield DecodedFrame(index, index, image)

    def _rewind(self) -> bool:
        return True


def _file_is_deep(path: Path) -> bool:
    import cv2

    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    return image is not None and image.dtype != np.uint8


# ------------------------------------------------------------------------------------ dispatcher

def open_source(spec: str, *, frame_range: tuple[int, int | None] | None = None,
                time_range: tuple[float, float | None] | None = None, bit_depth: int = 8,
                fps: Fraction | float | None = None, loop: bool = False,
                options: dict | None = None) -> VideoSource:
    """Open ``spec`` for streaming reads.

    ``frame_range`` (start, stop) counts frames from 0, stop exclusive or None; ``time_range``
    (start_s, end_s) is in seconds from the start of the video stream. ``bit_depth`` 16 returns
    uint16 RGB (10/12-bit sources keep their precision). ``fps`` sets the rate of an image
    sequence. ``loop`` repeats the range for background videos. ``options`` go to FFmpeg's demuxer
    (e.g. ``{"video_size": "1280x720", "framerate": "30"}`` for a camera).
    Raises InputError / ConfigError with one-line messages.
    """
    if bit_depth not in (8, 16):
        raise ConfigError(f"bit depth must be 8 or 16, got {bit_depth}")
    check_ranges(frame_range, time_range)
    if spec.startswith("webcam:") or spec.startswith("/dev/video"):
        return ContainerSource(spec, kind="camera", frame_range=frame_range, time_range=time_range,
                               bit_depth=bit_depth, loop=False, options=options)
    if is_url(spec):
        return ContainerSource(spec, kind="stream", frame_range=frame_range, time_range=time_range,
                               bit_depth=bit_depth, loop=loop, options=options)
    if is_image_sequence(spec):
        return ImageSequenceSource(spec, frame_range=frame_range, time_range=time_range,
                                   bit_depth=bit_depth, fps=fps, loop=loop)
    return ContainerSource(spec, kind="file", frame_range=frame_range, time_range=time_range,
                           bit_depth=bit_depth, loop=loop, options=options)


__all__ = ["SourceInfo", "VideoSource", "ContainerSource", "ImageSequenceSource", "DecodedFrame",
           "open_source"]
