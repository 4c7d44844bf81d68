"""Matting on Ray actors: one per GPU (or CPU actors), bounded batches in flight, results in frame order.

The driver keeps every batch it has sent until its alpha is back, so a batch lost with a dead actor
(a crash, a killed process, an out-of-memory kill) is simply sent again to a live or replacement actor;
since a batch's alpha depends only on its frames, the output is the same as without the failure.
Frames go to the object store once per batch (``ray.put``), retries reuse that object, and actors send
back uint8/uint16 alpha, which numpy reads from the store without a copy.

Faults the driver handles: an actor lost at any moment (start-up included) is replaced, at most
``max_restarts`` times per worker; an actor that returns nothing within the hang deadline is killed and
replaced, its batches resent; the local Ray's raylet dying ends the run with one line. A run that
starts Ray binds it to 127.0.0.1 and routes Ray's own messages to the log, off stdout. Blocking Ray
calls run on a helper thread, so a signal raises its own exception in the main thread (inside a Ray
call it would become a plain KeyboardInterrupt).
"""

from __future__ import annotations

import heapq
import logging
import os
import re
import signal
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

from birefnet.errors import ConfigError, UserError
from workers.base import MAX_BATCH_ATTEMPTS, BackendConfig, BackendStats, BatchFailed, Key, MattingBackend, WorkersLost
from workers.matting import MattingWorker, PredictorFactory
from workers.payload import Alpha, Images, owned
from workers.ray_watch import RayWatch

READY_TIMEOUT_S = 900.0  # loading a large checkpoint on a cold node can take minutes
WAIT_SLICE_S = 0.5  # longest single blocking Ray call: the hang and raylet checks run between slices
HANG_FACTOR = 10.0  # a batch may take this many times the slowest one measured before its worker counts as hung
UNMEASURED_FACTOR = 10.0  # before any batch is measured, the floor is stretched by this much
LOCAL_HOST = "127.0.0.1"

log = logging.getLogger("birefnet_video")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
Result = TypeVar("Result")


RAYLET_DIED = "Raylet is terminated"  # how Ray's message on a lost raylet begins
LOCAL_NODE_DEAD = ("The node with node id", f"and address: {LOCAL_HOST} ")  # ... "has been marked dead"


def _said_by_us(message: str) -> bool:
    """Ray's messages on the loss of a local run's own raylet: the run says that in its own words
    (``RayBackend.check_ray`` or the watcher), once."""
    return message.startswith(RAYLET_DIED) or (message.startswith(LOCAL_NODE_DEAD[0]) and LOCAL_NODE_DEAD[1] in message)


def _route_ray_messages_to_log() -> None:
    """Ray prints its error messages ("A worker died ...", raylet log dumps) to stdout from a listener
    thread; send them to our log (stderr, quiet under --quiet), first line only, colour codes stripped."""
    import ray._private.worker as ray_worker

    if not hasattr(ray_worker, "print_to_stdstream"):  # a Ray without this hook: leave it as it is
        return

    def to_log(data: dict, ignore_prefix: bool = False) -> None:
        for line in data.get("lines", [])[:1]:
            first = (_ANSI.sub("", str(line)).strip().splitlines() or [""])[0]  # not the log dump after it
            if not _said_by_us(first):
                log.warning("ray: %s", first)

    ray_worker.print_to_stdstream = to_log


def start_ray(address: str | None) -> None:
    """``ray.init``: a fresh local Ray on 127.0.0.1 when ``address`` is None, else join that cluster; Ray's
    messages to our log, and the caller's SIGTERM handler kept.

    "local" keeps Ray from joining, unasked, a cluster another program started on this machine (Ray's
    default for no address: the one ``/tmp/ray/ray_current_cluster`` or ``RAY_ADDRESS`` names)."""
    import ray

    # agents notice their raylet's death at once, so none outlive a killed driver for minutes
    os.environ.setdefault("RAY_enable_pipe_based_agent_to_parent_health_check", "1")
    _route_ray_messages_to_log()
    sigterm = signal.getsignal(signal.SIGTERM)
    local: dict[str, Any] = {"_node_ip_address": LOCAL_HOST} if address is None else {}
    try:
        with _loopback_node(address is None):
            ray.init(address=address or "local", include_dashboard=False, log_to_driver=False,
                     logging_level=logging.ERROR, **local)
    except (ConnectionError, ValueError, RuntimeError) as exc:
        raise ConfigError(f"ray_address: cannot connect to Ray at {address!r}: {exc}") from None
    if sigterm is not None and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, sigterm)  # Ray's own handler exits on the spot; keep the caller's


