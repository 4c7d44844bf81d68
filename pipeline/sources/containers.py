"""Reading a file, network stream or camera through PyAV with frame threading.

Ranges: for constant-frame-rate seekable files the reader seeks to the keyframe before the range and
decodes forward, deriving each frame's index from its timestamp; for VFR, streams and cameras it decodes
from the start and skips (without RGB conversion) up to the range.
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Iterable, Iterator
from fractions import Fraction

import av
import numpy as np

from birefnet.errors import InputError
from pipeline.colour import frame_to_rgb
from pipeline.media import FrameRange, open_input
from pipeline.sources.probe import probe_stream, stream_rate
from pipeline.sources.reader import DecodedFrame, VideoSource
from pipeline.sources.timing import FrameClock

log = logging.getLogger("birefnet_video")

MAX_DEMUX_ERRORS = 50  # read errors skipped before a damaged file is given up


def camera_input(spec: str) -> tuple[str, str]:
    """'webcam:N' or a device path -> (url, FFmpeg input format) for this platform."""
    number = spec.split(":", 1)[1] if spec.startswith("webcam:") else None
    if sys.platform == "darwin":
        return (number or spec), "avfoundation"
    if sys.platform.startswith("win"):
        return (f"video={spec}" if number is None else f"video={number}"), "dshow"
    return (f"/dev/video{number}" if number is not None else spec), "v4l2"


def rotate_upright(image: np.ndarray, rotation: int) -> np.ndarray:
    """Apply a display-matrix rotation (degrees counter-clockwise, as ``VideoFrame.rotation``)
    so the picture stands as players show it. Returns a view."""
    turns = (round(rotation / 90) % 4)
    return np.rot90(image, k=turns) if turns else image


class ContainerSource(VideoSource):
    """A container's first video stream, read in presentation order; ``kind`` is file, stream or camera.

    ``alpha`` keeps the picture's alpha channel (RGBA pictures), for reading back outputs.
    """

    def __init__(self, spec: str, *, kind: str, frame_range: FrameRange | None = None, bit_depth: int = 8,
                 loop: bool = False, alpha: bool = False, options: dict | None = None):
        super().__init__(loop=loop, bit_depth=bit_depth)
        self.spec = spec
        self.alpha = alpha
        self._lock = threading.Lock()
        self._closed = False
        if kind == "camera":
            url, fmt = camera_input(spec)
            self._container = open_input(url, format=fmt, options=options)
        else:
            if kind == "stream" and spec.lower().startswith("rtsp") and options is None:
                options = {"rtsp_transport": "tcp"}
            self._container = open_input(spec, options=options, timeout=10.0 if kind == "stream" else None)
        try:
            self._setup(kind, frame_range)
        except BaseException:
            self.close()
            raise

    def _setup(self, kind: str, frame_range: FrameRange | None) -> None:
        container = self._container
        if not container.streams.video:
            raise InputError(f"no video stream in {self.spec}")
        stream = self._stream = container.streams.video[0]
        stream.thread_type = "SLICE" if kind == "camera" else "AUTO"  # frame threads add latency
        stream.codec_context.thread_count = 0
        self._tb = stream.time_base or Fraction(1, 90000)
        self._fps, self._nominal = stream_rate(stream)
        self._stream_start = stream.start_time if stream.start_time is not None else 0
        self._seekable = kind == "file" and self._fps is not None
        self._frame_range = frame_range
        self._decoded_errors = 0
        self._first: tuple[int, int, av.VideoFrame] | None = None
        self._iter = self._range_frames()
        try:
            self._first = next(self._iter)
        except StopIteration:
            what = "frames in the requested range" if frame_range else "video frames"
            raise InputError(f"no {what} in {self.spec}") from None
        self.info = probe_stream(self.spec, kind, container, stream, self._first, frame_range)

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
                    if demux_errors > MAX_DEMUX_ERRORS:
                        return
                    demuxer = None
                    continue
                try:
                    frames = stream.decode(packet)
                except av.error.FFmpegError:
                    self._decoded_errors += 1
                    continue
            yield from frames

    def _seek_to_range(self, first: int) -> bool:
        """Seek to the keyframe before frame ``first``; False when the file cannot seek (decode and count)."""
        if self._fps is None:
            return False
        try:
            with self._lock:
                if self._closed:
                    return False
                target_s = first / self._fps
                self._container.seek(self._stream_start + int(target_s / self._tb), stream=self._stream,
                                     backward=True)
            return True
        except av.error.FFmpegError:  # an unindexed file: decode from where we are and count
            log.info("%s: cannot seek; decoding from the start to reach the range", self.spec)
            return False

    def _range_frames(self) -> Iterator[tuple[int, int, av.VideoFrame]]:
        """(index, pts, frame) of the frames in the range, in presentation order."""
        first, stop = self._frame_range or (0, None)
        index_from_pts = self._seekable and bool(first or self.loop) and self._seek_to_range(first)
        if self._closed:
            return
        clock = FrameClock(stream_start=self._stream_start, time_base=self._tb, fps=self._fps,
                           nominal_fps=self._nominal, index_from_pts=index_from_pts)
        delivered = 0
        for frame in self._packets_decoded():
            index, pts = clock.place(frame)
            if index < first:
                continue
            if stop is not None and index >= stop:
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
        if info is not None and info.frame_count is not None and info.stop_index is None:
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
        pending = [self._first] if self._first is not None else []
        self._first = None
        for index, pts, frame in _chain(pending, self._iter):
            image = rotate_upright(frame_to_rgb(frame, self.info.colour, self.bit_depth, alpha=self.alpha),
                                   rotation)
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


def _chain(first: Iterable, rest: Iterator) -> Iterator:
    yield from first
    yield from rest
