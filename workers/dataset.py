"""Units of work on Ray Data: a dataset of small unit descriptions mapped by a pool of actors.

Each actor holds what the caller's picklable factory builds (a predictor and the I/O around it) and
runs one unit per call, on the node Ray placed it; only unit descriptions and result rows travel.
Ray Data gives the streaming, backpressure, actor pool autoscaling and the retries: a unit whose actor
died (a killed process, a lost node) is run again on another actor. Results come back to the caller
as they finish. Ray core is used for one thing Ray Data does not do: running a check on every node
(``check_paths_on_nodes``). Nothing here knows about video: units and rows are plain dicts.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np

# runs one unit (its fields) on the node named by the second argument; returns the unit's result row
UnitRunner = Callable[[dict[str, Any], str], dict[str, Any]]
RunnerFactory = Callable[[], UnitRunner]


@dataclass(frozen=True)
class PoolConfig:
    """How many actors (None: as many as the cluster holds), and what each takes from its node.
    ``resources``: custom Ray resources (a cluster's own name for a GPU slot, or a stand-in for one)."""

    workers: int | None = None
    num_cpus: float = 1.0
    num_gpus: float = 0.0
    resources: dict[str, float] = field(default_factory=dict)
    ray_address: str | None = None


@contextmanager
def ray_connection(address: str | None) -> Iterator[None]:
    """Ray for the job: the running one, the cluster at ``address``, or a local Ray started (and
    stopped) here. Inside a `ray job submit` the job's own cluster is found by Ray itself."""
    import ray

    from workers.ray_actors import own_raylet, start_ray, watch_raylet

    owned = not ray.is_initialized()
    watch = None
    if owned:
        # no address and no job cluster (RAY_ADDRESS): a fresh local Ray on 127.0.0.1, never a cluster
        # that another program left running on this machine
        joined = address or os.environ.get("RAY_ADDRESS") or None
        start_ray(joined)
        raylet = None if joined else own_raylet()
        watch = watch_raylet(raylet.pid) if raylet is not None else None
    try:
        yield
    finally:
        if owned:
            ray.shutdown()
        if watch is not None:
            watch.release()


class _UnitActor:
    """The actor Ray Data keeps in its pool: builds the runner once, then runs the units it is given."""

    def __init__(self, make_runner: RunnerFactory):
        import ray

        self.node = ray.get_runtime_context().get_node_id()
        self.error: BaseException | None = None
        try:
            self.run = make_runner()
        except Exception as exc:  # raised by the first call: stops the job instead of restarting the actor forever
            self.error = exc

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, list[str]]:
        if self.error is not None:
            raise self.error
        rows = [self.run(json.loads(str(unit)), self.node) for unit in batch["unit"]]
        return {"row": [json.dumps(row) for row in rows]}


class _ForwardToOurLog(logging.Handler):
    """Ray Data's warnings and errors, as ours ("ray data: ..."); not the one that says how to turn on the
    progress bars we turned off."""

    def emit(self, record: logging.LogRecord) -> None:
        if not record.name.startswith("ray.data._internal.progress"):
            logging.getLogger("birefnet_video").log(record.levelno, "ray data: %s", record.getMessage())


def route_data_logs(quiet: bool) -> None:
    """Ray Data prints INFO lines ("Starting execution of Dataset ...") on stderr through its "console"
    handler. They stay in Ray Data's own log file (the session's ``logs/ray-data/ray-data.log``); its
    warnings and errors go to our log, and under ``quiet`` nowhere but that file.

    Its usage-metrics poller, a daemon thread, logs a DEBUG record with a traceback every 10 s when no
    Prometheus answers; one that lands while the interpreter's exit closes the log file prints
    "--- Logging error ---" on stderr (its file handler writes unlocked). Those records are dropped."""
    import ray.data  # noqa: F401  # configures the "ray.data" logger on import

    logging.getLogger("ray.data._internal.usage").setLevel(logging.INFO)
    logger = logging.getLogger("ray.data")
    for handler in list(logger.handlers):
        if handler.get_name() == "console" or isinstance(handler, _ForwardToOurLog):
            logger.removeHandler(handler)
    if not quiet:
        forward = _ForwardToOurLog(logging.WARNING)
        logger.addHandler(forward)


