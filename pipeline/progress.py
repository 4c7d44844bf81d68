"""What a run tells its user: stage clocks, a progress bar (or plain lines), the summary and the JSON report.

A bar on a terminal, one plain line every few seconds when stderr is a file or a pipe (cluster logs),
nothing with ``--quiet``. The summary and the report carry the same numbers.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Iterator

from birefnet.atomic import write_text
from birefnet.errors import OutputError

STAGES = ("decode", "matting", "temporal", "composite", "encode")
LINE_INTERVAL_S = 5.0


class StageClock:
    """Busy seconds per stage; each stage is timed only by the one thread that runs it."""

    def __init__(self) -> None:
        self.seconds = dict.fromkeys(STAGES, 0.0)

    @contextmanager
    def time(self, stage: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[stage] += time.perf_counter() - started


@dataclass
class RunSummary:
    """One input's outcome. ``status``: done, skipped (complete output exists) or failed."""

    input: str
    output: str | None
    status: str = "done"
    error: str | None = None
    frames_in: int = 0
    frames_out: int = 0
    frames_bad: int = 0
    seconds: float = 0.0
    stages: dict[str, float] = field(default_factory=lambda: dict.fromkeys(STAGES, 0.0))
    workers: int = 1
    alpha: str = ""  # straight or premultiplied, for outputs with alpha

    @property
    def fps(self) -> float:
        return self.frames_out / self.seconds if self.seconds > 0 else 0.0

    def busy(self) -> dict[str, float]:
        """Fraction of the run each stage was busy (matting: averaged over the workers)."""
        if self.seconds <= 0:
            return dict.fromkeys(self.stages, 0.0)
        return {stage: seconds / self.seconds / (self.workers if stage == "matting" else 1)
                for stage, seconds in self.stages.items()}

    def as_dict(self) -> dict:
        data = asdict(self)
        data["fps"] = round(self.fps, 3)
        data["seconds"] = round(self.seconds, 3)
        data["stages"] = {k: round(v, 3) for k, v in self.stages.items()}
        return data


def _format_busy(busy: dict[str, float]) -> str:
    return " ".join(f"{stage} {fraction:.0%}" for stage, fraction in busy.items())


def format_summary(summary: RunSummary) -> str:
    """One line per input: where it went, frames in/out/bad, seconds, fps, seconds per stage."""
    if summary.status == "skipped":
        return f"{summary.input}: skipped, {summary.output} exists (use --overwrite to replace it)"
    if summary.status == "failed":
        return f"{summary.input}: FAILED: {summary.error}"
    dropped = summary.frames_in - summary.frames_out
    stages = ", ".join(f"{stage} {seconds:.1f}s" for stage, seconds in summary.stages.items())
    alpha = f"; {summary.alpha} alpha" if summary.alpha else ""
    return (f"{summary.input} -> {summary.output}: {summary.frames_in} frames in, {summary.frames_out} out, "
            f"{summary.frames_bad} bad, {dropped} dropped; {summary.seconds:.1f} s, {summary.fps:.1f} fps "
            f"({stages}){alpha}")


def totals(summaries: list[RunSummary]) -> dict:
    """The whole run: sums over inputs, and each input's own record."""
    done = [s for s in summaries if s.status == "done"]
    seconds = sum(s.seconds for s in done)
    frames_out = sum(s.frames_out for s in done)
    return {
        "frames_in": sum(s.frames_in for s in done),
        "frames_out": frames_out,
        "frames_bad": sum(s.frames_bad for s in done),
        "fps": round(frames_out / seconds, 3) if seconds > 0 else 0.0,
        "seconds": round(seconds, 3),
        "stages": {stage: round(sum(s.stages[stage] for s in done), 3) for stage in STAGES},
        "failed": [s.input for s in summaries if s.status == "failed"],
        "skipped": [s.input for s in summaries if s.status == "skipped"],
        "inputs": [s.as_dict() for s in summaries],
    }


def write_report(path: str | Path, summaries: list[RunSummary]) -> None:
    """The JSON report of a run (``totals``), written atomically: a report file is always complete."""
    target = Path(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        write_text(target, json.dumps(totals(summaries), indent=2) + "\n")
    except OSError as exc:
        raise OutputError(f"cannot write report {target}: {exc.strerror or exc}") from None


class Progress:
    """Frames done, fps, ETA and per-stage busy %: a tqdm bar on a terminal, plain lines otherwise."""

    def __init__(self, label: str, total: int | None, quiet: bool = False, stream: IO[str] | None = None,
                 line_interval_s: float = LINE_INTERVAL_S):
        self.label = label
        self.total = total
        self.stream = stream or sys.stderr
        self.mode = "quiet" if quiet else ("bar" if self.stream.isatty() else "lines")
        self.line_interval_s = line_interval_s
        self.frames = 0
        self._started = time.perf_counter()
        self._last_line = self._started
        self._lock = threading.Lock()
        self._bar = None
        if self.mode == "bar":
            from tqdm import tqdm

            self._bar = tqdm(total=total, desc=label, unit="frame", file=self.stream, dynamic_ncols=True)

    def update(self, frames: int, busy: dict[str, float]) -> None:
        """``frames`` more frames written; ``busy`` the stages' busy fractions so far."""
        with self._lock:
            self.frames += frames
            if self._bar is not None:
                self._bar.set_postfix_str(_format_busy(busy), refresh=False)
                self._bar.update(frames)
            elif self.mode == "lines":
                now = time.perf_counter()
                if now - self._last_line >= self.line_interval_s:
                    self._last_line = now
                    print(self._line(now - self._started, busy), file=self.stream, flush=True)

    def _line(self, elapsed: float, busy: dict[str, float]) -> str:
        fps = self.frames / elapsed if elapsed > 0 else 0.0
        if self.total:
            eta = (self.total - self.frames) / fps if fps > 0 else float("nan")
            done = f"{self.frames}/{self.total} frames ({self.frames / self.total:.0%}), ETA {eta:.0f} s"
        else:
            done = f"{self.frames} frames"
        return f"{self.label}: {done}, {fps:.1f} fps; busy {_format_busy(busy)}"

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
