"""A `process` run over one or many inputs: name the outputs, warm the workers once, run each video.

Built for archives on a cluster: an input whose output already exists is skipped (so a rerun resumes),
and an input that fails is reported and the run goes on with the rest; the run then ends with an error
naming every failure. Problems that would hit every input (a bad checkpoint, a bad setting, workers
that keep dying) stop the run at once.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import cast

from birefnet.errors import CheckpointError, ConfigError, UserError
from pipeline.finish import Finisher, ForegroundRefiner
from pipeline.frames import FrameBatch
from pipeline.graph import GraphStages, StageOutput, run_graph
from pipeline.progress import Progress, RunSummary, check_report, ended_by, format_summary, write_report
from pipeline.settings.process import ProcessConfig
from pipeline.sources.reader import VideoSource
from workers.base import BackendConfig, MattingBackend, WorkersLost
from workers.factory import choose_backend, create_backend
from workers.matting import PredictorSpec

FATAL_ERRORS = (CheckpointError, ConfigError, WorkersLost)


class PartialInputs(UserError):
    """Inputs that were truncated: their frames were salvaged and written, but the outputs are short."""

    exit_code = 6

    def __init__(self, partial: list[RunSummary]):
        names = ", ".join(s.input for s in partial)
        super().__init__(f"{len(partial)} input(s) truncated, outputs hold what they had: {names} "
                         "(--allow-partial accepts them)")


class InputsFailed(UserError):
    """Some inputs of a several-input run failed; the others were written."""

    def __init__(self, failures: list[RunSummary], total: int, exit_code: int):
        names = ", ".join(s.input for s in failures)
        super().__init__(f"{len(failures)} of {total} inputs failed: {names}")
        self.exit_code = exit_code


@dataclass(frozen=True)
class Job:
    input: str
    output: str  # as open_sink takes it: a file, a folder or a %d pattern (PNG sequence)


# container of each input's output when several inputs go into one directory
DIRECTORY_SUFFIX = {"rgba": ".mov", "foreground": ".mov", "matte": ".mp4", "composite": ".mp4",
                    "picture+matte": ".mov"}


def directory_suffix(config: ProcessConfig) -> str:
    """``.mov`` (ProRes 4444) for outputs with alpha, ``.mp4`` otherwise, or the ``--codec``'s container;
    '/' (a PNG sequence folder per input) for PNG."""
    if config.codec:
        from pipeline.encoders import CODEC_ALIASES, CODECS

        spec = CODECS.get(CODEC_ALIASES.get(config.codec.lower(), config.codec.lower()))
        if spec is not None:
            return "/" if spec.key == "png" else spec.extensions[0]
    return DIRECTORY_SUFFIX[config.output]


def plan_jobs(inputs: list[str], output: str, config: ProcessConfig) -> list[Job]:
    """One output per input. One input writes ``output`` as given (a folder there is a PNG sequence);
    several inputs make ``output`` a directory receiving ``<input stem><suffix>`` for each."""
    if len(inputs) == 1:
        return [Job(inputs[0], output)]
    target = Path(output)
    if (target.exists() and not target.is_dir()) or (not target.exists() and target.suffix
                                                      and not output.endswith("/")):
        raise ConfigError(f"-o: {len(inputs)} inputs need an output directory, and {output} names a file")
    suffix = directory_suffix(config)
    jobs = [Job(path, str(target / Path(path.rstrip("/")).stem) + suffix) for path in inputs]
    seen: dict[str, str] = {}
    for job in jobs:
        if job.output in seen:
            raise ConfigError(f"-o: inputs {seen[job.output]} and {job.input} would both write {job.output}")
        seen[job.output] = job.input
    return jobs


def output_exists(output: str) -> bool:
    """A finished output is there: the file, or frames of a PNG sequence (sinks rename both into place
    only when complete, so what exists is complete)."""
    from pipeline.media import printf_name
    from pipeline.sinks import DEFAULT_SEQUENCE_NAME, sequence_files

    path = Path(output)
    path = path.with_name(printf_name(path.name))
    if "%" in path.name:
        return bool(sequence_files(path.parent, path.name))
    if path.is_dir():
        return bool(sequence_files(path, DEFAULT_SEQUENCE_NAME))
    return path.exists()


def backend_config(config: ProcessConfig) -> BackendConfig:
    return BackendConfig(kind=config.backend, device=config.device, workers=config.workers,
                         gpus_per_worker=config.gpus_per_worker, in_flight=config.in_flight,
                         ray_address=config.ray_address)


def predictor_spec(config: ProcessConfig) -> PredictorSpec:
    """The predictor every worker builds for these settings."""
    return PredictorSpec(config.model, config.precision, config.resolution, config.runtime, config.upsample)


def build_backend(config: ProcessConfig, inputs_per_call: int | None = None) -> MattingBackend:
    """Workers for the whole run, loaded and warmed up once; ``inputs_per_call`` caps each model call."""
    from dataclasses import replace

    return create_backend(predictor_spec(config), replace(backend_config(config), inputs_per_call=inputs_per_call))


def open_stages(job: Job, config: ProcessConfig, also: Sequence[tuple[str, ProcessConfig]] = ()) -> GraphStages:
    """Source, sinks, smoother and finishers of one video. ``also``: more (output path, settings) pairs
    written in the same pass (their output kind, background and codec settings apply; decoding,
    matting and smoothing follow ``config``). Frames travel as uint16 (the 16-bit path) when the
    source has more than 8 bits and ``bit_depth`` is auto, or when ``bit_depth`` asks for more."""
    from pipeline.media import parse_frame_range
    from pipeline.roi import open_roi
    from pipeline.sinks import open_sink
    from pipeline.sources import open_source
    from pipeline.temporal.smoother import make_smoother

    frame_range = parse_frame_range(config.frames) if config.frames else None
    source = open_source(job.input, frame_range=frame_range, fps=config.sequence_fps)
    depth = source.bit_depth = 16 if (config.bit_depth or source.info.bit_depth) > 8 else 8
    outputs: list[StageOutput] = []
    try:
        options = {"window": config.temporal_window} if config.temporal != "off" else {}
        smoother = make_smoother(config.temporal, **options)
        refiner = None  # one foreground estimate per batch, whichever outputs need it
        for path, settings in [*output_pairs(job.output, config), *also]:
            finish = make_finisher(settings, refiner)
            refiner = refiner or finish.refine
            try:
                sink = open_sink(
                    path, source.info, output=settings.output, codec=settings.codec, crf=settings.crf,
                    preset=settings.preset, bitrate=settings.bitrate, prores_profile=settings.prores_profile,
                    bit_depth=depth, alpha=settings.alpha, audio=settings.audio, overwrite=settings.overwrite,
                    exr_depth=settings.exr_depth, exr_compression=settings.exr_compression,
                    start_number=settings.start_number, model=config.model)
            except BaseException:
                finish.close()
                raise
            outputs.append(StageOutput(finish, sink))
    except BaseException:
        for out in outputs:
            out.sink.abort()
            out.finish.close()
        source.close()
        raise
    height, width = source.info.height, source.info.width
    roi = open_roi(config.roi, config.box, config.boxes, config.roi_margin, height, width, config.roi_coarse,
                   config.roi_subject_pixels, config.model, config.roi_subjects)
    return GraphStages(source, outputs, smoother, config.batch_size, "uint16" if depth == 16 else "uint8", roi)


def output_pairs(output: str, config: ProcessConfig) -> list[tuple[str, ProcessConfig]]:
    """The (path, settings) pairs one output setting writes: ``picture+matte`` is the untouched picture at
    ``output`` and the matte beside it (``matte_path``), both from the same frames and timecode."""
    if config.output != "picture+matte":
        return [(output, config)]
    from dataclasses import replace

    return [(output, replace(config, output="picture")), (matte_path(output), replace(config, output="matte"))]


def matte_path(output: str) -> str:
    """Where the matte of ``picture+matte`` goes: ``shot.mov`` -> ``shot_matte.mov``, ``plate.####.exr`` ->
    ``plate_matte.####.exr``, a folder -> ``<folder>_matte``."""
    from pipeline.media import PRINTF_NUMBER, printf_name

    path = Path(output)
    name = printf_name(path.name)
    number = PRINTF_NUMBER.search(name)
    if number:
        head = name[:number.start()]
        stem = head.rstrip("._-")
        return str(path.with_name(f"{stem}_matte{head[len(stem):]}{name[number.start():]}"))
    if output.endswith(("/", os.sep)) or path.is_dir() or not path.suffix:
        return str(path.parent / f"{path.name}_matte") + "/"
    return str(path.with_name(f"{path.stem}_matte{path.suffix}"))


