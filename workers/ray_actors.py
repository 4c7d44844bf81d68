"""Matting on Ray actors: one per GPU (or CPU actors), bounded batches in flight, results in frame order.

The driver keeps every batch it has sent until its alpha is back, so a batch lost with a dead actor
(a crash, a killed process, an out-of-memory kill) is simply sent again to a live or replacement actor;
since a batch's alpha depends only on its frames, the output is the same as without the failure.
Frames go to the object store once per batch (``ray.put``), retries reuse that object, and actors send
back uint8/uint16 alpha, which numpy reads from the store without a copy.
"""

from __future__ import annotations

import heapq
import logging
import os
import signal
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from birefnet.errors import ConfigError, UserError
from workers.base import MAX_BATCH_ATTEMPTS, BackendConfig, BackendStats, BatchFailed, Key, MattingBackend, WorkersLost
from workers.matting import MattingWorker, PredictorFactory

READY_TIMEOUT_S = 900.0  # loading a large checkpoint on a cold node can take minutes


def _restore_priority() -> None:
    """Ray starts worker processes at niceness 15; a matting actor is the job, not background work, and
    at 15 it loses the CPU to the driver's decode and encode threads. Back to 0 where permitted."""
    try:
        os.setpriority(os.PRIO_PROCESS, 0, 0)
    except OSError:  # not permitted (no CAP_SYS_NICE): keep Ray's niceness
        pass


class MattingActor:
    """Body of the Ray actor: one ``MattingWorker``. A build error is kept and raised by ``ready``/``matte``
    so the driver sees the original exception (a ``CheckpointError`` stays one)."""

    def __init__(self, build_predictor: PredictorFactory, device: str, threads: int):
        import torch

        _restore_priority()
        torch.set_num_threads(threads)
        self._error: BaseException | None = None
        try:
            self._worker = MattingWorker(build_predictor(device))
        except Exception as exc:
            self._error = exc

    def ready(self) -> bool:
        if self._error is not None:
            raise self._error
        return True

    def matte(self, images: np.ndarray, alpha_dtype: str) -> tuple[np.ndarray, float]:
        self.ready()
        return self._worker.matte(images, alpha_dtype)


@dataclass(order=True)
class _Job:
    """One batch on its way through the actors; ordered by ``seq`` so retries go out oldest first."""

    seq: int
    key: Any = field(compare=False)
    frames: int = field(compare=False)
    images_ref: Any = field(compare=False)
    failures: int = field(default=0, compare=False)
    avoid_slot: int | None = field(default=None, compare=False)


@dataclass
class _Slot:
    actor: Any
    generation: int = 0


@dataclass(frozen=True)
class _Placement:
    device: str
    workers: int
    options: dict
    threads: int


