"""Video writers: an encoded video file (alpha, matte or composite, with the input's audio) or a PNG
sequence, fed from a background encode thread.

``open_sink(path, info, ...)`` checks the destination (exists, same as input, directory missing or
unwritable), picks the codec from the extension or ``codec``, and starts a ``Sink``. ``Sink.write``
queues a batch (bounded queue: the producer waits rather than memory growing) and returns; the
encode thread converts, encodes and muxes, so encoding overlaps decoding and inference. Every frame
is written at its input timestamp (minus the range start, see ``SourceInfo.start_pts``); the file is
written under a hidden temporary name and renamed when complete, so a crash or ``abort()`` never
leaves a half-written file under the final name.

Alpha is straight (unpremultiplied) by default, which is what ProRes 4444, VP9, PNG and compositing
applications expect; ``premultiplied=True`` multiplies the colour by alpha before encoding, for
tools set up for premultiplied footage.
"""

from __future__ import annotations

import logging
import os
import queue
import shutil
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import av
import numpy as np

from birefnet.errors import ConfigError, OutputError
from pipeline.audio import open_audio
from pipeline.encoders import (ALPHA_KINDS, MUXERS, EncoderPlan, make_frame, plan_encoder,
                               resolve_codec)
from pipeline.frames import FrameBatch
from pipeline.media import PRINTF_NUMBER, is_url, numbered_files, writable_dir_error
from pipeline.sources import SourceInfo

log = logging.getLogger("birefnet_video")

DEFAULT_SEQUENCE_NAME = "frame_%06d.png"


@dataclass
class SinkSummary:
    path: str
    frames_written: int
    codec: str
    pix_fmt: str
    width: int
    height: int
    audio: list[str] = field(default_factory=list)


# ------------------------------------------------------------------------------------- writers

class _Writer:
    """Encodes frames into one destination; all methods run on the encode thread except ``open``."""

    def __init__(self, final: Path, info: SourceInfo, plan: EncoderPlan, premultiplied: bool):
        self.final, self.info, self.plan, self.premultiplied = final, info, plan, premultiplied
        self.frames_written = 0

    def write_frame(self, index: int, pts: int, rgb, alpha) -> None:
        raise NotImplementedError

    def finish(self) -> SinkSummary:
        raise NotImplementedError

    def discard(self) -> None:
        raise NotImplementedError

    def _frame(self, rgb, alpha) -> av.VideoFrame:
        return make_frame(self.plan, rgb, alpha, self.premultiplied)

    def _summary(self, audio: list[str]) -> SinkSummary:
        return SinkSummary(str(self.final), self.frames_written, self.plan.codec.key, self.plan.pix_fmt,
                           self.info.width + self.plan.pad[0], self.info.height + self.plan.pad[1], audio)