@contextmanager
def _loopback_node(local: bool) -> Iterator[None]:
    """Ray turns a node address of 127.0.0.1 into the machine's outward one (``services.resolve_ip_for_localhost``)
    wherever it allows clusters (``ray_constants.ENABLE_RAY_CLUSTER``, true on Linux), and its gRPC servers
    (gcs, raylet, every worker) then listen on all interfaces. While ``ray.init`` starts a local Ray that
    switch is off, so the node is 127.0.0.1 and every Ray port of the run listens on 127.0.0.1 only."""
    import ray._private.ray_constants as constants

    if not local or not hasattr(constants, "ENABLE_RAY_CLUSTER"):  # another Ray: leave it as it is
        yield
        return
    before = constants.ENABLE_RAY_CLUSTER
    constants.ENABLE_RAY_CLUSTER = False
    try:
        yield
    finally:
        constants.ENABLE_RAY_CLUSTER = before


def watch_raylet(pid: int) -> RayWatch:
    """A watcher for the local Ray this process started (``workers.ray_watch``): it ends the processes of
    that Ray if this process is killed, and names the raylet's death if Ray's core ends this process for it."""
    return RayWatch(pid, f"the local Ray stopped mid-run: its raylet (pid {pid}) was killed or crashed, and Ray "
                         "ended this run; nothing was written under the output names; run the command again "
                         "(it starts a fresh Ray and clears the partial files)")


def own_raylet() -> Any:
    """The raylet process of the Ray this process started (a ``subprocess.Popen``), or None."""
    try:
        import ray._private.ray_constants as constants
        import ray._private.worker as ray_worker

        node: Any = ray_worker._global_node
        return node.all_processes[constants.PROCESS_TYPE_RAYLET][0].process
    except (AttributeError, KeyError, IndexError, TypeError):
        return None


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

    def __init__(self, build_predictor: PredictorFactory, device: str, threads: int,
                 inputs_per_call: int | None = None):
        import torch

        _restore_priority()
        torch.set_num_threads(threads)
        self._error: BaseException | None = None
        try:
            self._worker = MattingWorker(build_predictor(device))
            self._worker.max_chunk = inputs_per_call
        except Exception as exc:
            self._error = exc

    def ready(self) -> bool:
        if self._error is not None:
            raise self._error
        return True

    def matte(self, images: Images, alpha_dtype: str) -> tuple[Alpha, float]:
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


def _plan_placement(config: BackendConfig, resources: dict, node_cpus: float | None = None) -> _Placement:
    """One actor per ``gpus_per_worker`` GPUs where the cluster has GPUs, else CPU actors sharing the CPUs.
    An actor's share is at most ``node_cpus`` (the largest node's): an actor runs on one node, so a share of
    a multi-node cluster's total would never be scheduled and the run would wait for it forever."""
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
    share = min(cpus / workers, node_cpus or cpus)
    return _Placement("cpu", workers, {"num_cpus": share}, max(1, int(share)))


def _largest_node_cpus() -> float | None:
    import ray

    cpus = [float(node["Resources"].get("CPU", 0)) for node in ray.nodes() if node.get("Alive")]
    return max(cpus, default=0.0) or None


