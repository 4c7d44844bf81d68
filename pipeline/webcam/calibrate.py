"""Pick the working resolution for the live demo: the largest that keeps up with the target rate.

Timing a few inferences per candidate on the real device is cheaper and truer than any table: the
candidates are tried from small to large and the search stops at the first one that is too slow, so
a slow CPU never pays for a 1024 px inference it will not use.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import numpy as np

log = logging.getLogger("birefnet_video")

P = TypeVar("P")  # whatever predictor make_predictor builds

CANDIDATES = (256, 384, 512, 640, 768, 1024)
HEADROOM = 0.8  # inference may use this share of the frame interval; the rest is capture, smoothing, display
TIMED_RUNS = 3
CALIBRATION_FRAME = (720, 1280)  # (H, W): a typical webcam picture; resizing it is part of the cost


@dataclass(frozen=True)
class Calibration:
    resolution: int
    inference_ms: float  # median over the timed runs at ``resolution``
    holds_target: bool


def warm_up(predictor, frame: np.ndarray | None = None) -> None:
    """One untimed inference: lazy allocations and kernel selection happen here, not on live frames."""
    frame = np.zeros((*CALIBRATION_FRAME, 3), np.uint8) if frame is None else frame
    predictor.predict(frame[None], dtype="float32")


def time_inference(predictor, frame: np.ndarray, runs: int = TIMED_RUNS) -> float:
    """Median milliseconds of ``predictor.predict`` on one frame, after a warm-up run."""
    warm_up(predictor, frame)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        predictor.predict(frame[None], dtype="float32")
        times.append((time.perf_counter() - start) * 1000.0)
    return float(np.median(times))


def pick_resolution(make_predictor: Callable[[int], P], fps_target: float,
                    candidates: tuple[int, ...] = CANDIDATES) -> tuple[P, Calibration]:
    """The predictor at the largest candidate resolution whose inference fits ``HEADROOM / fps_target``.

    ``make_predictor(side)`` builds a predictor working at ``side`` x ``side``. When even the smallest
    candidate is too slow, that one is used and ``holds_target`` is False.
    """
    budget_ms = 1000.0 * HEADROOM / fps_target
    frame = np.zeros((*CALIBRATION_FRAME, 3), np.uint8)
    chosen: tuple[P, Calibration] | None = None
    for side in sorted(candidates):
        predictor = make_predictor(side)
        inference_ms = time_inference(predictor, frame)
        log.info("calibration: %d px takes %.1f ms per frame (budget %.1f ms)", side, inference_ms, budget_ms)
        fits = inference_ms <= budget_ms
        if chosen is None or fits:
            chosen = (predictor, Calibration(side, inference_ms, fits))
        if not fits:
            break
    assert chosen is not None, "no candidate resolutions"
    return chosen