@contextmanager
def native_stderr_to(path: str) -> Iterator[None]:
    """Ray's C++ core in this process writes its own warnings straight to file descriptor 2 (e.g. that a
    Ray Data actor's constructor arguments live in the object store); point that descriptor at ``path``
    while Ray runs, and keep Python's ``sys.stderr`` (our messages, the progress bar) on the terminal."""
    previous = sys.stderr
    previous.flush()
    terminal = os.dup(2)
    log_file = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(log_file, 2)
    os.close(log_file)
    if _descriptor(previous) == 2:  # else (a test's capture) it does not write to descriptor 2 anyway
        sys.stderr = os.fdopen(os.dup(terminal), "w", buffering=1, encoding=previous.encoding or "utf-8",
                               errors="backslashreplace")
    try:
        yield
    finally:
        if sys.stderr is not previous:
            sys.stderr.flush()
            sys.stderr.close()
            sys.stderr = previous
        os.dup2(terminal, 2)
        os.close(terminal)


def _descriptor(stream: Any) -> int | None:
    try:
        return int(stream.fileno())
    except (AttributeError, ValueError, OSError):
        return None


def run_units(units: list[dict[str, Any]], make_runner: RunnerFactory, pool: PoolConfig,
              quiet: bool = False) -> Iterator[dict[str, Any]]:
    """Each unit's result row, in the order units finish. Call inside ``ray_connection``."""
    import ray

    if not units:
        return
    route_data_logs(quiet)
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False  # the caller shows one bar for the whole job
    remote_args: dict[str, Any] = {"num_cpus": pool.num_cpus}
    if pool.num_gpus:
        remote_args["num_gpus"] = pool.num_gpus
    if pool.resources:
        remote_args["resources"] = dict(pool.resources)
    capacity = cluster_capacity(pool)
    size = min(pool.workers or capacity, len(units))
    dataset = ray.data.from_items([{"unit": json.dumps(unit)} for unit in units], override_num_blocks=len(units))
    rows = dataset.map_batches(
        _UnitActor, fn_constructor_args=(make_runner,), batch_size=1, batch_format="numpy",
        compute=ray.data.ActorPoolStrategy(min_size=max(1, min(size, capacity)), max_size=max(1, size),
                                           max_tasks_in_flight_per_actor=1),  # no unit waits behind another
        **remote_args)
    for row in rows.iter_rows():
        yield json.loads(row["row"])


def cluster_capacity(pool: PoolConfig) -> int:
    """Workers of the pool's shape the cluster's nodes hold now, counted node by node (a worker runs on one
    node); at least 1: an autoscaler may add more."""
    import ray

    needs = {"CPU": pool.num_cpus, "GPU": pool.num_gpus, **pool.resources}
    needed = [(name, amount) for name, amount in needs.items() if amount > 0]
    fits = 0
    for node in ray.nodes():
        if node.get("Alive"):
            have = node.get("Resources", {})
            fits += min((int(have.get(name, 0.0) // amount) for name, amount in needed), default=1)
    return max(1, fits)


def _missing_paths(paths: list[str]) -> list[str]:
    return [path for path in paths if not os.path.exists(path)]


def check_paths_on_nodes(paths: list[str]) -> dict[str, list[str]]:
    """Per alive node (by node id), the ``paths`` it cannot see; empty when every node sees all of them.
    Ray core: one tiny task pinned to each node (Ray Data has no "run on every node")."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    check = ray.remote(num_cpus=0)(_missing_paths)
    nodes = [node["NodeID"] for node in ray.nodes() if node.get("Alive")]
    pending = {node: check.options(scheduling_strategy=NodeAffinitySchedulingStrategy(node, soft=False)).remote(paths)
               for node in nodes}
    return {node: missing for node, missing in zip(pending, ray.get(list(pending.values()))) if missing}