class RayBackend(MattingBackend):
    """A pool of matting actors fed by the driver, at most ``in_flight`` batches queued on each."""

    def __init__(self, build_predictor: PredictorFactory, config: BackendConfig = BackendConfig()):
        import ray

        if config.in_flight < 1:
            raise ConfigError(f"in_flight: must be 1 or more, got {config.in_flight}")
        self._owns_ray = not ray.is_initialized()
        self._caller = ThreadPoolExecutor(1, thread_name_prefix="ray-wait")
        self._raylet = None
        if self._owns_ray:
            try:
                start_ray(config.ray_address)
            except BaseException:
                self._caller.shutdown()
                raise
            self._raylet = own_raylet() if config.ray_address is None else None
        self._watch = watch_raylet(self._raylet.pid) if self._raylet is not None else None
        self.config = config
        self.stats = BackendStats()
        self._build_predictor = build_predictor
        self.startup_seconds = 0.0  # slowest actor start-up, for the deadline of a replacement's first batch
        try:
            self._placement = _plan_placement(config, ray.cluster_resources(), _largest_node_cpus())
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
            self._build_predictor, placement.device, placement.threads, self.config.inputs_per_call)

    def call(self, function: Callable[..., Result], *args: Any, **kwargs: Any) -> Result:
        """``function(*args)`` (a blocking Ray call) on the helper thread; the main thread waits in Python,
        where a signal raises its own exception. A lost raylet or Ray connection becomes ``WorkersLost``."""
        self.check_ray()
        try:
            return self._caller.submit(function, *args, **kwargs).result()
        except (OSError, ConnectionError) as exc:
            self.check_ray()
            raise WorkersLost(f"lost the connection to Ray: {type(exc).__name__}: {exc}") from None

    def check_ray(self) -> None:
        """Raise ``WorkersLost`` if the raylet of the Ray this run started has died."""
        if self._raylet is not None and self._raylet.poll() is not None:
            raylet, self._raylet = self._raylet, None
            raise WorkersLost(
                f"the local Ray died (its raylet, pid {raylet.pid}, exited with {raylet.returncode}); "
                "no partial output was kept: run the job again, it starts a fresh Ray")

    def _wait_ready(self) -> None:
        """Every actor built and warmed up; one that dies while starting is replaced (within the restart bound)."""
        import ray

        started = time.monotonic()
        pending = {slot.actor.ready.remote(): index for index, slot in enumerate(self._slots)}
        while pending:
            if time.monotonic() - started > READY_TIMEOUT_S:
                raise ConfigError(
                    f"workers: only {self.workers - len(pending)} of {self.workers} matting actors could start "
                    f"within {READY_TIMEOUT_S:.0f} s; ask for fewer --workers or a smaller --gpus-per-worker")
            ready, _ = self.call(ray.wait, list(pending), num_returns=1, timeout=WAIT_SLICE_S)
            for ref in ready:
                index = pending.pop(ref)
                try:
                    self.call(ray.get, ref)
                except ray.exceptions.RayTaskError as exc:
                    raise exc.cause from None
                except ray.exceptions.RayActorError as exc:  # died while starting (killed, out of memory)
                    self._replace_actor(index, exc)
                    pending[self._slots[index].actor.ready.remote()] = index
        self.startup_seconds = time.monotonic() - started

    def _replace_actor(self, index: int, reason: BaseException | str) -> None:
        import ray

        self.stats.restarts += 1
        if self.stats.restarts > self.config.max_restarts * self.workers:
            what = reason if isinstance(reason, str) else f"{type(reason).__name__}: {_first_line(reason)}"
            raise WorkersLost(f"matting actors were lost {self.stats.restarts} times; last: {what}")
        log.warning("matting actor %d lost (%s); starting a replacement", index,
                    reason if isinstance(reason, str) else type(reason).__name__)
        slot = self._slots[index]
        ray.kill(slot.actor, no_restart=True)
        slot.actor = self._start_actor()
        slot.generation += 1

    def matte(self, batches: Iterable[tuple[Key, Images]],
              alpha_dtype: str = "uint8") -> Iterator[tuple[Key, Alpha]]:
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

        self._caller.shutdown()
        try:
            if not ray.is_initialized():
                return
            raylet_alive = self._raylet is None or self._raylet.poll() is None
            if raylet_alive or not self._owns_ray:
                for slot in getattr(self, "_slots", []):
                    ray.kill(slot.actor, no_restart=True)
            self._slots = []
            if self._owns_ray:
                ray.shutdown()
        finally:
            if self._watch is not None:
                self._watch.release()


def _first_line(exc: BaseException) -> str:
    text = str(exc)
    return text.splitlines()[0] if text else ""


