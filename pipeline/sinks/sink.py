"""The encode thread: ``Sink.write`` hands a batch over and returns; converting, encoding and muxing
happen on the sink's own thread, so encoding overlaps decoding and inference.

Batches wait in the run's bounded ``Channel`` (the producer waits rather than memory growing). Every
frame is written at its input timestamp (minus the range start, see ``SourceInfo.start_pts``).
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import Self

import av
import numpy as np

from birefnet.errors import OutputError
from pipeline.channel import Cancelled, Channel, End
from pipeline.encoders import ALPHA_KINDS
from pipeline.frames import FrameBatch
from pipeline.sinks.claim import OutputClaim
from pipeline.sinks.destination import remove_empty_dirs
from pipeline.sinks.writers import SinkSummary, Writer

log = logging.getLogger("birefnet_video")

QUEUE_BATCHES = 2  # batches waiting for the encoder


class Sink:
    """Queues batches to a writer running on its own thread.

    ``write`` raises the encode thread's error, if any, at the next call; ``close`` flushes,
    finishes the audio, renames the output into place and returns a ``SinkSummary``; ``abort``
    stops and removes the temporary output. As a context manager, an exception aborts.
    Arrays passed to ``write`` are read later on the encode thread: do not modify them afterwards.
    """

    def __init__(self, writer: Writer, created_dir: Path | None = None, claim: OutputClaim | None = None,
                 queue_batches: int = QUEUE_BATCHES):
        self.writer = writer
        self._created_dir = created_dir  # removed again by abort() when left empty
        self._claim = claim  # the output name is ours until close() or abort() ends
        self.info = writer.info
        self._stopped = threading.Event()  # set by abort() or by the encode thread's error
        self._channel = Channel(self._stopped, queue_batches)
        self._error: BaseException | None = None
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
        try:
            self._channel.put((batch, rgb, alpha))
        except Cancelled:  # the encode thread failed while we waited
            self._raise_error()
            raise

    def _check(self, batch: FrameBatch, rgb: np.ndarray | None, alpha: np.ndarray | None) -> None:
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
        try:
            for batch, rgb, alpha in self._channel:
                if self._stopped.is_set():
                    return
                started = time.perf_counter()
                try:
                    self._write_batch(batch, rgb, alpha)
                finally:
                    self.busy_seconds += time.perf_counter() - started
        except Cancelled:
            pass
        except BaseException as exc:  # reported to the producer at its next call
            self._error = exc
            self._stopped.set()  # releases a producer waiting on a full channel

    def _write_batch(self, batch: FrameBatch, rgb: np.ndarray | None, alpha: np.ndarray | None) -> None:
        info = self.info
        for i in range(len(batch)):
            pts = batch.pts[i]
            if pts is None:
                pts = info.start_pts + round((batch.index + i - info.start_index) / info.nominal_fps / info.time_base)
            self.writer.write_frame(batch.index + i, pts, None if rgb is None else rgb[i],
                                    None if alpha is None else alpha[i])

    def _raise_error(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            self.abort()
            raise self._one_line(error, "encoding") from error

    def _one_line(self, error: BaseException, doing: str) -> BaseException:
        """An encoder or file-system error as one ``OutputError`` line (disk full, I/O error); others as they are."""
        if isinstance(error, (av.error.FFmpegError, OSError)):
            return OutputError(f"{doing} {self.writer.final} failed: {error.strerror or error}")
        return error

    def close(self) -> SinkSummary:
        if self._closed:
            raise RuntimeError("close() called twice")
        try:
            self._channel.put(End)
        except Cancelled:
            pass  # the encode thread failed: raised below
        self._thread.join()
        self._raise_error()
        self._closed = True
        try:
            summary = self.writer.finish()  # flush, trailer, rename: the disk can fill up here too
        except BaseException as exc:
            self.writer.discard()
            self._release()
            remove_empty_dirs(self.writer.final.parent, self._created_dir)
            error = self._one_line(exc, "finishing")
            if error is exc:
                raise
            raise error from exc
        self._release()
        log.info("wrote %d frames to %s", summary.frames_written, summary.path)
        return summary

    def abort(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._stopped.set()
        self._thread.join()
        self.writer.discard()
        self._release()
        remove_empty_dirs(self.writer.final.parent, self._created_dir)

    def _release(self) -> None:
        if self._claim is not None:
            self._claim.release()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if exc_type is not None:
            self.abort()
        elif not self._closed:
            self.close()
