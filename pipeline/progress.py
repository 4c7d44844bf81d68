"""What a run tells its user: stage clocks, a progress bar (or plain lines), the summary and the JSON report.

A bar on a terminal, one plain line every few seconds when stderr is a file or a pipe (cluster logs),
nothing with ``--quiet``. The summary and the report carry the same numbers.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO

from birefnet.atomic import write_text
from birefnet.errors import OutputError, UserError
from pipeline.termination import Terminated

STAGES = ("decode", "matting", "temporal", "composite", "encode")
LINE_INTERVAL_S = 5.0
SPAN_BAR = "{l_bar}{bar}| {n:.1f}/{total:.1f} s [{elapsed}<{remaining}{postfix}]"  # progress in media time


@contextmanager
def notes_silenced(quiet: bool) -> Iterator[None]:
    """Inside the block, under ``quiet``, the run's remarks on its settings (logger ``birefnet_video.notes``:
    a created directory, an option the codec ignores, editor notes) are not printed. Warnings about the
    data (frames skipped, audio dropped, partial files removed) and errors still are."""
    logger = logging.getLogger("birefnet_video.notes")
    before = logger.level
    if quiet:
        logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(before)


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
    """One input's outcome. ``status``: done, partial (a truncated input, its frames salvaged), skipped
    (complete output exists), failed, interrupted, or not run (the run stopped before it).

    ``frames_bad`` counts only frames that failed to decode. ``frames_listed`` is what the container's
    header lists for the range, an estimate; for a truncated input ``ends_s`` and ``expected_s`` say
    where it ends and where it should (seconds of the range)."""

    input: str
    output: str | None
    status: str = "done"
    error: str | None = None
    frames_in: int = 0
    frames_out: int = 0
    frames_bad: int = 0
    frames_listed: int | None = None
    ends_s: float | None = None
    expected_s: float | None = None
    seconds: float = 0.0
    stages: dict[str, float] = field(default_factory=lambda: dict.fromkeys(STAGES, 0.0))
    workers: int = 1
    alpha: str = ""  # straight or premultiplied, for outputs with alpha
    roi: dict | None = None  # crops' coverage and model pixels per subject pixel (pipeline.roi.RoiStage.report)

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
    if summary.status in ("failed", "interrupted", "not run"):
        return f"{summary.input}: {summary.status.upper()}" + (f": {summary.error}" if summary.error else "")
    dropped = summary.frames_in - summary.frames_out
    stages = ", ".join(f"{stage} {seconds:.1f}s" for stage, seconds in summary.stages.items())
    line = (f"{summary.input} -> {summary.output}: {summary.frames_in} frames in, {summary.frames_out} out, "
            f"{summary.frames_bad} bad, {dropped} dropped; {summary.seconds:.1f} s, {summary.fps:.1f} fps "
            f"({stages})")
    if summary.alpha:
        line += f"; {summary.alpha} alpha"
    if summary.roi:
        cover, scale = summary.roi["coverage"], summary.roi["model_pixels_per_subject_pixel"]
        line += (f"; ROI {summary.roi['mode']}: crops cover {cover['mean']:.1%} of the frame (min {cover['min']:.1%}, "
                 f"max {cover['max']:.1%}), {summary.roi['crops_per_frame']['mean']:.3g} crops per frame, "
                 f"{summary.roi['whole_frames']} frames whole, {scale['roi']:.3g} model px per subject px "
                 f"({scale['full_frame']:.3g} without)")
    if summary.status == "partial":
        listed = f"the container listed {summary.frames_listed} frames, " if summary.frames_listed else ""
        line += (f"; TRUNCATED input: it ends at {summary.ends_s:.2f} s of {summary.expected_s:.2f} s, "
                 f"{listed}{summary.frames_out} came out")
    return line


def totals(summaries: list[RunSummary], status: str = "done", error: str | None = None) -> dict:
    """The whole run (``status``: running, done, partial, failed, interrupted or terminated, with its ``error``):
    sums over inputs, and each input's own record."""
    done = [s for s in summaries if s.status in ("done", "partial")]
    seconds = sum(s.seconds for s in done)
    frames_out = sum(s.frames_out for s in done)
    return {
        "status": status,
        "error": error,
        "frames_in": sum(s.frames_in for s in done),
        "frames_out": frames_out,
        "frames_bad": sum(s.frames_bad for s in done),
        "fps": round(frames_out / seconds, 3) if seconds > 0 else 0.0,
        "seconds": round(seconds, 3),
        "stages": {stage: round(sum(s.stages[stage] for s in done), 3) for stage in STAGES},
        "failed": [s.input for s in summaries if s.status == "failed"],
        "skipped": [s.input for s in summaries if s.status == "skipped"],
        "partial": [s.input for s in summaries if s.status == "partial"],
        "inputs": [s.as_dict() for s in summaries],
    }


def write_report(path: str | Path, summaries: list[RunSummary], status: str = "done",
                 error: str | None = None) -> None:
    """The JSON report of a run (``totals``), written atomically: a report file is always complete."""
    _write_report_text(Path(path), json.dumps(totals(summaries, status, error), indent=2) + "\n")


