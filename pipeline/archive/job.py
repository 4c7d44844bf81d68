"""The driver of an archive job: find the videos, cut them into units, record the plan, run the units
that are not done on Ray Data, join each finished video's parts, summarise and report.

The driver never touches a frame: workers decode and encode on their own nodes, and only unit
descriptions and ledger rows travel. Killing the driver loses nothing finished: a rerun of the same
command redoes only the units whose ledger row does not say done.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from birefnet.atomic import write_text
from birefnet.errors import ConfigError, InputError, OutputError, UserError
from pipeline.archive.inputs import FoundVideo, find_videos
from pipeline.archive.join import Part, join_parts
from pipeline.archive.ledger import JobDir, UnitRow
from pipeline.archive.processor import UnitProcessorFactory
from pipeline.archive.units import INTRA_CODECS, Unit, plan_units
from pipeline.encoders import resolve_codec
from pipeline.jobs import InputsFailed, directory_suffix, output_exists
from pipeline.progress import STAGES, Progress, RunSummary, format_summary
from pipeline.settings.archive import ArchiveConfig, video_config
from workers.matting import PredictorFactory


@dataclass
class VideoPlan:
    """One video of the job: its output, its units, or why it could not be planned."""

    video: FoundVideo
    output: str
    units: list[Unit] = field(default_factory=list)
    error: str | None = None


@dataclass
class ArchiveResult:
    videos: list[RunSummary]
    units: list[dict[str, Any]]
    units_run: int
    units_skipped: int
    units_failed: int
    join_seconds: dict[str, float] = field(default_factory=dict)  # per output joined in this run
    # wall-clock seconds of the driver's phases: plan (find, cut, ledger), start (Ray, path check),
    # units (the dataset, actor start-up included), join
    phase_seconds: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        # a video that could not be read has no units, so it is counted among the videos only
        videos = {status: sum(1 for v in self.videos if v.status == status) for status in ("done", "skipped", "failed")}
        return {"units_run": self.units_run, "units_skipped": self.units_skipped,
                "units_failed": self.units_failed, **{f"videos_{k}": n for k, n in videos.items()},
                "videos": [v.as_dict() for v in self.videos],
                "units": self.units, "join_seconds": self.join_seconds,
                "phase_seconds": self.phase_seconds}


def plan_videos(videos: list[FoundVideo], out_dir: Path, job: JobDir, config: ArchiveConfig) -> list[VideoPlan]:
    """Outputs mirror the inputs' places under ``out_dir``; a video that cannot be read fails alone.
    Each video's settings are the job's with its manifest row's over them."""
    plans: list[VideoPlan] = []
    seen: dict[str, str] = {}
    for video in videos:
        process = video_config(config, video.settings, video.where) if video.settings else config.process
        suffix = directory_suffix(process)
        output = str(out_dir / video.relative) + suffix
        if output in seen:
            raise ConfigError(f"inputs {seen[output]} and {video.path} would both write {output}")
        seen[output] = video.path
        extension = ".png" if suffix == "/" else suffix
        # a row's frame range is one unit, run as `process --frames` runs it
        cut = resolve_codec(process.codec, extension, process.output).key in INTRA_CODECS and process.frames is None
        smoothing = process.temporal != "off"  # without smoothing, frames around a unit would be matted for nothing
        plan = VideoPlan(video, output)
        try:
            plan.units = plan_units(video.path, output, job.parts_dir / video.relative, suffix if suffix != "/" else "",
                                    segment_seconds=config.segment_seconds,
                                    warmup=config.warmup_frames if smoothing else 0,
                                    lookahead=process.temporal_window if smoothing else 0, cut=cut,
                                    settings=video.settings)
        except InputError as exc:
            plan.error = str(exc)
        plans.append(plan)
    return plans


def unit_is_done(unit: Unit, row: UnitRow | None) -> bool:
    """Done in the ledger, and its part (or the joined output) still there."""
    return row is not None and row.state == "done" and (Path(unit.part).exists() or output_exists(unit.output))


def run_archive(inputs: list[str], out_dir: str, config: ArchiveConfig,
                build_predictor: PredictorFactory | None = None) -> ArchiveResult:
    """The whole job; raises ``InputsFailed`` naming the videos that failed (the rest are written). One
    run works on a job at a time (``JobDir.claim``)."""
    phases: dict[str, float] = {}
    mark = time.perf_counter()
    target = Path(out_dir)
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create {target}: {exc.strerror or exc}") from None
    job = JobDir(target)
    claim = job.claim()
    try:
        return _run_claimed(inputs, job, config, build_predictor, phases, mark)
    finally:
        claim.release()


