"""The one interface a caller sees, whichever engine does the matting: configuration, stats, errors.

A backend takes an iterable of ``(key, images)`` pairs and yields ``(key, alpha)`` pairs in the same
order. The key is the caller's and opaque here (the pipeline passes its frame batch); workers see only
arrays. A backend pulls a new pair only when it has room, which is the backpressure that keeps memory
flat: the caller never needs to know whether the work ran in this process or on Ray actors.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TypeVar

from birefnet.errors import InputError, UserError
from workers.payload import Alpha, Images

BACKENDS = ("auto", "ray", "local")
MAX_BATCH_ATTEMPTS = 2  # a batch whose matting raises this many times is reported, not retried again

Key = TypeVar("Key")  # the caller's name for a batch, handed back with its alpha


@dataclass(frozen=True)
class BackendConfig:
    """Where and how wide the matting runs.

    ``workers`` None means one per GPU (``gpus_per_worker`` each) or one CPU worker. ``in_flight`` bounds
    the batches queued on each worker. ``max_restarts`` per worker bounds the replacements of lost or
    hung workers (start-up included). ``hang_floor_s`` is the least time a worker may go without
    returning a batch before it counts as hung (see ``workers.ray_actors.HangWatch``).
    """

    kind: str = "auto"
    device: str = "auto"
    workers: int | None = None
    gpus_per_worker: float = 1.0
    in_flight: int = 2
    ray_address: str | None = None
    max_restarts: int = 3
    hang_floor_s: float = 60.0
    inputs_per_call: int | None = None  # most model inputs (frames, crops) per call (None: a whole batch's)


@dataclass
class BackendStats:
    """What the workers did, for the run summary."""

    batches: int = 0
    frames: int = 0
    compute_seconds: float = 0.0  # time the workers spent matting, summed over workers
    retried_batches: int = 0
    restarts: int = 0

    def record(self, frames: int, seconds: float) -> None:
        self.batches += 1
        self.frames += frames
        self.compute_seconds += seconds


class BatchFailed(InputError):
    """A batch whose matting failed ``MAX_BATCH_ATTEMPTS`` times for a reason in the data.

    Carries the caller's ``key`` and the last ``cause``; the caller names the batch in its own terms.
    """

    def __init__(self, key: object, cause: BaseException):
        self.key = key
        self.cause = cause
        super().__init__(f"failed {MAX_BATCH_ATTEMPTS} times in matting: {type(cause).__name__}: {cause}")


class WorkersLost(UserError):
    """Matting workers kept dying; the job cannot finish."""


class MattingBackend(ABC):
    """Mattes every batch, in order, with a bounded number of batches in flight."""

    workers: int
    stats: BackendStats

    @abstractmethod
    def matte(self, batches: Iterable[tuple[Key, Images]],
              alpha_dtype: str = "uint8") -> Iterator[tuple[Key, Alpha]]:
        """For each ``(key, images (N, H, W, 3))`` yield ``(key, alpha (N, H, W))``, in input order; a
        ``RegionRequest`` for images gives a ``RegionAlpha`` (``workers.payload``)."""

    def close(self) -> None:  # noqa: B027  (a backend with nothing to release keeps this no-op)
        """Release the workers (and Ray, when this backend started it)."""

    def __enter__(self) -> MattingBackend:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