def ended_by(exc: BaseException) -> tuple[str, str | None]:
    """(status, error) of a run that ``exc`` ended: a user error, Ctrl-C or SIGTERM."""
    if isinstance(exc, Terminated):
        return "terminated", None
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted", None
    return "failed", str(exc)


@contextmanager
def report_if_stopped(path: str | Path | None, inputs: list[str]) -> Iterator[None]:
    """The ``--report`` of a run that stops before its jobs do (importing, planning the outputs): every
    input not run, with the status and error the jobs' own report would give."""
    try:
        yield
    except (UserError, KeyboardInterrupt) as exc:
        if path is not None:
            write_report(path, [RunSummary(name, None, status="not run") for name in inputs], *ended_by(exc))
        raise


def check_report(path: str | Path) -> None:
    """Refuse a ``--report`` path that cannot be written before the run starts, not after it: an empty
    report is written there now, and the run's own replaces it."""
    _write_report_text(Path(path), json.dumps(totals([], "running"), indent=2) + "\n")


def _write_report_text(target: Path, text: str) -> None:
    try:
        if target.is_dir():
            raise IsADirectoryError(21, "Is a directory")
        target.parent.mkdir(parents=True, exist_ok=True)
        write_text(target, text)
    except OSError as exc:
        raise OutputError(f"cannot write report {target}: {exc.strerror or exc}") from None


class Progress:
    """Frames done, fps, ETA and per-stage busy %: a tqdm bar on a terminal, plain lines otherwise.

    ``total`` is a frame count the bar can trust (an image sequence, a range with an end). A container's
    count is an estimate (VFR files, empty index entries), so there the bar runs on media time instead:
    ``span_s`` seconds in all, and each ``update`` says where the frames written so far end (not
    decoded: decoding runs ahead by every queued frame, and the bar sat at 100% while they were matted)."""

    def __init__(self, label: str, total: int | None, quiet: bool = False, stream: IO[str] | None = None,
                 line_interval_s: float = LINE_INTERVAL_S, span_s: float | None = None):
        self.label = label
        self.span_s = span_s or None
        self.total = None if self.span_s else total
        self._written_s = 0.0
        self.stream = stream or sys.stderr
        self.mode = "quiet" if quiet else ("bar" if self.stream.isatty() else "lines")
        self.line_interval_s = line_interval_s
        self.frames = 0
        self._frames_shown = 0  # frames when the last plain line was printed
        self._busy: dict[str, float] = {}
        self._started = time.perf_counter()
        self._last_line = self._started
        self._lock = threading.Lock()
        self._bar = None
        if self.mode == "bar":
            from tqdm import tqdm

            if self.span_s:
                self._bar = tqdm(total=round(self.span_s, 1), desc=label, unit="s", file=self.stream,
                                 dynamic_ncols=True, bar_format=SPAN_BAR)
            else:
                self._bar = tqdm(total=total, desc=label, unit="frame", file=self.stream, dynamic_ncols=True)

    def _done_s(self) -> float:
        return min(self._written_s, self.span_s) if self.span_s else 0.0

    def update(self, frames: int, busy: dict[str, float], written_s: float | None = None) -> None:
        """``frames`` more frames written, ending ``written_s`` into the span; ``busy`` the stages' busy
        fractions so far."""
        with self._lock:
            self.frames += frames
            if written_s is not None:
                self._written_s = written_s
            if self._bar is not None:
                if self.span_s:
                    self._bar.set_postfix_str(f"{self.frames} frames, {_format_busy(busy)}", refresh=False)
                    self._bar.update(round(self._done_s(), 1) - self._bar.n)
                else:
                    self._bar.set_postfix_str(_format_busy(busy), refresh=False)
                    self._bar.update(frames)
            elif self.mode == "lines":
                now = time.perf_counter()
                self._busy = busy
                if now - self._last_line >= self.line_interval_s:
                    self._last_line, self._frames_shown = now, self.frames
                    print(self._line(now - self._started, busy), file=self.stream, flush=True)

    def _line(self, elapsed: float, busy: dict[str, float]) -> str:
        fps = self.frames / elapsed if elapsed > 0 else 0.0
        if self.span_s:
            done_s = self._done_s()
            eta = elapsed * (self.span_s - done_s) / done_s if done_s > 0 else float("nan")
            done = (f"{self.frames} frames, {done_s:.1f}/{self.span_s:.1f} s ({done_s / self.span_s:.0%}), "
                    f"ETA {eta:.0f} s")
        elif self.total:
            eta = (self.total - self.frames) / fps if fps > 0 else float("nan")
            done = f"{self.frames}/{self.total} frames ({self.frames / self.total:.0%}), ETA {eta:.0f} s"
        else:
            done = f"{self.frames} frames"
        return f"{self.label}: {done}, {fps:.1f} fps" + (f"; busy {_format_busy(busy)}" if busy else "")

    def close(self) -> None:
        """Ends the bar; plain lines end with one for the frames since the last (else the last says 26%)."""
        if self._bar is not None:
            self._bar.close()
        elif self.mode == "lines" and self.frames > self._frames_shown:
            self._frames_shown = self.frames
            print(self._line(time.perf_counter() - self._started, self._busy), file=self.stream, flush=True)
