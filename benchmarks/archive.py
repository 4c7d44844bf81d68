"""The archive design against today's `process` on a simulated cluster, and the ceiling of one driver.

* ceiling: frames/s one process decodes and puts into Ray's object store (what `process` does for
  every frame) at 1080p and 4K, and how many 20 fps GPUs that feeds;
* scaling: an archive of small clips through `archive` with 1..N workers on a multi-node
  ``ray.cluster_utils.Cluster`` (a custom resource per worker stands in for a GPU), the model a sleep
  per frame, against `process` over the same clips with the same number of Ray actors;
* overhead: per unit (scheduling, model build, open, join) beyond the model's time, as a share of a
  60 s segment at 25 fps with the same per-frame model time.

    python -m benchmarks.archive --workers 1 2 4 8 16 --clips 16 --frames 48 --sleep-ms 40
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.clips import ScaledScene
from pipeline.synthetic import write_clip


class SleepingModel:
    """A model that takes ``sleep_s`` per frame and returns a flat alpha: the GPU of the simulation."""

    def __init__(self, sleep_s: float):
        self.sleep_s = sleep_s

    def predict(self, frames: np.ndarray, dtype: str = "float32") -> np.ndarray:
        time.sleep(self.sleep_s * len(frames))
        return np.full(frames.shape[:3], 128 if dtype == "uint8" else 0.5, dtype=dtype)


class SleepingFactory:
    def __init__(self, sleep_s: float):
        self.sleep_s = sleep_s

    def __call__(self, device: str) -> SleepingModel:
        return SleepingModel(self.sleep_s)


def _importable(cls: type) -> type:
    """The class as Ray workers can import it: run as ``python -m`` this module is ``__main__``, which a
    worker cannot unpickle from."""
    import importlib

    return getattr(importlib.import_module("benchmarks.archive"), cls.__name__)


def driver_ceiling(root: Path, width: int, height: int, frames: int) -> float:
    """Frames/s of decode + ray.put in one process (the driver of `process`)."""
    import ray

    from pipeline.sources import open_source

    clip = write_clip(root / f"ceiling_{height}.mp4", ScaledScene(width, height, frames), 25)
    started = time.perf_counter()
    with open_source(str(clip)) as source:
        refs = [ray.put(batch.images) for batch in source.batches(4)]
    seconds = time.perf_counter() - started
    del refs
    return frames / seconds


def run_archive_once(clips: list[str], out: Path, workers: int, sleep_s: float) -> tuple[float, list[dict]]:
    from pipeline.archive.job import run_archive
    from pipeline.settings.archive import build_config

    config = build_config({"temporal": "off", "device": "cpu", "quiet": True, "workers": workers,
                           "worker_resource": "slot", "cpus_per_worker": 0.1, "codec": "ffv1",
                           "output": "matte", "refine_foreground": False})
    started = time.perf_counter()
    result = run_archive(clips, str(out), config, _importable(SleepingFactory)(sleep_s))
    return time.perf_counter() - started, result.units


def run_process_once(clips: list[str], out: Path, workers: int, sleep_s: float) -> float:
    from pipeline.jobs import plan_jobs, run_job
    from pipeline.settings.process import build_config
    from workers.base import BackendConfig
    from workers.factory import create_backend

    config = build_config({"temporal": "off", "device": "cpu", "quiet": True, "codec": "ffv1", "output": "matte",
                           "refine_foreground": False})
    started = time.perf_counter()
    with create_backend(_importable(SleepingFactory)(sleep_s), BackendConfig(kind="ray", device="cpu", workers=workers,
                                                                 in_flight=2)) as backend:
        for job in plan_jobs(clips, str(out), config):
            run_job(job, config, backend)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4, 8, 16])
    parser.add_argument("--clips", type=int, default=16)
    parser.add_argument("--frames", type=int, default=48)
    parser.add_argument("--sleep-ms", type=float, default=40.0)
    parser.add_argument("--nodes", type=int, default=4)
    parser.add_argument("--ceiling-frames", type=int, default=24)
    args = parser.parse_args()
    import ray
    from ray.cluster_utils import Cluster

    sleep_s = args.sleep_ms / 1000
    most = max(args.workers)
    per_node = -(-most // args.nodes)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 2, "resources": {"slot": per_node}})
        for _ in range(args.nodes - 1):
            cluster.add_node(num_cpus=2, resources={"slot": per_node})
        ray.init(address=cluster.address, include_dashboard=False, log_to_driver=False)
        try:
            for width, height in ((1920, 1080), (3840, 2160)):
                fps = driver_ceiling(root, width, height, args.ceiling_frames)
                print(f"ceiling {height}p: one driver decodes + ships {fps:.1f} frames/s "
                      f"= {fps / 20:.2f} GPUs at 20 fps")
            clips = [str(write_clip(root / f"clip{i:02d}.mp4", ScaledScene(64, 48, args.frames, seed=i), 25))
                     for i in range(args.clips)]
            frames = args.clips * args.frames
            one = None
            for workers in args.workers:
                seconds, units = run_archive_once(clips, root / f"archive_{workers}", workers, sleep_s)
                fps = frames / seconds
                one = one or fps
                overhead = np.mean([u["seconds"] - u["frames"] * sleep_s for u in units])
                process_s = run_process_once(clips, root / f"process_{workers}", workers, sleep_s)
                print(f"workers {workers:2d}: archive {fps:6.1f} fps ({fps / (workers * one):.2f} x N x one worker), "
                      f"process {frames / process_s:6.1f} fps; per-unit overhead {overhead:.2f} s "
                      f"= {overhead / (1500 * sleep_s):.2%} of a 60 s segment")
        finally:
            ray.shutdown()
            cluster.shutdown()


if __name__ == "__main__":
    main()
