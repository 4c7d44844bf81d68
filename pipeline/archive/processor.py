"""One unit on the worker that runs it: decode its frames, matte, smooth and encode them into its part.

The pieces are `process`'s own (``pipeline.jobs.open_stages``, ``pipeline.graph.run_graph``); the unit
only narrows the frame range to its decode window and trims what is written to its own frames. The
worker records the unit in the ledger when it starts and when it ends, so the ledger does not depend
on the driver living. Any error of the unit is its result (state failed), not a crash of the worker:
a unit that fails for a reason in its data is not retried.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, cast

import numpy as np

from birefnet.errors import UserError
from pipeline.archive.ledger import JobDir, UnitRow
from pipeline.archive.units import Unit
from pipeline.frames import FrameBatch
from pipeline.graph import StageOutput, run_graph
from pipeline.jobs import Job, alpha_modes, open_stages, predictor_spec
from pipeline.progress import RunSummary
from pipeline.settings.process import ProcessConfig
from pipeline.sources import VideoSource
from pipeline.stages import FrameSink, WrittenOutput
from workers.base import BackendConfig, MattingBackend
from workers.factory import create_backend
from workers.matting import PredictorFactory


class TrimmedSink:
    """Passes on only frames ``[start, stop)``: a unit's warm-up and look-ahead frames are smoothed
    with it but written by its neighbours."""

    def __init__(self, sink: FrameSink, start: int, stop: int | None):
        self.sink, self.start, self.stop = sink, start, stop

    @property
    def busy_seconds(self) -> float:
        return self.sink.busy_seconds

    @busy_seconds.setter
    def busy_seconds(self, seconds: float) -> None:
        self.sink.busy_seconds = seconds

    def write(self, batch: FrameBatch, rgb: np.ndarray | None, alpha: np.ndarray | None) -> None:
        low = max(self.start - batch.index, 0)
        high = len(batch) if self.stop is None else min(self.stop - batch.index, len(batch))
        if high <= low:
            return
        if (low, high) != (0, len(batch)):
            batch = FrameBatch(batch.index + low, batch.images[low:high], batch.pts[low:high], batch.time_base)
            rgb = None if rgb is None else rgb[low:high]
            alpha = None if alpha is None else alpha[low:high]
        self.sink.write(batch, rgb, alpha)

    def close(self) -> WrittenOutput:
        return self.sink.close()

    def abort(self) -> None:
        self.sink.abort()


def unit_config(config: ProcessConfig, unit: Unit) -> ProcessConfig:
    """The settings of one unit's run: its video's own settings, its decode window (a whole video: the
    range its row gives, if any); a cut video's audio is added by the join."""
    config = replace(config, **unit.settings)
    if unit.whole:
        frames = config.frames
    else:
        frames = f"{unit.decode_start}:{'' if unit.decode_stop is None else unit.decode_stop}"
    return replace(config, frames=frames, audio=config.audio if unit.whole else "drop", overwrite=True,
                   quiet=True, report=None)


@dataclass(frozen=True)
class UnitProcessorFactory:
    """Builds a ``UnitProcessor`` inside a worker; small and picklable (Ray sends it to every node).
    ``build_predictor`` None: the model of ``config``."""

    config: ProcessConfig
    out_dir: str
    build_predictor: PredictorFactory | None = None
    threads: int = 1

    def __call__(self) -> UnitProcessor:
        return UnitProcessor(self)


class UnitProcessor:
    """One predictor for every unit the worker runs; ``__call__`` runs a unit and returns its ledger row."""

    def __init__(self, factory: UnitProcessorFactory):
        started = time.perf_counter()
        import torch

        torch.set_num_threads(factory.threads)
        config = self.config = factory.config
        self.job = JobDir(factory.out_dir)
        build = factory.build_predictor or predictor_spec(config)
        self.build_error: str | None = None  # a bad checkpoint fails every unit with its reason, at once
        try:
            self.backend: MattingBackend = create_backend(build, BackendConfig(kind="local", device=config.device))
        except UserError as exc:
            self.build_error = str(exc)
        # the worker's own start-up (imports, model build), recorded with the first unit it runs
        self.startup_s: float | None = time.perf_counter() - started

    def __call__(self, unit_fields: dict[str, Any], node: str) -> dict[str, Any]:
        unit = Unit.from_dict(unit_fields)
        row = UnitRow(unit.id, unit.video, "running", node=node, started=time.time(), extra={"pid": os.getpid()})
        if self.startup_s is not None:
            row.extra["startup_s"], self.startup_s = self.startup_s, None
        self.job.write_row(row)
        try:
            if self.build_error:
                raise RuntimeError(self.build_error)
            summary, row.pts_offset = self._run(unit)
            row.frames = summary.frames_out
            row.extra.update(stages=summary.stages, frames_bad=summary.frames_bad, alpha=summary.alpha)
            row.state = "done"
        except Exception as exc:  # the unit's result, recorded; the worker goes on with the next unit
            row.state, row.error = "failed", str(exc) or type(exc).__name__
        row.seconds = time.time() - row.started
        self.job.write_row(row)
        return row.as_dict()

    def _run(self, unit: Unit) -> tuple[RunSummary, int]:
        """(the part's run summary, timestamp offset of the part in the source's time base)."""
        Path(unit.part).parent.mkdir(parents=True, exist_ok=True)
        stages = open_stages(Job(unit.video, unit.part), unit_config(self.config, unit))
        alpha = alpha_modes(stages)
        stages.outputs = [StageOutput(out.finish, TrimmedSink(out.sink, unit.start, unit.stop))
                          for out in stages.outputs]
        source = cast(VideoSource, stages.source)
        try:
            summary = run_graph(stages, self.backend, unit.id)
            summary.alpha = alpha
        finally:
            for out in stages.outputs:
                out.finish.close()
            source.close()
        return summary, source.info.start_pts - unit.stream_start
