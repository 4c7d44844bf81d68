"""The streaming graph of one video: decode thread -> matting backend -> temporal -> finish -> sink(s).

The decode thread feeds a small bounded queue, the backend pulls a batch only when it has room, and the
sink encodes on its own thread behind another bounded queue, so memory stays flat whatever the video's
length and whichever stage is slowest. The backend yields batches in frame order, so everything after
it sees the video as it was decoded. On any error or Ctrl-C the sink is aborted (nothing is left under
the final name) and the decode thread stops.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import cast

import numpy as np

from birefnet.errors import InputError
from birefnet.pixels import to_uint8
from pipeline.channel import Cancelled, Channel, End, Failure
from pipeline.finish import Finisher
from pipeline.frames import FrameBatch
from pipeline.progress import RunSummary, StageClock
from pipeline.roi import RoiStage
from pipeline.stages import FrameSink, FrameSource
from pipeline.temporal.smoother import TemporalSmoother
from pipeline.termination import raise_if_requested
from workers.base import BatchFailed, MattingBackend
from workers.payload import Images, RegionAlpha

QUEUE_BATCHES = 2  # decoded batches waiting for the matting backend


@dataclass
class StageOutput:
    """One file the video is written to: what the sink writes and the sink."""

    finish: Finisher  # (batch, smoothed alpha) -> what the sink writes: (rgb or None, alpha or None)
    sink: FrameSink


@dataclass
class GraphStages:
    """The per-video pieces the graph connects; built by the caller from the run's settings. Several
    outputs share one decode, matting and smoothing pass."""

    source: FrameSource
    outputs: list[StageOutput]
    smoother: TemporalSmoother
    batch_size: int
    alpha_dtype: str = "uint8"  # uint16 on the 16-bit path, so 10-bit sources keep a fine alpha
    roi: RoiStage | None = None  # crops the model runs on (given boxes or --roi auto); None: whole frames


class _SmoothedAlphas:
    """Pairs smoothed alphas back with their batches; a look-ahead smoother returns them frames late."""

    def __init__(self) -> None:
        self.batches: deque[FrameBatch] = deque()
        self._alphas: np.ndarray | None = None

    def hold(self, batch: FrameBatch) -> None:
        self.batches.append(batch)

    def release(self, alphas: np.ndarray | None) -> Iterator[tuple[FrameBatch, np.ndarray]]:
        """Every held batch whose alphas are now all in, oldest first."""
        if alphas is not None and len(alphas):
            self._alphas = alphas if self._alphas is None else np.concatenate([self._alphas, alphas])
        while self.batches and self._alphas is not None and len(self.batches[0]) <= len(self._alphas):
            batch = self.batches.popleft()
            yield batch, self._alphas[:len(batch)]
            self._alphas = self._alphas[len(batch):]


def matte_batches(backend: MattingBackend, batches: Iterable[FrameBatch], alpha_dtype: str,
                  roi: RoiStage | None = None) -> Iterator[tuple[FrameBatch, np.ndarray]]:
    """Each batch with its full-frame alpha, in order; the batch is the backend's key, so a failure names
    its frames. With ``roi`` the workers matte its crops and paste them into the frame."""
    pairs: Iterable[tuple[FrameBatch, Images]] = ((batch, batch.images) for batch in batches) if roi is None \
        else roi.requests(batches)
    try:
        for batch, alpha in backend.matte(pairs, alpha_dtype):
            if isinstance(alpha, RegionAlpha):
                alpha = cast(RoiStage, roi).record(alpha)
            yield batch, alpha
    except BatchFailed as exc:
        batch = cast(FrameBatch, exc.key)
        raise InputError(f"frames {batch.index}-{batch.stop - 1} {exc}") from exc.cause


def run_graph(stages: GraphStages, backend: MattingBackend, label: str,
              on_frames: Callable[[FrameBatch, dict[str, float]], None] | None = None) -> RunSummary:
    """Stream one video through the stages; returns its summary. Raises the first stage's error."""
    clock = StageClock()
    cancelled = threading.Event()
    decoded = Channel(cancelled, QUEUE_BATCHES)
    frames_in = [0]
    started = time.perf_counter()
    compute_before = backend.stats.compute_seconds

    def update_clock() -> dict[str, float]:
        """Stage seconds so far, and each stage's busy fraction (matting: averaged over the workers)."""
        clock.seconds["matting"] = backend.stats.compute_seconds - compute_before
        clock.seconds["encode"] = sum(out.sink.busy_seconds for out in stages.outputs)
        elapsed = max(time.perf_counter() - started, 1e-9)
        return {stage: seconds / elapsed / (backend.workers if stage == "matting" else 1)
                for stage, seconds in clock.seconds.items()}

    def decode() -> None:
        try:
            batches = stages.source.batches(stages.batch_size)
            while True:
                with clock.time("decode"):
                    batch = next(batches, None)
                if batch is None:
                    break
                frames_in[0] += len(batch)
                decoded.put(batch)
            decoded.put(End)
        except Cancelled:
            pass
        except BaseException as exc:  # handed to the matting stage, which raises it in the main thread
            try:
                decoded.put(Failure(exc))
            except Cancelled:
                pass

    smoothed = _SmoothedAlphas()

    def finish_and_write(pairs: Iterator[tuple[FrameBatch, np.ndarray]]) -> None:
        for batch, alpha in pairs:
            for out in stages.outputs:
                with clock.time("composite"):
                    rgb, out_alpha = out.finish(batch, alpha)
                out.sink.write(batch, rgb, out_alpha)  # queues; blocks while the encoder is behind
            if on_frames is not None:
                on_frames(batch, update_clock())

    decoder = threading.Thread(target=decode, name="decode", daemon=True)
    decoder.start()
    try:
        for batch, alpha in matte_batches(backend, decoded, stages.alpha_dtype, stages.roi):
            raise_if_requested()  # a SIGTERM whose exception a native callback dropped
            smoothed.hold(batch)
            with clock.time("temporal"):
                # motion is measured in 8-bit units; numpy alphas in, numpy alphas out (over the matting
                # stage's, which nothing else reads)
                ready = cast(np.ndarray, stages.smoother.smooth(to_uint8(batch.images), alpha, overwrite_input=True))
            finish_and_write(smoothed.release(ready))
        with clock.time("temporal"):
            held = cast("np.ndarray | None", stages.smoother.flush())
        finish_and_write(smoothed.release(held))
        if smoothed.batches:
            raise RuntimeError(f"temporal smoother kept back {len(smoothed.batches)} batches after flush()")
        raise_if_requested()  # and not past the last batch into a finished output
        written = [out.sink.close() for out in stages.outputs]
    except BaseException:
        cancelled.set()
        for out in stages.outputs:
            out.sink.abort()
        decoder.join(timeout=10)
        raise
    finally:
        stages.smoother.reset()
    decoder.join()
    update_clock()
    return RunSummary(
        input=label, output=", ".join(str(w.path) for w in written), frames_in=frames_in[0],
        frames_out=min(w.frames_written for w in written),
        frames_bad=stages.source.frames_bad, seconds=time.perf_counter() - started,
        stages=dict(clock.seconds), workers=backend.workers,
        roi=stages.roi.report() if stages.roi is not None else None)
