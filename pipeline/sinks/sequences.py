"""Numbered image sequences: PNG, OpenEXR, DPX and TIFF files, ``name.####.ext``, one per frame.

Numbers: a numbered input keeps its own frame numbers; otherwise frame 0 of the input is
``start_number`` (1001 by default, the VFX convention) or the frame count of the input's timecode, and a
``--frames`` range keeps the numbers the frames have in the whole input. Every file stays under its
hidden temporary name until the sequence is complete; the input's audio goes to a WAV file beside them.

Frames are independent files, so ``IMAGE_THREADS`` of them are converted, encoded and written at once
(FFmpeg's own CLI runs its TIFF and PNG encoders frame-threaded too); numbers and names are fixed in
input order before a frame is handed to a thread. DPX and TIFF samples are widened from 8 bits by
``widen_into``, exactly and in one pass, rather than by swscale, whose 8 -> 10-bit shift loses the top codes.
"""

from __future__ import annotations

import logging
import os
import struct
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import NamedTuple, cast

import av
import numpy as np

from birefnet.atomic import AtomicPath, sync_to_disk
from birefnet.errors import ConfigError, OutputError
from pipeline.audio import open_audio
from pipeline.encoders import EncoderPlan, make_frame
from pipeline.media import (
    DEFAULT_START_NUMBER,
    PRINTF_NUMBER,
    shift_timecode,
    timecode_to_frames,
)
from pipeline.sinks.exr import ExrFrames
from pipeline.sinks.writers import SinkSummary, Writer, sequence_files
from pipeline.sources import SourceInfo

log = logging.getLogger("birefnet_video")

DPX_GENERIC_HEADER = 1664  # file + image + orientation headers: all FFmpeg's encoder writes (SMPTE 268M)
DPX_FILM_HEADER, DPX_TV_HEADER = 256, 128  # the industry headers; the TV one holds the SMPTE timecode
TIFF_EXTRA_SAMPLES = 338  # 1: associated (premultiplied) alpha, 2: unassociated (straight)
DEEP_FORMATS = {"gbrp10le": 1, "rgb48le": 3, "rgba64le": 4}  # DPX/TIFF formats -> samples per pixel in plane 0
WIDEN = {np.uint8: np.uint16(257), np.uint16: np.uint16(1)}  # sample type -> factor to 16 bits, exact
IMAGE_THREADS = min(4, os.cpu_count() or 1)  # frames encoded at once (each is its own file)
SYNC_THREADS = 4  # files being written through to the disk at once


def frame_numbering(info: SourceInfo, start_number: int | str | None) -> Callable[[int], int]:
    """Input frame index -> file number (see the module docstring); ``start_number`` 'timecode' takes the
    number from the input's timecode."""
    if start_number is None and info.frame_numbers:
        numbers = info.frame_numbers
        return lambda index: numbers[index]
    if start_number == "timecode":
        if not info.timecode:
            raise ConfigError(f"start_number: {info.path} has no timecode to number the frames from")
        start = timecode_to_frames(info.timecode, info.nominal_fps) - info.start_index
    else:
        start = DEFAULT_START_NUMBER if start_number is None else int(start_number)
    if start + info.start_index < 0:
        raise ConfigError(f"start_number: frame numbers would be negative (first {start + info.start_index})")
    return lambda index: start + index