def make_finisher(config: ProcessConfig, refiner: ForegroundRefiner | None = None) -> Finisher:
    """Foreground cleaning runs on this process's GPU when there is one (and the run is not CPU-only)."""
    import torch

    device = "cuda" if config.device != "cpu" and torch.cuda.is_available() else "cpu"
    compositor = None
    if config.output == "composite":
        from pipeline.composite import Compositor

        compositor = Compositor(config.background, fit=config.background_fit, light_wrap=config.light_wrap,
                                blur_radius=config.blur_radius)
    return Finisher(config.output, config.refine_foreground, compositor, device, refiner)


def alpha_modes(stages: GraphStages) -> str:
    """The alpha (straight, premultiplied) the outputs are written with, for the summary; '' for none."""
    from pipeline.sinks import Sink

    modes = {cast(Sink, out.sink).writer.plan.alpha_mode for out in stages.outputs}
    return ", ".join(sorted(mode for mode in modes if mode))


def run_job(job: Job, config: ProcessConfig, backend: MattingBackend,
            also: Sequence[tuple[str, ProcessConfig]] = ()) -> RunSummary:
    """One video through the graph, to ``job.output`` and to every output in ``also`` (see open_stages);
    the summary names the alpha (straight or premultiplied) the outputs were written with."""
    stages = open_stages(job, config, also)
    source = cast(VideoSource, stages.source)  # open_stages reads through open_source
    info = source.info
    exact = info.frame_count if info.frame_count_exact or info.stop_index is not None else None
    span = info.end_s - info.start_s if info.end_s is not None and info.stop_index is None else None
    progress = Progress(Path(job.input).name, exact, quiet=config.quiet, span_s=span)

    def frames_written(batch: FrameBatch, busy: dict[str, float]) -> None:
        last = batch.pts[-1] if batch.pts else None
        progress.update(len(batch), busy, None if last is None else info.frame_end_s(last))

    try:
        summary = run_graph(stages, backend, job.input, on_frames=frames_written)
        summary.alpha = alpha_modes(stages)
        summary.frames_listed = info.frame_count
        if source.truncation is not None:
            summary.status = "partial"
            summary.ends_s, summary.expected_s = source.truncation.ends_s, source.truncation.expected_s
        return summary
    finally:
        progress.close()
        for out in stages.outputs:
            out.finish.close()
        source.close()


