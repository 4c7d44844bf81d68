"""The job directory: the plan and settings of the job, one ledger row per unit, the parts.

``OUT_DIR/.birefnet-archive/`` holds ``job.json`` (the settings that shape the output, the units, and
the inputs that could not be read, with the reason), ``units/<hash of the unit id>.json`` (one row per
unit: state running / done / failed, frames, seconds, node, error), written atomically by the worker
that runs the unit, ``parts/`` (what the units wrote) and ``ray.log`` (Ray's own messages in the
driver). A row is the truth about its unit: a rerun
redoes every unit whose row does not say done.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from birefnet.atomic import PARTIAL_MARK, write_text
from birefnet.errors import ConfigError, OutputError
from pipeline.sinks.claim import OutputClaim, claim_owner

JOB_DIR_NAME = ".birefnet-archive"


@dataclass
class UnitRow:
    """A unit's record in the ledger."""

    id: str
    video: str
    state: str  # running, done or failed
    frames: int = 0
    seconds: float = 0.0
    node: str = ""
    error: str | None = None
    started: float = 0.0
    pts_offset: int = 0  # part timestamps + this (source time base) = deliverable timestamps
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class JobDir:
    """Paths and records of one archive job under ``out_dir``."""

    def __init__(self, out_dir: str | Path):
        self.out_dir = Path(out_dir)
        self.root = self.out_dir / JOB_DIR_NAME
        self.job_file = self.root / "job.json"
        self.units_dir = self.root / "units"
        self.parts_dir = self.root / "parts"
        self.ray_log = self.root / "ray.log"  # what Ray's C++ core of the driver printed

    def exists(self) -> bool:
        return self.job_file.is_file()

    def claim(self) -> OutputClaim:
        """Held by the run working on the job, for its whole life: a second run on the job is refused, and
        ``driver`` tells the units a live run is matting from those a killed run left 'running'."""
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputError(f"cannot write the job directory {self.root}: {exc.strerror or exc}") from None
        return OutputClaim(self.job_file)

    def driver(self) -> str | None:
        """The pid of the live run holding the job (None: no run is working on it)."""
        return claim_owner(self.job_file)

    def create(self, settings: dict[str, Any], units: list[dict[str, Any]], unreadable: dict[str, str],
               overwrite: bool, video_settings: dict[str, dict[str, Any]] | None = None) -> None:
        """Start or resume the job: a job made with other output-shaping settings is refused, unless
        ``overwrite``, which starts it again from nothing. ``video_settings``: per output, the settings
        its manifest row gives; a video in both runs whose row changed is refused the same way (videos
        added to or dropped from the job are not a change)."""
        video_settings = video_settings or {}
        if self.exists():
            record = self.read_job()
            before = {**record["settings"], **_per_video(record.get("video_settings", {}), video_settings)}
            now = {**settings, **_per_video(video_settings, record.get("video_settings", {}))}
            changed = sorted(k for k in set(before) | set(now) if before.get(k) != now.get(k))
            if changed and not overwrite:
                first = changed[0]
                raise ConfigError(f"{self.out_dir} holds a job made with other settings ({first}: "
                                  f"{before.get(first)!r} then, {now.get(first)!r} now); "
                                  "use --overwrite to redo it")
            if overwrite:
                shutil.rmtree(self.units_dir, ignore_errors=True)
                shutil.rmtree(self.parts_dir, ignore_errors=True)
        try:
            self.units_dir.mkdir(parents=True, exist_ok=True)
            self.parts_dir.mkdir(parents=True, exist_ok=True)
            write_text(self.job_file, json.dumps({"settings": settings, "units": units, "unreadable": unreadable,
                                                  "video_settings": video_settings}, indent=1) + "\n")
        except OSError as exc:
            raise OutputError(f"cannot write the job directory {self.root}: {exc.strerror or exc}") from None

    def read_job(self) -> dict[str, Any]:
        try:
            return json.loads(self.job_file.read_text())
        except (OSError, ValueError) as exc:
            raise ConfigError(f"{self.out_dir}: no readable archive job ({exc})") from None

    def row_path(self, unit_id: str) -> Path:
        return self.units_dir / f"{hashlib.sha1(unit_id.encode()).hexdigest()[:20]}.json"

    def write_row(self, row: UnitRow) -> None:
        write_text(self.row_path(row.id), json.dumps(row.as_dict()) + "\n")

    def rows(self) -> dict[str, UnitRow]:
        """Every readable row, by unit id (an unreadable row counts as no row: the unit is redone). A row a
        worker was still writing (its hidden temporary name) is none: only a committed row is the truth."""
        rows = {}
        for path in sorted(self.units_dir.glob("*.json")):
            if PARTIAL_MARK in path.name:
                continue
            try:
                row = UnitRow(**json.loads(path.read_text()))
            except (OSError, ValueError, TypeError):
                continue
            rows[row.id] = row
        return rows

    def discard_partials(self) -> None:
        """Remove the rows workers killed mid-write left under their temporary names; call it only when no
        worker of the job runs (a live writer's temporary name may come from any node, so no process id
        here can tell a live one from a dead one)."""
        for path in self.units_dir.glob(f"*{PARTIAL_MARK}*"):
            path.unlink(missing_ok=True)


def _per_video(settings: dict[str, dict[str, Any]], other: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """``settings`` of the outputs also in ``other``, flat ("OUTPUT: key"), for comparing two runs."""
    return {f"{output}: {key}": value for output, row in settings.items() if output in other
            for key, value in row.items()}