class VideoFileWriter(_Writer):
    """One container file: the video stream, plus the audio streams of ``audio_source``."""

    def __init__(self, final: Path, info: SourceInfo, plan: EncoderPlan, premultiplied: bool,
                 audio_source: str | None):
        super().__init__(final, info, plan, premultiplied)
        self.temp = final.with_name(f".{final.stem}.partial-{os.getpid()}{final.suffix}")
        muxer = MUXERS[final.suffix.lower()]
        options = {"movflags": "+faststart"} if muxer == "mp4" else {}
        try:
            self.container = av.open(str(self.temp), "w", format=muxer, options=options)
        except (av.error.FFmpegError, OSError) as exc:
            raise OutputError(f"cannot create {final}: {getattr(exc, 'strerror', None) or exc}") from None
        try:
            self.stream = self._add_video_stream()
            self.audio = open_audio(self.container, audio_source, start_s=info.start_s,
                                    end_s=info.end_s, partial=info.partial)
            self.container.start_encoding()
        except BaseException as exc:
            self.discard()
            if isinstance(exc, av.error.FFmpegError):
                raise ConfigError(f"encoder {plan.codec.encoder} refused the settings: {exc.strerror or exc}") from None
            raise
        self._last_pts: int | None = None

    def _add_video_stream(self):
        info, plan = self.info, self.plan
        stream = self.container.add_stream(plan.codec.encoder, rate=info.nominal_fps, options=plan.options)
        ctx = stream.codec_context
        ctx.width, ctx.height = info.width + plan.pad[0], info.height + plan.pad[1]
        ctx.pix_fmt = plan.pix_fmt
        ctx.time_base = info.time_base
        stream.time_base = info.time_base
        ctx.thread_count = 0
        if plan.bit_rate:
            ctx.bit_rate = plan.bit_rate
        if info.sample_aspect_ratio and info.sample_aspect_ratio != 1:
            ctx.sample_aspect_ratio = info.sample_aspect_ratio
        plan.colour.tag(ctx)
        if plan.codec.key == "h265" and self.final.suffix.lower() in (".mp4", ".mov"):
            ctx.codec_tag = "hvc1"  # the tag QuickTime and Apple devices play
        if info.timecode:
            stream.metadata["timecode"] = info.timecode
        return stream

    def write_frame(self, index: int, pts: int, rgb, alpha) -> None:
        frame = self._frame(rgb, alpha)
        out_pts = pts - self.info.start_pts
        if self._last_pts is not None and out_pts <= self._last_pts:
            out_pts = self._last_pts + 1  # encoders refuse repeated timestamps
        self._last_pts = out_pts
        frame.pts = out_pts
        frame.time_base = self.info.time_base
        for packet in self.stream.encode(frame):
            self.container.mux(packet)
        self.frames_written += 1
        if self.audio is not None:  # a partial run's end is only known at close: no lookahead there
            lookahead = 0.0 if self.info.partial else 0.5
            self.audio.write_until(float(out_pts * self.info.time_base) + lookahead)

    def finish(self) -> SinkSummary:
        for packet in self.stream.encode(None):
            self.container.mux(packet)
        described = []
        if self.audio is not None:
            end_s = None
            if self.info.partial and self._last_pts is not None:
                end_s = float((self._last_pts + self.info.start_pts) * self.info.time_base + 1 / self.info.nominal_fps)
            self.audio.finish(end_s)
            described = self.audio.descriptions
            self.audio.close()
        self.container.close()
        os.replace(self.temp, self.final)
        return self._summary(described)

    def discard(self) -> None:
        try:
            self.container.close()
        except Exception:  # the file is being thrown away; a failing trailer write changes nothing
            pass
        if getattr(self, "audio", None) is not None:
            self.audio.close()
        self.temp.unlink(missing_ok=True)


class ImageSequenceWriter(_Writer):
    """Numbered PNG files (frame n of the input -> number n), written into a hidden folder and moved
    into place when complete; the input's audio goes to a WAV file beside them."""

    def __init__(self, final: Path, info: SourceInfo, plan: EncoderPlan, premultiplied: bool,
                 audio_source: str | None, overwrite: bool):
        super().__init__(final, info, plan, premultiplied)
        self.folder, self.pattern = final.parent, final.name
        self.overwrite = overwrite
        self.temp = self.folder / f".partial-{os.getpid()}"
        self.temp.mkdir(exist_ok=True)
        self.audio_source = audio_source
        self.names: list[str] = []
        encoder = av.CodecContext.create("png", "w")
        encoder.width, encoder.height, encoder.pix_fmt = info.width, info.height, plan.pix_fmt
        encoder.time_base = info.time_base
        self.encoder = encoder

    def write_frame(self, index: int, pts: int, rgb, alpha) -> None:
        name = self.pattern % index
        data = b"".join(bytes(p) for p in self.encoder.encode(self._frame(rgb, alpha)))
        (self.temp / name).write_bytes(data)
        self.names.append(name)
        self.frames_written += 1

    def finish(self) -> SinkSummary:
        if self.overwrite:
            ours = set(self.names)
            for stale in sequence_files(self.folder, self.pattern):
                if stale.name not in ours:
                    stale.unlink()
        described = self._write_audio()
        for name in self.names:
            os.replace(self.temp / name, self.folder / name)
        self.temp.rmdir()
        return self._summary(described)

    def _write_audio(self) -> list[str]:
        """The input's audio as ``<name>.wav`` beside the frames (image sequences hold no sound)."""
        if not self.audio_source:
            return []
        stem = self.pattern[:PRINTF_NUMBER.search(self.pattern).start()].rstrip("_.- ") or "audio"
        final = self.folder / f"{stem}.wav"
        if final.exists() and not self.overwrite:
            log.warning("audio not written: %s exists (use overwrite)", final)
            return []
        temp = self.temp / final.name
        with av.open(str(temp), "w", format="wav") as out:
            carrier = open_audio(out, self.audio_source, start_s=self.info.start_s,
                                 end_s=self.info.end_s, partial=self.info.partial, reencode=True)
            if carrier is None:
                described = []
            else:
                end_s = None
                if self.info.partial and self.names:
                    end_s = self.info.start_s + self.frames_written / float(self.info.nominal_fps)
                carrier.finish(end_s)
                described = [f"{d} -> {final.name}" for d in carrier.descriptions]
                carrier.close()
        if described:
            os.replace(temp, final)
        else:
            temp.unlink(missing_ok=True)
        return described

    def discard(self) -> None:
        shutil.rmtree(self.temp, ignore_errors=True)


