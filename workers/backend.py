"""The one interface the streaming graph sees, whichever engine does the matting, and the factory.

A backend takes an iterator of ``FrameBatch`` and yields the same batches, in the same order, with
``alpha`` filled. It pulls a new batch only when it has room, which is the backpressure that keeps
memory flat: the graph never needs to know whether the work ran in this process or on Ray actors.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Iterable, Iterator

from birefnet.errors import ConfigError, InputError, UserError
from pipeline.frames import FrameBatch
from workers.matting import PredictorFactory, WorkerHooks

BACKENDS = ("auto", "ray", "local")
MAX_BATCH_ATTEMPTS = 2  # a batch whose matting raises this many times is reported, not retried again


@dataclass(frozen=True)
class BackendConfig:
    """Where and how wide the matting runs.

    ``workers`` None means one per GPU (``gpus_per_worker`` each) or one CPU worker. ``in_flight`` bounds
    the batches queued on each worker. ``hooks`` apply to worker slots in order, first incarnation only
    (a restarted worker runs clean), for fault tests and benchmarks.
    """

    kind: str = "auto"
    device: str = "auto"
    workers: int | None = None
    gpus_per_worker: float = 1.0
    in_flight: int = 2
    ray_address: str | None = None
    max_restarts: int = 3
    hooks: tuple[WorkerHooks, ...] = field(default_factory=tuple)


@dataclass
class BackendStats:
    """What the workers did, for the run summary."""

    batches: int = 0
    frames: int = 0
    compute_seconds: float = 0.0  # time the workers spent matting, summed over workers
    retried_batches: int = 0
    restarts: int = 0

    def record(self, batch: FrameBatch, seconds: float) -> None:
        self.batches += 1
        self.frames += len(batch)
        self.compute_seconds += seconds


class BatchFailed(InputError):
    """A batch whose matting failed twice for a reason in the data; names its frame range."""

    def __init__(self, batch: FrameBatch, cause: BaseException):
        super().__init__(
            f"frames {batch.index}-{batch.stop - 1} failed {MAX_BATCH_ATTEMPTS} times in matting: "
            f"{type(cause).__name__}: {cause}"
        )


class WorkersLost(UserError):
    """Matting workers kept dying; the job cannot finish."""


class MattingBackend(ABC):
    """Fills ``alpha`` of every batch, in order, with a bounded number of batches in flight."""

    workers: int
    stats: BackendStats

    @abstractmethod
    def matte(self, batches: Iterable[FrameBatch], alpha_dtype: str = "uint8") -> Iterator[FrameBatch]:
        """Yield each batch of ``batches`` with ``alpha`` set, in input order."""

    def close(self) -> None:
        """Release the workers (and Ray, when this backend started it)."""

    def __enter__(self) -> "MattingBackend":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


def ray_available() -> bool:
    try:
        import ray  # noqa: F401
    except ImportError:
        return False
    return True


def create_backend(build_predictor: PredictorFactory, config: BackendConfig) -> MattingBackend:
    """The backend ``config.kind`` names; "auto" is Ray where it is installed, in-process otherwise."""
    kind = config.kind
    if kind not in BACKENDS:
        raise ConfigError(f"backend: expected one of {', '.join(BACKENDS)}, got {kind!r}")
    if kind == "auto":
        kind = "ray" if ray_available() else "local"
    if kind == "local":
        from workers.local_backend import LocalBackend

        return LocalBackend(build_predictor, config)
    if not ray_available():
        raise ConfigError("backend: 'ray' is not installed here; pip install ray, or use --backend local")
    from workers.ray_backend import RayBackend

    return RayBackend(build_predictor, config)