def _bcd(value: int) -> int:
    return (value // 10) << 4 | value % 10


class Splice(NamedTuple):
    """Bytes ``[start, stop)`` of an encoded file replaced by ``insert``."""

    start: int
    stop: int
    insert: bytes


UNCHANGED = Splice(0, 0, b"")


def dpx_with_timecode(data: memoryview, timecode: str, fps: float) -> Splice:
    """FFmpeg's DPX with the film and television headers added, the latter holding the frame's SMPTE
    timecode and rate (FFmpeg writes neither); offsets and sizes in the file header move to match."""
    order = ">" if data[:4] == b"SDPX" else "<"
    u32 = struct.Struct(order + "I")
    (image_offset,) = u32.unpack_from(data, 4)
    if image_offset != DPX_GENERIC_HEADER:
        return UNCHANGED  # not the layout we know: leave it as it is
    hh, mm, ss, ff = (int(part) for part in timecode.replace(";", ":").split(":"))
    industry = bytearray(b"\xff" * (DPX_FILM_HEADER + DPX_TV_HEADER))  # all bits set: 'undefined' in DPX
    industry[:36] = bytes(36)  # the film header's text fields, empty
    tv = DPX_FILM_HEADER
    u32.pack_into(industry, tv, _bcd(hh) << 24 | _bcd(mm) << 16 | _bcd(ss) << 8 | _bcd(ff))
    struct.pack_into(order + "f", industry, tv + 20, fps)  # temporal sampling rate
    header = bytearray(data[:DPX_GENERIC_HEADER])
    grown = len(industry)
    u32.pack_into(header, 4, image_offset + grown)
    u32.pack_into(header, 16, len(data) + grown)
    u32.pack_into(header, 28, grown)  # industry header size
    (element_offset,) = u32.unpack_from(header, 808)
    u32.pack_into(header, 808, element_offset + grown)
    return Splice(0, DPX_GENERIC_HEADER, bytes(header + industry))


def tiff_with_alpha_kind(data: memoryview, premultiplied: bool) -> Splice:
    """FFmpeg's TIFF with ExtraSamples saying associated (premultiplied) or unassociated (straight) alpha."""
    order = "<" if data[:2] == b"II" else ">"
    (ifd,) = struct.unpack_from(order + "I", data, 4)
    (count,) = struct.unpack_from(order + "H", data, ifd)
    for entry in range(ifd + 2, ifd + 2 + 12 * count, 12):
        if struct.unpack_from(order + "H", data, entry)[0] == TIFF_EXTRA_SAMPLES:
            return Splice(entry + 8, entry + 10, struct.pack(order + "H", 1 if premultiplied else 2))
    return UNCHANGED


def write_spliced(path: Path, data: memoryview, splice: Splice) -> None:
    """``data`` with ``splice`` applied, written to ``path`` without copying ``data`` (4K frames are 33-66 MB)."""
    with open(path, "wb") as handle:
        handle.write(data[:splice.start])
        handle.write(splice.insert)
        handle.write(data[splice.stop:])


def _samples(plane: av.video.plane.VideoPlane, components: int) -> np.ndarray:
    """A 16-bit plane as a writable (H, W, components) array over the frame's own memory."""
    rows = np.frombuffer(memoryview(plane), np.uint16).reshape(plane.height, -1)
    return rows[:, :plane.width * components].reshape(plane.height, plane.width, components)


def widens_exactly(plan: EncoderPlan, rgb: np.ndarray | None, alpha: np.ndarray | None) -> bool:
    """Whether ``widen_into`` writes this picture: straight 8/16-bit samples into DPX/TIFF's 10/16-bit
    formats (10-bit from 8-bit only). The rest (premultiplication, mattes, other formats) is ``make_frame``'s."""
    if plan.pix_fmt not in DEEP_FORMATS or plan.output == "matte" or plan.premultiplied or plan.pad != (0, 0):
        return False
    if rgb is None or (rgb.dtype != np.uint8 and plan.pix_fmt == "gbrp10le"):
        return False
    return not plan.has_alpha or (alpha is not None and alpha.dtype in (np.uint8, np.uint16))


def widen_into(frame: av.VideoFrame, rgb: np.ndarray, alpha: np.ndarray | None) -> None:
    """8/16-bit samples into ``frame`` (a ``DEEP_FORMATS`` frame), widened exactly in one pass over the
    frame's own planes: 8-bit v -> v x 257 for 16 bits, (v x 257) >> 6 = (v << 2) | (v >> 6) for 10 (the
    shift swscale does instead takes 255 to 1020)."""
    components = DEEP_FORMATS[frame.format.name]
    if components == 1:  # planar G, B, R
        pairs = [(rgb[..., c], _samples(frame.planes[plane], 1)[..., 0]) for c, plane in ((0, 2), (1, 0), (2, 1))]
    elif components == 3:  # RGB: one contiguous pass over the whole picture
        pairs = [(rgb, _samples(frame.planes[0], 3))]
    else:
        assert alpha is not None
        packed = _samples(frame.planes[0], 4)
        pairs = [(rgb[..., c], packed[..., c]) for c in range(3)] + [(alpha, packed[..., 3])]
    for source, target in pairs:
        np.multiply(source, WIDEN[source.dtype.type], out=target)
        if components == 1:
            target >>= 6


class FfmpegImageFrames:
    """Frames encoded by one of FFmpeg's image encoders (png, dpx, tiff), each into its own file.

    ``write`` runs on several threads at once: each thread keeps its own encoder and frame buffer
    (FFmpeg's image encoders hold no state between frames, and PyAV encodes without the GIL).
    """

    def __init__(self, plan: EncoderPlan, info: SourceInfo):
        self.plan, self.info, self.fps = plan, info, float(info.nominal_fps)
        self._local = threading.local()

    def _encoder(self) -> av.VideoCodecContext:
        encoder = getattr(self._local, "encoder", None)
        if encoder is None:
            encoder = cast(av.VideoCodecContext, av.CodecContext.create(self.plan.codec.encoder, "w"))
            encoder.width, encoder.height, encoder.pix_fmt = self.info.width, self.info.height, self.plan.pix_fmt
            encoder.time_base = self.info.time_base
            encoder.options = dict(self.plan.options)
            self.plan.colour.tag(encoder)
            self._local.encoder = encoder
        return encoder

    def write(self, path: Path, rgb: np.ndarray | None, alpha: np.ndarray | None, timecode: str | None) -> None:
        encoder = self._encoder()
        if widens_exactly(self.plan, rgb, alpha):
            assert rgb is not None
            frame = getattr(self._local, "frame", None)
            if frame is None:  # one per thread, rewritten every frame: the image encoders keep no reference
                frame = self._local.frame = av.VideoFrame(self.info.width, self.info.height, self.plan.pix_fmt)
                self.plan.colour.tag(frame)
            widen_into(frame, rgb, alpha)
        else:
            frame = make_frame(self.plan, rgb, alpha)
        (packet,) = encoder.encode(frame)  # an image encoder: one packet per frame, no delay
        data = memoryview(packet)
        splice = UNCHANGED
        if self.plan.codec.key == "dpx" and timecode:
            splice = dpx_with_timecode(data, timecode, self.fps)
        if self.plan.codec.key == "tiff" and self.plan.has_alpha:
            splice = tiff_with_alpha_kind(data, self.plan.premultiplied)
        write_spliced(path, data, splice)


class ImageSequenceWriter(Writer):
    """Numbered image files, each under its temporary name until the sequence is complete."""

    def __init__(self, final: Path, info: SourceInfo, plan: EncoderPlan, audio_source: str | None,
                 overwrite: bool, *, start_number: int | str | None = None, model: str | None = None):
        super().__init__(final, info, plan, model)
        self.folder, self.pattern = final.parent, final.name
        self.single = not PRINTF_NUMBER.search(final.name)  # one still image: the file name as given
        self.overwrite = overwrite
        self.audio_source = audio_source
        self.files: list[AtomicPath] = []
        self.number = frame_numbering(info, start_number)
        self.frames: ExrFrames | FfmpegImageFrames = (
            ExrFrames(plan, info.nominal_fps, self.provenance()) if plan.codec.key == "exr"
            else FfmpegImageFrames(plan, info))
        self._pool = ThreadPoolExecutor(IMAGE_THREADS, thread_name_prefix="birefnet-image")
        # Syncing a file waits on the disk, not the CPU: on threads of their own, the image threads go on
        # encoding meanwhile (DPX RGBA writes 16.6 MB a frame at 1080p).
        self._syncs = ThreadPoolExecutor(SYNC_THREADS, thread_name_prefix="birefnet-sync")
        self._pending: deque[Future[Future[None]]] = deque()  # frames being encoded then synced, oldest first

    def write_frame(self, index: int, pts: int, rgb: np.ndarray | None, alpha: np.ndarray | None) -> None:
        if self.single and self.files:
            raise OutputError(f"{self.final} is one image file, and a second frame came; use a pattern or a folder")
        name = self.pattern if self.single else self.pattern % self.number(index)
        file = AtomicPath(self.folder / name)
        self.files.append(file)
        timecode = shift_timecode(self.info.timecode, index - self.info.start_index, self.info.nominal_fps)
        self._pending.append(self._pool.submit(self._write_durably, file.temp, rgb, alpha, timecode))
        self._collect(in_flight=2 * IMAGE_THREADS)

    def _write_durably(self, path: Path, rgb: np.ndarray | None, alpha: np.ndarray | None,
                       timecode: str | None) -> Future[None]:
        """One frame's file encoded on an image thread, then handed to a sync thread (so files are on
        the disk before their renames, not synced one by one at commit)."""
        self.frames.write(path, rgb, alpha, timecode)
        return self._syncs.submit(sync_to_disk, path)

    def _collect(self, in_flight: int) -> None:
        """Count the frames done, oldest first, waiting while more than ``in_flight`` are left (so memory
        stays bounded); a frame's encoding or sync error is raised here, on the sink's thread."""
        while self._pending and (len(self._pending) > in_flight or _settled(self._pending[0])):
            self._pending.popleft().result().result()
            self.frames_written += 1

    def finish(self) -> SinkSummary:
        self._collect(in_flight=0)
        self._pool.shutdown()
        self._syncs.shutdown()
        if self.overwrite and not self.single:
            ours = {file.final.name for file in self.files}
            for stale in sequence_files(self.folder, self.pattern):
                if stale.name not in ours:
                    stale.unlink()
        described = self._write_audio()
        for file in self.files:
            file.commit()
        return self._summary(described)

    def _write_audio(self) -> list[str]:
        if not self.audio_source:
            return []
        end_s = None
        if self.info.partial and self.files:
            end_s = self.info.start_s + self.frames_written / float(self.info.nominal_fps)
        return write_audio_sidecar(self.folder, self.pattern, self.audio_source, self.info.start_s,
                                   self.info.partial, end_s, self.overwrite)

    def discard(self) -> None:
        self._pool.shutdown(cancel_futures=True)  # no frame may land after its file is removed
        self._syncs.shutdown(cancel_futures=True)
        self._pending.clear()
        for file in self.files:
            file.discard()


def _settled(encoding: Future[Future[None]]) -> bool:
    """True once a frame is encoded and its file synced (or either failed)."""
    return encoding.done() and (encoding.exception() is not None or encoding.result().done())


def write_audio_sidecar(folder: Path, pattern: str, source: str, start_s: float, partial: bool,
                        end_s: float | None, overwrite: bool) -> list[str]:
    """``source``'s audio from ``start_s`` (to ``end_s``, None: its end) as ``<name>.wav`` beside the frames
    of ``pattern`` in ``folder`` (image sequences hold no sound); what was carried, described."""
    stem = PRINTF_NUMBER.split(pattern)[0].rstrip("_.- ") or "audio"
    file = AtomicPath(folder / f"{stem}.wav")
    if file.final.exists() and not overwrite:
        log.warning("audio not written: %s exists (use overwrite)", file.final)
        return []
    try:
        with av.open(str(file.temp), "w", format="wav") as out:
            carrier = open_audio(out, source, start_s=start_s, partial=partial, reencode=True)
            if carrier is None:
                described = []
            else:
                carrier.finish(end_s)
                described = [f"{d} -> {file.final.name}" for d in carrier.descriptions]
                carrier.close()
    except BaseException:
        file.discard()
        raise
    if described:
        file.commit()
    else:
        file.discard()
    return described