def run_jobs(jobs: list[Job], config: ProcessConfig) -> list[RunSummary]:
    """Every job, each reported as it ends; raises ``InputsFailed`` at the end if any failed, and
    ``PartialInputs`` if any input was truncated (unless ``allow_partial``). The ``--report`` is
    written however the run ends (a model that fails to load, Ctrl-C), with its status."""
    if config.report:
        check_report(config.report)
    summaries: list[RunSummary] = []
    todo = []
    for job in jobs:
        if not config.overwrite and output_exists(job.output):
            summaries.append(RunSummary(job.input, job.output, status="skipped"))
            _announce(summaries[-1], config)
        else:
            todo.append(job)
    status, error, failure_codes = "failed", None, list[int]()
    try:
        todo, inputs_per_call = _check_todo(todo, config, summaries, failure_codes, single=len(jobs) == 1)
        _run_todo(todo, config, summaries, failure_codes, inputs_per_call, single=len(jobs) == 1)
        ended = {s.status for s in summaries}
        status = "failed" if "failed" in ended else "partial" if "partial" in ended else "done"
    except (UserError, KeyboardInterrupt) as exc:
        status, error = ended_by(exc)
        raise
    finally:
        if config.report:
            ran = {s.input for s in summaries}
            left = [RunSummary(j.input, j.output, status="not run") for j in todo if j.input not in ran]
            write_report(config.report, summaries + left, status, error)
    failures = [s for s in summaries if s.status == "failed"]
    if failures:
        raise InputsFailed(failures, len(jobs), failure_codes[0])
    partial = [s for s in summaries if s.status == "partial"]
    if partial and not config.allow_partial:
        raise PartialInputs(partial)
    return summaries


