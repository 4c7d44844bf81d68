"""The latency-first matting loop behind every display of the live demo.

Frames come in through ``submit`` (from the capture thread or from a browser over the WebSocket) into
a newest-frame-wins slot; one inference thread takes the newest frame whenever it is free, mattes it,
smooths the alpha causally and publishes the result into a second newest-wins slot that displays read.
Frames that arrive while inference is busy replace each other and are counted as dropped, never queued.
"""

from __future__ import annotations

import itertools
import threading
import time
from dataclasses import dataclass

import numpy as np
import torch

from birefnet.boxes import covered_fraction
from birefnet.live_tracking import LiveTracker
from pipeline.webcam.latest import LatestSlot
from pipeline.webcam.stats import RunStats

IDLE_POLL_S = 0.05  # how often a waiting thread re-checks whether the run is over


@dataclass(frozen=True)
class CapturedFrame:
    """One frame as it entered the demo: RGB uint8 (H, W, 3) and when it was captured."""

    index: int
    image: np.ndarray
    captured_at: float


@dataclass(frozen=True)
class MattedFrame:
    """A captured frame with its alpha (H, W) float32 in [0, 1]."""

    frame: CapturedFrame
    alpha: np.ndarray
    matted_at: float
    smoothed: bool


class Engine:
    """Owns the two newest-wins slots, the inference thread and the run's statistics.

    ``predictor`` is a ``birefnet.Predictor`` (torch frames in, alpha on its device out);
    ``smoother`` anything with ``smooth(frames, alphas)`` and ``reset()``
    (``pipeline.temporal.smoother.make_smoother``), or None to never smooth; ``tracker`` a
    ``birefnet.live_tracking.LiveTracker`` to matte crops that follow the subjects (``--roi auto``), or None
    for whole frames. The smoother always sees the whole frame's alpha.
    """

    def __init__(self, predictor, smoother=None, smoothing: bool = True, tracker: LiveTracker | None = None) -> None:
        self.predictor = predictor
        self.smoother = smoother
        self.tracker = tracker
        self.frames: LatestSlot[CapturedFrame] = LatestSlot()
        self.results: LatestSlot[MattedFrame] = LatestSlot()
        self.stats = RunStats()
        self._smoothing = smoothing and smoother is not None
        self._reset_smoother = False
        self._indices = itertools.count()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="webcam-inference", daemon=True)
        self._error: BaseException | None = None
        self._stopped = False

    # -- input -------------------------------------------------------------------------------------

    def submit(self, image: np.ndarray, captured_at: float | None = None) -> None:
        """Offer a new RGB frame; it replaces (and drops) any frame inference has not taken yet."""
        at = time.perf_counter() if captured_at is None else captured_at
        self.stats.frame_captured(at)
        self.frames.put(CapturedFrame(next(self._indices), image, at))

    def end_of_input(self) -> None:
        """No more frames will be submitted: the loop finishes the one in hand and stops."""
        self.frames.close()

    # -- control -----------------------------------------------------------------------------------

    @property
    def smoothing(self) -> bool:
        return self._smoothing

    @smoothing.setter
    def smoothing(self, on: bool) -> None:
        on = bool(on) and self.smoother is not None
        if on and not self._smoothing:
            self._reset_smoother = True  # history from before the pause would smear the first frames
        self._smoothing = on

    def start(self) -> Engine:
        self.stats = RunStats()
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop inference, close the result slot and re-raise an error the inference thread hit."""
        self._stopping.set()
        self.frames.close()
        if self._thread.is_alive():
            self._thread.join()
        self.results.close()
        self.stats.stop()
        self._stopped = True
        if self._error is not None:
            raise self._error

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    # -- output ------------------------------------------------------------------------------------

    def mark_shown(self, result: MattedFrame) -> None:
        """Displays call this once the result is on screen (or sent to the browser)."""
        self.stats.frame_shown(result.frame.index, result.frame.captured_at, result.matted_at)

    @property
    def frames_dropped(self) -> int:
        """Frames replaced before inference took them plus results replaced before any display did; once
        stopped, also what is left in either slot (nothing takes it any more: a web display with no viewer
        leaves a result, the capture one last frame), so every frame captured is shown or dropped."""
        left = self.frames.pending + self.results.pending if self._stopped else 0
        return self.frames.dropped + self.results.dropped + left

    def live_stats(self) -> dict:
        return self.stats.live(self.frames_dropped)

    def report(self) -> dict:
        return self.stats.summary(self.frames_dropped)

    def matte_in_turn(self, images: np.ndarray, timeout: float) -> np.ndarray:
        """Run the engine over recorded frames, each one waited for so that none is dropped (a replay of
        the live path, for tests and benchmarks): their alphas (N, H, W); the engine is stopped after."""
        self.start()
        alphas: list[np.ndarray] = []
        sequence = 0
        try:
            for image in images:
                self.submit(image)
                taken = self.results.take(sequence, timeout=timeout)
                if taken is None:
                    raise RuntimeError(f"the live engine gave no result for frame {len(alphas)} in {timeout} s")
                sequence, result = taken
                alphas.append(result.alpha)
        finally:
            self.end_of_input()
            self.stop()
        return np.stack(alphas)

    # -- inference thread --------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            self._infer_until_stopped()
        except BaseException as exc:  # handed to the thread that calls stop()
            self._error = exc
        finally:
            self.results.close()

    def _infer_until_stopped(self) -> None:
        sequence = 0
        last_shape = None
        while not self._stopping.is_set():
            taken = self.frames.take(sequence, timeout=IDLE_POLL_S)
            if taken is None:
                if self.frames.closed:
                    return
                continue
            sequence, frame = taken
            # torch in, torch out: on a GPU the alpha stays there through smoothing, one copy back
            pixels = torch.from_numpy(frame.image[None])
            alpha = self._matte(pixels)
            smoothed = self._smoothing
            if smoothed:
                if self._reset_smoother or frame.image.shape != last_shape:
                    self.smoother.reset()
                    self._reset_smoother = False
                alpha = self.smoother.smooth(pixels, alpha)
            last_shape = frame.image.shape
            matted_at = time.perf_counter()
            self.stats.frame_matted(matted_at)
            self.results.put(MattedFrame(frame, alpha[0].float().cpu().numpy(), matted_at, smoothed))

    def _matte(self, pixels: torch.Tensor) -> torch.Tensor:
        """Alpha (1, H, W) of one frame (1, H, W, 3): whole, or inside the tracker's crops (whole again when
        they lost the subject)."""
        if self.tracker is None:
            return self.predictor.predict(pixels, dtype="float32")
        height, width = pixels.shape[1:3]
        working = self.predictor.working_size(height, width)
        regions = self.tracker.regions(height, width, working)
        alpha = self.predictor.predict(pixels, dtype="float32", boxes=[regions], margin=0.0)
        rematte = not self.tracker.update(alpha[0].cpu().numpy(), regions, working)
        if rematte:
            regions = [(0, 0, width, height)]
            alpha = self.predictor.predict(pixels, dtype="float32")
            self.tracker.update(alpha[0].cpu().numpy(), regions, working)
        self.stats.frame_cropped(covered_fraction(regions, height, width), rematte, len(regions))
        return alpha