class HangWatch:
    """When a busy actor counts as hung: no batch back within ``HANG_FACTOR`` times the slowest batch
    measured so far, never less than the floor (stretched ``UNMEASURED_FACTOR`` times until a batch has
    been measured); a fresh actor also gets three times the measured start-up for its first batch."""

    def __init__(self, floor_s: float, startup_s: float, workers: int):
        self.floor_s = floor_s
        self.startup_s = startup_s
        self.slowest_s = 0.0
        self.busy_since: list[float | None] = [None] * workers  # when the slot last started on a batch
        self.proven = [True] * workers  # False for a replacement until its first batch comes back

    def deadline(self, slot: int) -> float:
        base = max(self.floor_s, HANG_FACTOR * self.slowest_s) if self.slowest_s else self.floor_s * UNMEASURED_FACTOR
        return base if self.proven[slot] else base + 3 * self.startup_s

    def hung(self, now: float) -> int | None:
        for slot, since in enumerate(self.busy_since):
            if since is not None and now - since > self.deadline(slot):
                return slot
        return None


class _Dispatch:
    """One ``matte`` call: batches waiting to be (re)sent, in flight on actors, and back out of order.

    New batches are pulled from the source only while every bound holds: ``in_flight`` per actor, and
    twice the pool's in-flight total for everything not yet yielded (so one slow batch cannot make the
    reorder buffer grow without end).
    """

    def __init__(self, backend: RayBackend, source: Iterator[tuple[Any, Images]], alpha_dtype: str):
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
        self.finished: dict[int, tuple[Any, Alpha]] = {}  # seq -> (key, alpha)
        self.limit = 2 * backend.workers * backend.config.in_flight
        self.watch = HangWatch(backend.config.hang_floor_s, backend.startup_seconds, backend.workers)

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
        job = _Job(self.next_seq, key, len(images), self.backend.call(self._ray.put, images))
        self.next_seq += 1
        return job, slot

    def send(self) -> None:
        """Fill every actor up to its bound, retries first."""
        while (picked := self._next_job()) is not None:
            job, slot = picked
            actor = self.backend._slots[slot]
            ref = actor.actor.matte.remote(job.images_ref, self.alpha_dtype)
            self.in_flight[ref] = (slot, actor.generation, job)
            if self.load[slot] == 0:
                self.watch.busy_since[slot] = time.monotonic()
            self.load[slot] += 1

    def release_in_order(self) -> Iterator[tuple[Any, Alpha]]:
        while self.next_out in self.finished:
            yield self.finished.pop(self.next_out)
            self.next_out += 1

    def _replace(self, slot: int, reason: BaseException | str) -> None:
        """A new actor in ``slot``; batches still on the old one come back as lost and are sent again."""
        self.backend._replace_actor(slot, reason)
        self.load[slot] = 0
        self.watch.busy_since[slot] = None
        self.watch.proven[slot] = False

    def _wait_one(self) -> Any:
        """The next finished ref; between short waits, replace an actor that has gone quiet too long."""
        while True:
            ready, _ = self.backend.call(self._ray.wait, list(self.in_flight), num_returns=1, timeout=WAIT_SLICE_S)
            if ready:
                return ready[0]
            hung = self.watch.hung(time.monotonic())
            if hung is not None:
                self._replace(hung, f"no batch back within {self.watch.deadline(hung):.0f} s (hung)")
                for slot, _, job in self.in_flight.values():
                    if slot == hung:
                        job.avoid_slot = hung

    def collect_one(self) -> None:
        """Wait for one result; a lost actor is replaced and its batch queued again, a batch that raised
        is tried once more on another actor, then reported."""
        ray = self._ray
        from ray.exceptions import ObjectLostError, OutOfMemoryError, RayActorError, RayTaskError, WorkerCrashedError

        ref = self._wait_one()
        slot, generation, job = self.in_flight.pop(ref)
        current = self.backend._slots[slot].generation == generation
        if current:
            self.load[slot] -= 1
            self.watch.busy_since[slot] = time.monotonic() if self.load[slot] else None
        try:
            alpha, seconds = self.backend.call(ray.get, ref)
        except (RayActorError, WorkerCrashedError, OutOfMemoryError, ObjectLostError) as exc:
            if current:
                self._replace(slot, exc)
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
        if current:
            self.watch.proven[slot] = True
            self.watch.slowest_s = max(self.watch.slowest_s, seconds)
        alpha = owned(alpha)  # small; frees the store
        self.backend.stats.record(job.frames, seconds)
        self.finished[job.seq] = (job.key, alpha)
