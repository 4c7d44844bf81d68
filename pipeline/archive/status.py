"""The summary of a running or finished job, from its job directory alone: units done / running /
stopped (left running by a run that is gone; the next run redoes them) / failed / left, frames, fps and
ETA (while a run works on the job), and the failures with their reasons."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from pipeline.archive.ledger import JobDir


@dataclass
class JobStatus:
    units: dict[str, int]  # count per state: done, running, failed, left
    frames_done: int
    frames_total: int
    fps: float
    eta_s: float | None
    failures: list[tuple[str, str]] = field(default_factory=list)  # (video, error)

    def format(self) -> str:
        counts = ", ".join(f"{count} {state}" for state, count in self.units.items())
        eta = "" if self.eta_s is None else f", ETA {self.eta_s:.0f} s"
        lines = [f"units: {counts}; frames {self.frames_done}/{self.frames_total}, {self.fps:.1f} fps{eta}"]
        lines += [f"FAILED {video}: {error}" for video, error in self.failures]
        return "\n".join(lines)


def job_status(out_dir: str | Path) -> JobStatus:
    """The state of every unit of the job in ``out_dir`` as its ledger records it."""
    job = JobDir(out_dir)
    record = job.read_job()
    units = record["units"]
    rows = job.rows()
    live = job.driver() is not None  # without a live run, a 'running' row is a unit a killed run left
    counts = dict.fromkeys(("done", "running", "stopped", "failed", "left"), 0)
    frames_done = frames_total = 0
    failures = list(record.get("unreadable", {}).items())
    done_rows = []
    for unit in units:
        row = rows.get(unit["id"])
        state = row.state if row is not None else "left"
        if state == "running" and not live:
            state = "stopped"
        counts[state if state in counts else "left"] += 1
        frames_total += unit["frames"] or 0
        if row is not None and state == "done":
            frames_done += row.frames
            done_rows.append(row)
        elif row is not None and state == "failed":
            failures.append((unit["video"], row.error or "failed"))
    fps = 0.0
    if done_rows:
        span = max(r.started + r.seconds for r in done_rows) - min(r.started for r in done_rows)
        fps = frames_done / span if span > 0 else 0.0
    left = max(frames_total - frames_done, 0)
    eta = left / fps if fps > 0 and live and (counts["left"] or counts["running"]) else None
    return JobStatus(counts, frames_done, frames_total, fps, eta, failures)
