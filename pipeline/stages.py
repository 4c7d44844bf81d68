"""The seams of the streaming graph: what a frame source and a sink must offer.

The graph (``pipeline.graph``) is written against these, not against the concrete classes, so a new
source or sink only has to match one of them. The other two seams live with their layer: matting is
``workers.base.MattingBackend``, temporal smoothing ``pipeline.temporal.smoother.TemporalSmoother``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

import numpy as np

from pipeline.frames import FrameBatch


class FrameSource(Protocol):
    """Decoded frames in presentation order, batched; counts the frames it could not decode."""

    frames_bad: int

    def batches(self, batch_size: int) -> Iterator[FrameBatch]: ...


class WrittenOutput(Protocol):
    """What a sink reports once its output is in place."""

    @property
    def path(self) -> str: ...

    @property
    def frames_written(self) -> int: ...


class FrameSink(Protocol):
    """Writes batches in order; ``close`` puts the output in place, ``abort`` leaves nothing behind."""

    busy_seconds: float  # time spent converting and encoding, for the stage timings

    def write(self, batch: FrameBatch, rgb: np.ndarray | None, alpha: np.ndarray | None) -> None: ...

    def close(self) -> WrittenOutput: ...

    def abort(self) -> None: ...
