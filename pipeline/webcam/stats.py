"""Speed and latency bookkeeping for the live demo: what the overlay shows and what ``--report`` writes.

Every figure comes from timestamps taken on one clock (``time.perf_counter``) at three points of a
frame's life: captured, matted, shown. Latency is shown minus captured, so it includes the wait in
the newest-frame slots, inference, smoothing, rendering and the display itself.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from dataclasses import dataclass

import numpy as np

LIVE_WINDOW_S = 2.0  # the overlay's rates and percentiles cover this many recent seconds
KEPT_TIMINGS = 4096  # the latest shown frames whose timestamps are kept whole (``RunStats.shown``)


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


class LatencyHistogram:
    """Whole-run latency percentiles in fixed memory: counts in logarithmic bins 0.2% wide from 0.01 ms
    to 1000 s, so a demo left running for days keeps a few kilobytes, and a percentile comes out within
    0.1% of numpy's over every latency (the same interpolation between the order statistics, each read
    as its bin's centre); the maximum is kept exactly."""

    LOWEST_MS, RATIO, BINS = 0.01, 1.002, 9220  # 0.01 * 1.002 ** 9220 > 1e6 ms

    def __init__(self) -> None:
        self.counts = np.zeros(self.BINS, np.int64)
        self.total = 0
        self.max_ms: float | None = None

    def add(self, latency_ms: float) -> None:
        ratio = max(latency_ms, self.LOWEST_MS) / self.LOWEST_MS
        self.counts[min(self.BINS - 1, int(math.log(ratio) / math.log(self.RATIO)))] += 1
        self.total += 1
        self.max_ms = latency_ms if self.max_ms is None else max(self.max_ms, latency_ms)

    def percentile(self, q: float) -> float | None:
        if not self.total:
            return None
        rank = q / 100.0 * (self.total - 1)
        below, fraction = int(rank), rank - int(rank)
        cumulative = np.cumsum(self.counts)
        lower, upper = (self._centre(int(np.searchsorted(cumulative, k, side="right")))
                        for k in (below, min(below + 1, self.total - 1)))
        return lower + (upper - lower) * fraction

    def _centre(self, index: int) -> float:
        return self.LOWEST_MS * self.RATIO ** (index + 0.5)


class RunStats:
    """Counts frames at each stage, the latency of every shown frame in a ``LatencyHistogram`` and the
    latest ``KEPT_TIMINGS`` shown frames' timestamps; safe across threads, and of bounded size, as a live
    session may go on for hours."""

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
        self.frames_shown = 0
        self.latency = LatencyHistogram()
        self.shown: deque[FrameTiming] = deque(maxlen=KEPT_TIMINGS)
        self._shown_indices: set[int] = set()  # those of ``shown``: a second viewer shows what one just did
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
            if len(self.shown) == KEPT_TIMINGS:
                self._shown_indices.discard(self.shown[0].index)
            self._shown_indices.add(index)
            self.shown.append(timing)
            self.frames_shown += 1
            self.latency.add(timing.latency_ms)
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
            "frames_shown": self.frames_shown,
            "frames_dropped": frames_dropped,
            "roi_crops": crops,  # None without --roi auto
            "roi_coverage": coverage,
        }

    def summary(self, frames_dropped: int) -> dict:
        """Whole-run figures for ``--report``."""
        end = self.stopped_at if self.stopped_at is not None else time.perf_counter()
        with self._lock:
            elapsed = max(end - self.started_at, 1e-9)
            roi = {"roi_coverage_mean": self._coverage_sum / self.frames_cropped,
                   "roi_frames_rematted": self.frames_rematted} if self.frames_cropped else {}
            return roi | {
                "duration_s": elapsed,
                "capture_fps": self.frames_captured / elapsed,
                "inference_fps": self.frames_matted / elapsed,
                "display_fps": self.frames_shown / elapsed,
                "latency_ms_p50": self.latency.percentile(50),
                "latency_ms_p95": self.latency.percentile(95),
                "latency_ms_max": self.latency.max_ms,
                "frames_captured": self.frames_captured,
                "frames_matted": self.frames_matted,
                "frames_shown": self.frames_shown,
                "frames_dropped": frames_dropped,
            }