def sequence_files(folder: Path, pattern: str) -> list[Path]:
    """Files in ``folder`` whose names fit the printf ``pattern``, by number."""
    return [path for _, path in numbered_files(folder, pattern)]


# --------------------------------------------------------------------------------- encode thread

class Sink:
    """Queues batches to a writer running on its own thread.

    ``write`` raises the encode thread's error, if any, at the next call; ``close`` flushes,
    finishes the audio, renames the output into place and returns a ``SinkSummary``; ``abort``
    stops and removes the temporary output. As a context manager, an exception aborts.
    Arrays passed to ``write`` are read later on the encode thread: do not modify them afterwards.
    """

    def __init__(self, writer: _Writer, created_dir: Path | None = None, queue_batches: int = 2):
        self.writer = writer
        self._created_dir = created_dir  # removed again by abort() when left empty
        self.info = writer.info
        self._queue: queue.Queue = queue.Queue(maxsize=queue_batches)
        self._error: BaseException | None = None
        self._stop = threading.Event()
        self._closed = False
        self.busy_seconds = 0.0  # time the encode thread spent converting and encoding (stage timing)
        self._thread = threading.Thread(target=self._run, name="birefnet-encode", daemon=True)
        self._thread.start()

    @property
    def frames_written(self) -> int:
        return self.writer.frames_written

    def write(self, batch: FrameBatch, rgb: np.ndarray | None, alpha: np.ndarray | None) -> None:
        self._raise_error()
        if self._closed:
            raise RuntimeError("write() after close() or abort()")
        self._check(batch, rgb, alpha)
        self._queue.put((batch, rgb, alpha))

    def _check(self, batch: FrameBatch, rgb, alpha) -> None:
        plan = self.writer.plan
        n, size = len(batch), (self.info.height, self.info.width)
        if plan.output != "matte":
            if rgb is None or rgb.shape != (n, *size, 3) or rgb.dtype not in (np.uint8, np.uint16):
                raise ValueError(f"rgb must be ({n}, {size[0]}, {size[1]}, 3) uint8/uint16, got "
                                 f"{None if rgb is None else (rgb.shape, rgb.dtype)}")
        if plan.output == "matte" or plan.output in ALPHA_KINDS:
            if alpha is None or alpha.shape != (n, *size):
                raise ValueError(f"alpha must be ({n}, {size[0]}, {size[1]}), got "
                                 f"{None if alpha is None else alpha.shape}")

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            if self._error is not None or self._stop.is_set():
                continue  # keep draining so a producer blocked on put() is released
            batch, rgb, alpha = item
            started = time.perf_counter()
            try:
                for i in range(len(batch)):
                    pts = batch.pts[i]
                    if pts is None:
                        pts = self.info.start_pts + round((batch.index + i - self.info.start_index)
                                                          / self.info.nominal_fps / self.info.time_base)
                    self.writer.write_frame(batch.index + i, pts, None if rgb is None else rgb[i],
                                            None if alpha is None else alpha[i])
            except BaseException as exc:  # reported to the producer at its next call
                self._error = exc
            self.busy_seconds += time.perf_counter() - started

    def _raise_error(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            self.abort()
            if isinstance(error, av.error.FFmpegError):
                raise OutputError(f"encoding {self.writer.final} failed: {error.strerror or error}") from error
            raise error

    def close(self) -> SinkSummary:
        if self._closed:
            raise RuntimeError("close() called twice")
        self._queue.put(None)
        self._thread.join()
        self._raise_error()
        self._closed = True
        try:
            summary = self.writer.finish()
        except BaseException:
            self.writer.discard()
            raise
        log.info("wrote %d frames to %s", summary.frames_written, summary.path)
        return summary

    def abort(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        self._queue.put(None)
        self._thread.join()
        self.writer.discard()
        _remove_empty_dirs(self.writer.final.parent, self._created_dir)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            self.abort()
        elif not self._closed:
            self.close()


# ------------------------------------------------------------------------------------ open_sink

def _remove_empty_dirs(folder: Path, top: Path | None) -> None:
    """Remove ``folder`` and its parents up to ``top`` (directories this sink created) if empty."""
    if top is None:
        return
    while True:
        try:
            folder.rmdir()
        except OSError:
            return
        if folder == top:
            return
        folder = folder.parent


def _destination(path: str) -> tuple[Path, str]:
    """(final path, extension) — a folder or printf pattern means a PNG sequence."""
    target = Path(path)
    if PRINTF_NUMBER.search(target.name):
        return target, target.suffix.lower()
    if path.endswith(("/", os.sep)) or (target.exists() and target.is_dir()) or not target.suffix:
        return target / DEFAULT_SEQUENCE_NAME, ".png"
    if target.suffix.lower() == ".png":
        raise ConfigError(f"a PNG output needs a frame-number pattern such as shot_%05d.png or a folder, "
                          f"not {path}")
    return target, target.suffix.lower()


def _check_destination(final: Path, info: SourceInfo, overwrite: bool, sequence: bool) -> Path | None:
    """Refuse a destination we must not write; create a missing directory (returned, else None)."""
    inputs = [info.path] if not is_url(info.path) else []
    for item in inputs:
        src = Path(item)
        if src.exists() and final.exists() and os.path.samefile(src, final):
            raise OutputError(f"output is the input: {final}")
        if src.resolve() == final.resolve():
            raise OutputError(f"output is the input: {final}")
    if sequence:
        if sequence_files(final.parent, final.name) and not overwrite:
            raise OutputError(f"output frames exist in {final.parent} (use --overwrite)")
    elif final.exists() and not overwrite:
        raise OutputError(f"output exists: {final} (use --overwrite)")
    elif final.exists() and final.is_dir():
        raise OutputError(f"output is a directory: {final}")
    parent, created = final.parent, None
    if not parent.exists():
        created = parent
        while not created.parent.exists():
            created = created.parent
        try:
            parent.mkdir(parents=True)
        except OSError as exc:
            raise OutputError(f"cannot create output directory {parent}: {exc.strerror}") from None
        log.warning("created output directory %s", parent)
    problem = writable_dir_error(parent)
    if problem:
        raise OutputError(problem)
    return created


def open_sink(path: str, info: SourceInfo, *, output: str = "rgba", codec: str | None = None,
              crf=None, preset=None, bitrate=None, prores_profile=None, bit_depth: int = 8,
              premultiplied: bool = False, audio: str = "copy", audio_source: str | None = None,
              overwrite: bool = False) -> Sink:
    """Start writing ``path`` for frames described by ``info`` (size, rate, colour, timecode, audio).

    ``output``: 'rgba' / 'foreground' (colour + alpha; needs ProRes 4444, VP9, FFV1, QuickTime
    Animation or PNG), 'composite' (colour only), 'matte' (alpha as grayscale). ``codec`` overrides
    the extension's default (.mov ProRes, .webm VP9, .mp4 H.264, .mkv FFV1, folder or %d pattern PNG).
    ``bit_depth`` is that of the arrays you will write (16: uint16, kept where the codec can).
    ``audio`` 'copy' carries the audio of ``audio_source`` (default: the input file) — copied when the
    container takes its codec, else re-encoded; 'drop' writes none.
    Raises ConfigError (bad settings) or OutputError (destination problems) with one-line messages.
    """
    if audio not in ("copy", "drop"):
        raise ConfigError(f"audio must be 'copy' or 'drop', got {audio!r}")
    if bit_depth not in (8, 16):
        raise ConfigError(f"bit depth must be 8 or 16, got {bit_depth}")
    final, extension = _destination(path)
    spec = resolve_codec(codec, extension, output)
    sequence = spec.key == "png"
    created = _check_destination(final, info, overwrite, sequence)
    plan = plan_encoder(spec, output=output, width=info.width, height=info.height, bit_depth=bit_depth,
                        colour=info.colour, crf=crf, preset=preset, bitrate=bitrate,
                        prores_profile=prores_profile)
    if premultiplied and not plan.has_alpha:
        log.warning("premultiplied has no effect on a %s output", output)
        premultiplied = False
    if audio == "drop":
        audio_source = None
    elif audio_source is None and info.audio and info.kind == "file":
        audio_source = info.path
    try:
        if sequence:
            writer = ImageSequenceWriter(final, info, plan, premultiplied, audio_source, overwrite)
        else:
            writer = VideoFileWriter(final, info, plan, premultiplied, audio_source)
    except BaseException:
        _remove_empty_dirs(final.parent, created)
        raise
    return Sink(writer, created)


__all__ = ["Sink", "SinkSummary", "open_sink", "VideoFileWriter", "ImageSequenceWriter"]
