"""Speed and latency bookkeeping for the live demo: what the overlay shows and what ``--report`` writes.

Every figure comes from timestamps taken on one clock (``time.perf_counter``) at three points of a
frame's life: captured, matted, shown. Latency is shown minus captured, so it includes the wait in
the newest-frame slots, inference, smoothing, rendering and the display itself.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass

import numpy as np

LIVE_WINDOW_S = 2.0  # the overlay's rates and percentiles cover this many recent seconds


@dataclass(frozen=True)
class FrameTiming:
    """One shown frame's timestamps (perf_counter seconds)."""

    index: int
    captured_at: float
    matted_at: float
    shown_at: float

    @property
    def latency_ms(self) -> float:
        return (self.shown_at - self.captured_at) * 1000.0


def percentile_ms(latencies_ms: list[float], q: float) -> float | None:
    return float(np.percentile(latencies_ms, q)) if latencies_ms else None


class RunStats:
    """Counts frames at each stage and keeps the timing of every shown frame; safe across threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.started_at = time.perf_counter()
        self.stopped_at: float | None = None
        self.frames_captured = 0
        self.frames_matted = 0
        # --roi auto: frames matted in crops, the fraction of them inside the crops summed, frames whose crops
        # lost the subject (matted again whole), and the latest frame's crops and coverage (running figures:
        # a live session may go on for hours)
        self.frames_cropped = 0
        self._coverage_sum = 0.0
        self.frames_rematted = 0
        self.last_crops: int | None = None
        self.last_coverage: float | None = None
        self.shown: list[FrameTiming] = []
        self._shown_indices: set[int] = set()
        self._recent: dict[str, deque[float]] = {name: deque() for name in ("captured", "matted")}
        self._recent_shown: deque[FrameTiming] = deque()

    def frame_captured(self, at: float) -> None:
        with self._lock:
            self.frames_captured += 1
            self._note("captured", at)

    def frame_matted(self, at: float) -> None:
        with self._lock:
            self.frames_matted += 1
            self._note("matted", at)

    def frame_cropped(self, coverage: float, rematted: bool, crops: int) -> None:
        with self._lock:
            self.frames_cropped += 1
            self._coverage_sum += coverage
            self.frames_rematted += rematted
            self.last_crops, self.last_coverage = crops, coverage

    def frame_shown(self, index: int, captured_at: float, matted_at: float, at: float | None = None) -> bool:
        """Record the first showing of frame ``index``; later showings (other viewers) are not counted."""
        timing = FrameTiming(index, captured_at, matted_at, time.perf_counter() if at is None else at)
        with self._lock:
            if index in self._shown_indices:
                return False
            self._shown_indices.add(index)
            self.shown.append(timing)
            self._recent_shown.append(timing)
            self._trim(self._recent_shown, timing.shown_at, key=lambda t: t.shown_at)
            return True

    def stop(self) -> None:
        with self._lock:
            if self.stopped_at is None:
                self.stopped_at = time.perf_counter()

    def _note(self, name: str, at: float) -> None:
        self._recent[name].append(at)
        self._trim(self._recent[name], at, key=float)

    @staticmethod
    def _trim(events: deque, now: float, key) -> None:
        while events and key(events[0]) < now - LIVE_WINDOW_S:
            events.popleft()

    def live(self, frames_dropped: int) -> dict:
        """Rates and latency over the last few seconds, for the on-screen overlay."""
        now = time.perf_counter()
        with self._lock:
            window = min(LIVE_WINDOW_S, max(now - self.started_at, 1e-6))
            recent = [t.latency_ms for t in self._recent_shown if t.shown_at >= now - LIVE_WINDOW_S]
            counts = {name: sum(1 for at in events if at >= now - LIVE_WINDOW_S)
                      for name, events in self._recent.items()}
            crops, coverage = self.last_crops, self.last_coverage
        return {
            "capture_fps": counts["captured"] / window,
            "inference_fps": counts["matted"] / window,
            "display_fps": len(recent) / window,
            "latency_ms_p50": percentile_ms(recent, 50),
            "latency_ms_p95": percentile_ms(recent, 95),
            "frames_shown": len(self.shown),
            "frames_dropped": frames_dropped,
            "roi_crops": crops,  # None without --roi auto
            "roi_coverage": coverage,
        }

    def summary(self, frames_dropped: int) -> dict:
        """Whole-run figures for ``--report``."""
        end = self.stopped_at if self.stopped_at is not None else time.perf_counter()
        with self._lock:
            elapsed = max(end - self.started_at, 1e-9)
            latencies = [t.latency_ms for t in self.shown]
            roi = {"roi_coverage_mean": self._coverage_sum / self.frames_cropped,
                   "roi_frames_rematted": self.frames_rematted} if self.frames_cropped else {}
            return roi | {
                "duration_s": elapsed,
                "capture_fps": self.frames_captured / elapsed,
                "inference_fps": self.frames_matted / elapsed,
                "display_fps": len(self.shown) / elapsed,
                "latency_ms_p50": percentile_ms(latencies, 50),
                "latency_ms_p95": percentile_ms(latencies, 95),
                "latency_ms_max": max(latencies) if latencies else None,
                "frames_captured": self.frames_captured,
                "frames_matted": self.frames_matted,
                "frames_shown": len(self.shown),
                "frames_dropped": frames_dropped,
            }