def _plan_placement(config: BackendConfig, resources: dict) -> _Placement:
    """One actor per ``gpus_per_worker`` GPUs where the cluster has GPUs, else CPU actors sharing the CPUs."""
    gpus = float(resources.get("GPU", 0))
    cpus = float(resources.get("CPU", 1)) or 1.0
    if config.device == "cuda" and gpus == 0:
        raise ConfigError("device: cuda was asked for but the Ray cluster has no GPU")
    if config.gpus_per_worker <= 0:
        raise ConfigError(f"gpus_per_worker: must be above 0, got {config.gpus_per_worker}")
    if config.device != "cpu" and gpus > 0:
        workers = config.workers or max(1, int(gpus // config.gpus_per_worker))
        return _Placement("cuda", workers, {"num_gpus": config.gpus_per_worker, "num_cpus": 1}, 1)
    workers = config.workers or 1
    share = cpus / workers
    return _Placement("cpu", workers, {"num_cpus": share}, max(1, int(share)))


class RayBackend(MattingBackend):
    """A pool of matting actors fed by the driver, at most ``in_flight`` batches queued on each."""

    def __init__(self, build_predictor: PredictorFactory, config: BackendConfig = BackendConfig()):
        import ray

        if config.in_flight < 1:
            raise ConfigError(f"in_flight: must be 1 or more, got {config.in_flight}")
        self._owns_ray = not ray.is_initialized()
        if self._owns_ray:
            sigterm = signal.getsignal(signal.SIGTERM)
            try:
                ray.init(address=config.ray_address, include_dashboard=False, log_to_driver=False,
                         logging_level=logging.ERROR)
            except (ConnectionError, ValueError, RuntimeError) as exc:
                raise ConfigError(f"ray_address: cannot connect to Ray at {config.ray_address!r}: {exc}") from None
            if sigterm is not None and threading.current_thread() is threading.main_thread():
                signal.signal(signal.SIGTERM, sigterm)  # Ray's own handler exits on the spot; keep the caller's
        self.config = config
        self.stats = BackendStats()
        self._build_predictor = build_predictor
        try:
            self._placement = _plan_placement(config, ray.cluster_resources())
            self.workers = self._placement.workers
            self._actor_class = ray.remote(max_restarts=0, max_task_retries=0)(MattingActor)
            self._slots = [_Slot(self._start_actor()) for _ in range(self.workers)]
            self._wait_ready()
        except BaseException:
            self.close()
            raise

    def _start_actor(self) -> Any:
        placement = self._placement
        return self._actor_class.options(**placement.options).remote(
            self._build_predictor, placement.device, placement.threads)

    def _wait_ready(self) -> None:
        import ray

        pending = [slot.actor.ready.remote() for slot in self._slots]
        ready, not_ready = ray.wait(pending, num_returns=len(pending), timeout=READY_TIMEOUT_S)
        if not_ready:
            raise ConfigError(
                f"workers: only {len(ready)} of {len(pending)} matting actors could start within "
                f"{READY_TIMEOUT_S:.0f} s; ask for fewer --workers or a smaller --gpus-per-worker")
        for ref in ready:
            try:
                ray.get(ref)
            except ray.exceptions.RayTaskError as exc:
                raise exc.cause from None

    def _replace_actor(self, index: int, reason: BaseException) -> None:
        import ray

        self.stats.restarts += 1
        if self.stats.restarts > self.config.max_restarts * self.workers:
            raise WorkersLost(
                f"matting actors died {self.stats.restarts} times; last: {type(reason).__name__}: "
                f"{str(reason).splitlines()[0] if str(reason) else ''}")
        slot = self._slots[index]
        ray.kill(slot.actor, no_restart=True)
        slot.actor = self._start_actor()
        slot.generation += 1

    def matte(self, batches: Iterable[tuple[Key, np.ndarray]],
              alpha_dtype: str = "uint8") -> Iterator[tuple[Key, np.ndarray]]:
        dispatch = _Dispatch(self, iter(batches), alpha_dtype)
        while True:
            dispatch.send()
            yield from dispatch.release_in_order()
            dispatch.send()  # releasing may have made room under the reorder bound
            if dispatch.done:
                return
            dispatch.collect_one()

    def close(self) -> None:
        import ray

        if not ray.is_initialized():
            return
        for slot in getattr(self, "_slots", []):
            ray.kill(slot.actor, no_restart=True)
        self._slots = []
        if self._owns_ray:
            ray.shutdown()


class _Dispatch:
    """One ``matte`` call: batches waiting to be (re)sent, in flight on actors, and back out of order.

    New batches are pulled from the source only while every bound holds: ``in_flight`` per actor, and
    twice the pool's in-flight total for everything not yet yielded (so one slow batch cannot make the
    reorder buffer grow without end).
    """

    def __init__(self, backend: RayBackend, source: Iterator[tuple[Any, np.ndarray]], alpha_dtype: str):
        import ray

        self._ray = ray
        self.backend = backend
        self.source = source
        self.alpha_dtype = alpha_dtype
        self.exhausted = False
        self.next_seq = 0  # sequence number of the next new batch
        self.next_out = 0  # sequence number of the next batch to yield
        self.to_send: list[_Job] = []  # heap of jobs to send again, oldest first
        self.in_flight: dict[Any, tuple[int, int, _Job]] = {}  # ref -> (slot, generation, job)
        self.load = [0] * backend.workers
        self.finished: dict[int, tuple[Any, np.ndarray]] = {}  # seq -> (key, alpha)
        self.limit = 2 * backend.workers * backend.config.in_flight

    @property
    def done(self) -> bool:
        return self.exhausted and not self.in_flight and not self.to_send and not self.finished

    def _free_slot(self, avoid: int | None) -> int | None:
        """The least loaded actor with room, preferring one other than ``avoid`` (where a batch failed)."""
        free = [i for i, load in enumerate(self.load) if load < self.backend.config.in_flight]
        preferred = [i for i in free if i != avoid] or free
        return min(preferred, key=lambda i: self.load[i]) if preferred else None

    def _next_job(self) -> tuple[_Job, int] | None:
        if self.to_send:
            slot = self._free_slot(self.to_send[0].avoid_slot)
            return None if slot is None else (heapq.heappop(self.to_send), slot)
        slot = self._free_slot(None)
        if slot is None or self.exhausted or len(self.in_flight) + len(self.finished) >= self.limit:
            return None
        pair = next(self.source, None)
        if pair is None:
            self.exhausted = True
            return None
        key, images = pair
        job = _Job(self.next_seq, key, len(images), self._ray.put(images))
        self.next_seq += 1
        return job, slot

    def send(self) -> None:
        """Fill every actor up to its bound, retries first."""
        while (picked := self._next_job()) is not None:
            job, slot = picked
            actor = self.backend._slots[slot]
            ref = actor.actor.matte.remote(job.images_ref, self.alpha_dtype)
            self.in_flight[ref] = (slot, actor.generation, job)
            self.load[slot] += 1

    def release_in_order(self) -> Iterator[tuple[Any, np.ndarray]]:
        while self.next_out in self.finished:
            yield self.finished.pop(self.next_out)
            self.next_out += 1

    def collect_one(self) -> None:
        """Wait for one result; a lost actor is replaced and its batch queued again, a batch that raised
        is tried once more on another actor, then reported."""
        ray = self._ray
        from ray.exceptions import ObjectLostError, OutOfMemoryError, RayActorError, RayTaskError, WorkerCrashedError

        (ref,), _ = ray.wait(list(self.in_flight), num_returns=1)
        slot, generation, job = self.in_flight.pop(ref)
        current = self.backend._slots[slot].generation == generation
        if current:
            self.load[slot] -= 1
        try:
            alpha, seconds = ray.get(ref)
        except (RayActorError, WorkerCrashedError, OutOfMemoryError, ObjectLostError) as exc:
            if current:
                self.backend._replace_actor(slot, exc)
                self.load[slot] = 0
            heapq.heappush(self.to_send, job)
            return
        except RayTaskError as exc:
            cause = exc.cause if exc.cause is not None else exc
            if isinstance(cause, UserError):
                raise cause from None
            job.failures += 1
            if job.failures >= MAX_BATCH_ATTEMPTS:
                raise BatchFailed(job.key, cause) from None
            self.backend.stats.retried_batches += 1
            job.avoid_slot = slot
            heapq.heappush(self.to_send, job)
            return
        alpha = alpha if alpha.flags.writeable else alpha.copy()  # small; frees the store
        self.backend.stats.record(job.frames, seconds)
        self.finished[job.seq] = (job.key, alpha)