def _run_claimed(inputs: list[str], job: JobDir, config: ArchiveConfig, build_predictor: PredictorFactory | None,
                 phases: dict[str, float], mark: float) -> ArchiveResult:
    """``run_archive`` once this process holds the job."""
    from workers.dataset import check_paths_on_nodes, native_stderr_to, ray_connection, run_units

    process, target = config.process, job.out_dir
    plans = plan_videos(find_videos(inputs), target, job, config)
    units = [unit for plan in plans for unit in plan.units]
    unreadable = {plan.video.path: plan.error for plan in plans if plan.error}
    job.create(config.output_settings(), [u.as_dict() for u in units], unreadable, process.overwrite,
               {plan.output: plan.video.settings for plan in plans})
    rows = job.rows()
    todo = [u for u in units if not unit_is_done(u, rows.get(u.id))]
    skipped = len(units) - len(todo)
    ran: list[dict[str, Any]] = []
    if todo:
        # Ray's own messages in this process go to the job directory's ray.log, ours stay on the terminal
        with native_stderr_to(str(job.ray_log)), ray_connection(process.ray_address):
            phases["plan"], mark = _lap(mark)
            _check_shared_paths(check_paths_on_nodes, [str(job.root), *sorted({u.video for u in todo})])
            phases["start"], mark = _lap(mark)
            pool = _pool(config)
            factory = UnitProcessorFactory(process, str(target), build_predictor, max(1, int(config.cpus_per_worker)))
            progress = Progress(f"archive ({len(todo)} units)", sum(u.frames or 0 for u in todo), quiet=process.quiet)
            try:
                for row in run_units([u.as_dict() for u in todo], factory, pool, quiet=process.quiet):
                    ran.append(row)
                    progress.update(row["frames"], {})
                    if row["state"] == "failed" and not process.quiet:
                        print(f"error: {row['video']}: {row['error']}", file=sys.stderr, flush=True)
            finally:
                progress.close()
            phases["units"], mark = _lap(mark)
    job.discard_partials()  # no worker runs now: a row under a temporary name was cut off by a kill
    rows = job.rows()
    ran_ids = {row["id"] for row in ran}
    joins: dict[str, float] = {}
    summaries = [_finish_video(plan, rows, ran_ids, process.audio, process.overwrite, joins) for plan in plans]
    for summary in summaries:
        if not process.quiet:
            print(format_summary(summary), flush=True)
    result = ArchiveResult(summaries, [rows[u.id].as_dict() if u.id in rows else {"id": u.id, "state": "left"}
                                       for u in units],
                           units_run=len(ran), units_skipped=skipped,
                           units_failed=sum(1 for row in ran if row["state"] == "failed"), join_seconds=joins,
                           phase_seconds={**phases, "join": _lap(mark)[0]})
    if process.report:
        _write_report(process.report, result)
    failures = [s for s in summaries if s.status == "failed"]
    if failures:
        raise InputsFailed(failures, len(summaries), InputError.exit_code)
    return result


def _lap(mark: float) -> tuple[float, float]:
    """(seconds since ``mark``, now)."""
    now = time.perf_counter()
    return now - mark, now


def _pool(config: ArchiveConfig) -> Any:
    import torch

    from workers.dataset import PoolConfig

    process = config.process
    gpus = process.gpus_per_worker if process.device != "cpu" and torch.cuda.is_available() else 0.0
    resources = dict([config.worker_resource]) if config.worker_resource else {}
    return PoolConfig(workers=process.workers, num_cpus=config.cpus_per_worker,
                      num_gpus=gpus, resources=resources)


def _check_shared_paths(check: Any, paths: list[str]) -> None:
    missing = check(paths)
    if missing:
        node, paths_missing = next(iter(missing.items()))
        raise ConfigError(f"{len(missing)} Ray node(s) cannot see the job's files (e.g. node {node[:12]} lacks "
                          f"{paths_missing[0]}): inputs and -o must be on a filesystem every node shares")


def _finish_video(plan: VideoPlan, rows: dict[str, UnitRow], ran_ids: set[str], audio: str,
                  overwrite: bool, joins: dict[str, float]) -> RunSummary:
    """Join a video whose units are all done (its time into ``joins``); its summary either way."""
    name = plan.video.path
    if plan.error:
        return RunSummary(name, None, status="failed", error=plan.error)
    unit_rows = [rows.get(u.id) for u in plan.units]
    failed = [r for r in unit_rows if r is not None and r.state == "failed"]
    if failed:
        return RunSummary(name, plan.output, status="failed", error=failed[0].error)
    if any(r is None or r.state != "done" for r in unit_rows):
        return RunSummary(name, plan.output, status="failed", error="units left unfinished")
    done = [r for r in unit_rows if r is not None]
    frames = sum(r.frames for r in done)
    seconds = sum(r.seconds for r in done)
    stages = {stage: sum(r.extra.get("stages", {}).get(stage, 0.0) for r in done) for stage in STAGES}
    bad = sum(r.extra.get("frames_bad", 0) for r in done)
    alpha = ", ".join(sorted({r.extra.get("alpha", "") for r in done} - {""}))
    if output_exists(plan.output) and not any(u.id in ran_ids for u in plan.units) and not overwrite:
        return RunSummary(name, plan.output, status="skipped")
    parts = [Part(u.part, r.pts_offset) for u, r in zip(plan.units, done)]
    started = time.perf_counter()
    try:
        joined = join_parts(parts, plan.output, name, audio, plan.units[0].whole)
    except UserError as exc:
        return RunSummary(name, plan.output, status="failed", error=str(exc))
    joins[plan.output] = time.perf_counter() - started
    shutil.rmtree(Path(plan.units[0].part).parent, ignore_errors=True)  # with any partial of a killed worker
    return RunSummary(name, plan.output, frames_in=frames, frames_out=joined, frames_bad=bad, seconds=seconds,
                      stages=stages, alpha=alpha)


def _write_report(path: str, result: ArchiveResult) -> None:
    target = Path(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        write_text(target, json.dumps(result.as_dict(), indent=2) + "\n")
    except OSError as exc:
        raise OutputError(f"cannot write report {target}: {exc.strerror or exc}") from None
