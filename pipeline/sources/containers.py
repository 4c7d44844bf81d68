"""Reading a file, network stream or camera through PyAV with frame threading.

Ranges are exact on every file: the reader never seeks. It decodes from the first frame and counts
(``FrameClock``), skipping frames before the range without converting them to RGB; a loop reopens the
file. A seek lands wherever the file's index and timestamps say, and on real files (packed B-frames,
broken timestamps) that is not where FFmpeg's frame numbering puts it, so no fast path is kept.

A header's frame count is an estimate (AVI counts empty index entries, MP4 may list a sample that does
not decode): ``frames_bad`` counts only frames that failed to decode, and whether a file is truncated
is judged from time, the end of its last packet against the stream's duration.
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
from pipeline.sources.probe import probe_stream, samples_listed, stream_rate
from pipeline.sources.reader import DecodedFrame, Truncation, VideoSource
from pipeline.sources.timing import FrameClock

log = logging.getLogger("birefnet_video")

MAX_DEMUX_ERRORS = 50  # read errors skipped before a damaged file is given up
# a file is truncated when its last packet ends this much before the stream's duration: the larger of
# a time (a variable-rate file may hold its last picture a while) and a few frames at the nominal rate
TRUNCATION_MIN_S = 0.5
TRUNCATION_FRAMES = 3


def camera_input(spec: str) -> tuple[str, str]:
    """'webcam:N' or a device path -> (url, FFmpeg input format) for this platform."""
    number = spec.split(":", 1)[1] if spec.startswith("webcam:") else None
    if sys.platform == "darwin":
        return (number or spec), "avfoundation"
    if sys.platform.startswith("win"):
        return (f"video={spec}" if number is None else f"video={number}"), "dshow"
    return (f"/dev/video{number}" if number is not None else spec), "v4l2"


# decoders whose 4:2:2 stands on the even luma columns but which do not tag their frames so: swscale would
# read it between the columns, half a pixel to the right (``pipeline.chroma``)
COSITED_UNTAGGED_CODECS = {"prores", "dnxhd", "v210"}


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
        self._options = options
        if kind == "camera":
            url, fmt = camera_input(spec)
            self._container = open_input(url, format=fmt, options=options)
        else:
            if kind == "stream" and spec.lower().startswith("rtsp") and options is None:
                self._options = {"rtsp_transport": "tcp"}
            self._container = open_input(spec, options=self._options, timeout=10.0 if kind == "stream" else None)
        try:
            self._setup(kind, frame_range)
        except BaseException:
            self.close()
            raise

    def _setup(self, kind: str, frame_range: FrameRange | None) -> None:
        container = self._container
        if not container.streams.video:
            raise InputError(f"no video stream in {self.spec}")
        stream = self._stream = _video_stream(container, kind)
        self._tb = stream.time_base or Fraction(1, 90000)
        self._nominal = stream_rate(stream)[1]
        self._frame_range = frame_range
        self._decoded_errors = 0
        self._packet_end: float | None = None  # input seconds where the last packet read so far ends
        self._packets_read = 0
        self._samples_listed = samples_listed(stream, container)  # fewer packets: cut short, however little
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
        (damaged container) resumes at the next readable packet. However the input ends (its end, a
        file cut off mid-packet, too many read errors), the decoder is drained, so no decoded frame
        is lost to frame threading or B-frame delay.

        Each demux + decode step holds ``_lock`` (never across a ``yield``), so ``close()`` from
        another thread waits for the step in progress instead of freeing the container under it.
        """
        stream = self._stream
        demuxer, demux_errors, drained = None, 0, False
        held: av.Packet | None = None
        while not drained:
            with self._lock:
                if self._closed:
                    return
                if demuxer is None:
                    demuxer = self._container.demux(stream)
                packet: av.Packet | None
                try:
                    packet = next(demuxer)
                except (StopIteration, av.error.EOFError):
                    packet = None
                except av.error.FFmpegError as exc:
                    demux_errors += 1
                    log.warning("%s: read error (%s); skipping ahead", self.spec, exc.strerror or exc)
                    demuxer = None
                    if demux_errors <= MAX_DEMUX_ERRORS:
                        continue
                    packet = None
                if packet is not None:
                    self._note_packet_end(packet)
                    if not packet.size:  # PyAV's end-of-stream packet, or an empty entry that holds a picture
                        if packet.pts is not None or packet.dts is not None:
                            continue
                        packet = None
                send: list[av.Packet | None] = []
                if held is not None and packet is None:
                    self._decoded_errors += 1  # a corrupt packet right before the end: the file is cut off
                    # inside it, and a frame-threaded decoder given it loses the frames still in flight
                elif held is not None:
                    send.append(held)
                held = None
                if packet is not None and packet.is_corrupt:
                    held = packet  # decoded once the next packet shows the file goes on
                else:
                    send.append(packet)
                drained = packet is None
                frames = []
                for item in send:
                    try:
                        frames += stream.decode(item)
                    except av.error.EOFError:  # drained already
                        pass
                    except av.error.FFmpegError:
                        self._decoded_errors += 1
            yield from frames

    def _note_packet_end(self, packet: av.Packet) -> None:
        stamp = packet.pts if packet.pts is not None else packet.dts
        if stamp is not None:
            self._packets_read += 1
            end = float((stamp + (packet.duration or 0)) * self._tb)
            self._packet_end = end if self._packet_end is None else max(self._packet_end, end)

    def _range_frames(self) -> Iterator[tuple[int, int, av.VideoFrame]]:
        """(index, pts, frame) of the frames in the range, in presentation order: every pass decodes
        from the first frame and counts, so the range is exact however the file's timestamps lie."""
        first, stop = self._frame_range or (0, None)
        clock = FrameClock(time_base=self._tb, nominal_fps=self._nominal)
        self._packet_end, self._packets_read = None, 0
        for index, pts, frame in clock.frames(self._packets_decoded()):
            if index < first:
                continue
            if stop is not None and index >= stop:
                return
            yield index, pts, frame
        if not self._closed:
            self._account_end()

    def _account_end(self) -> None:
        """At the end of the input: count the frames that failed to decode, and judge from time (the
        last packet's end against the stream's duration) or from an MP4's sample table whether the file
        stops short of its length."""
        errors, self._decoded_errors = self._decoded_errors, 0
        if errors:
            log.warning("%s: %d frame(s) could not be decoded (corrupt data) and were skipped",
                        self.spec, errors)
        self.frames_bad += errors
        info = getattr(self, "info", None)
        if info is None or info.end_s is None or self._packet_end is None or self.truncation is not None:
            return
        missing_s = info.end_s - self._packet_end
        samples_missing = self._samples_listed is not None and self._packets_read < self._samples_listed
        if samples_missing or missing_s > max(TRUNCATION_MIN_S, TRUNCATION_FRAMES / float(self._nominal)):
            self.truncation = Truncation(ends_s=self._packet_end - info.start_s,
                                         expected_s=info.end_s - info.start_s, frames_listed=info.frame_count)
            log.warning("%s: input ends at %.2f s of %.2f s (truncated?)", self.spec, self.truncation.ends_s,
                        self.truncation.expected_s)

    def _frames_once(self) -> Iterator[DecodedFrame]:
        rotation = self.info.rotation
        pending = [self._first] if self._first is not None else []
        self._first = None
        for index, pts, frame in _chain(pending, self._iter):
            image = rotate_upright(frame_to_rgb(frame, self.info.colour, self.bit_depth, alpha=self.alpha),
                                   rotation)
            yield DecodedFrame(index, pts, np.ascontiguousarray(image) if rotation else image)

    def _rewind(self) -> bool:
        """Start the next pass from the file's first frame: reopened, not sought, so no landing point
        is trusted."""
        if self.info.kind != "file":
            return False
        with self._lock:
            if self._closed:
                return False
            self._container.close()
            self._container = open_input(self.spec, options=self._options)
            self._stream = _video_stream(self._container, "file")
        self._iter = self._range_frames()
        return True

    def close(self) -> None:
        """Safe to call from another thread while frames are being read; reading then stops."""
        with self._lock:
            if not self._closed:
                self._closed = True
                self._container.close()


def _video_stream(container: av.container.InputContainer, kind: str) -> av.VideoStream:
    """The first video stream, set up for decoding: frame threads, except for cameras (they add latency);
    frames tagged with their chroma siting where the decoder leaves it out (swscale then reads it there)."""
    stream = container.streams.video[0]
    stream.thread_type = "SLICE" if kind == "camera" else "AUTO"
    stream.codec_context.thread_count = 0
    if stream.codec_context.name in COSITED_UNTAGGED_CODECS:
        stream.codec_context.options = {"chroma_sample_location": "left"}
    return stream


def _chain(first: Iterable, rest: Iterator) -> Iterator:
    yield from first
    yield from rest