def _check_todo(todo: list[Job], config: ProcessConfig, summaries: list[RunSummary], failure_codes: list[int],
                single: bool) -> tuple[list[Job], int | None]:
    """Check every job before anything expensive starts (``pipeline.preflight``) and the memory the
    settings need for the inputs that passed (``pipeline.limits``). A job that fails its check is
    reported as failed and the others go on; a single job's failure, or a fatal one, is raised.
    Returns the jobs to run and the frames per model call (None: whole batches)."""
    from pipeline.limits import check_memory
    from pipeline.preflight import check_job

    passed, infos = [], []
    for job in todo:
        try:
            info = check_job(job.input, output_pairs(job.output, config), config)
        except FATAL_ERRORS:
            raise
        except UserError as exc:
            _record_failure(job, exc, summaries, failure_codes, single)
            continue
        passed.append(job)
        if info is not None:
            infos.append(info)
    plan = check_memory(config, infos, outputs=len(output_pairs(passed[0].output, config)) if passed else 1)
    return passed, plan.inputs_per_call if plan is not None else None


def _run_todo(todo: list[Job], config: ProcessConfig, summaries: list[RunSummary], failure_codes: list[int],
              inputs_per_call: int | None, single: bool) -> None:
    """Run the jobs, appending a summary per job (also for the one a failure or Ctrl-C stops) and the exit
    code of each failed one; one input's failure, and any fatal one, is raised."""
    if not todo:
        return
    kind, why = choose_backend(backend_config(config))
    if not config.quiet:
        print(f"backend: {'in-process' if kind == 'local' else 'ray'} ({why})", flush=True)
    with build_backend(config, inputs_per_call) as backend:
        for job in todo:
            try:
                summaries.append(run_job(job, config, backend))
            except FATAL_ERRORS as exc:
                summaries.append(RunSummary(job.input, job.output, status="failed", error=str(exc)))
                raise
            except KeyboardInterrupt:
                summaries.append(RunSummary(job.input, job.output, status="interrupted"))
                raise
            except UserError as exc:
                _record_failure(job, exc, summaries, failure_codes, single)
                continue
            _announce(summaries[-1], config)


def _record_failure(job: Job, exc: UserError, summaries: list[RunSummary], failure_codes: list[int],
                    single: bool) -> None:
    """One input failed: its summary, and the error raised (a single input) or reported (several)."""
    summaries.append(RunSummary(job.input, job.output, status="failed", error=str(exc)))
    if single:
        raise exc
    failure_codes.append(exc.exit_code)
    print(f"error: {job.input}: {exc}", file=sys.stderr, flush=True)


def _announce(summary: RunSummary, config: ProcessConfig) -> None:
    if not config.quiet:
        print(format_summary(summary), flush=True)
