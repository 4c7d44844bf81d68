"""The archive design against today's `process` on a simulated cluster, and the ceiling of one driver.

* ceiling: frames/s one process decodes and puts into Ray's object store (what `process` does for
  every frame) at 1080p and 4K, and how many 20 fps GPUs that feeds;
* scaling: with N = 1..16 workers on a multi-node ``ray.cluster_utils.Cluster`` (a custom resource
  ``slot`` per worker stands in for a GPU, each worker takes 0.1 CPU), the model a sleep per frame,
  an archive of ``units-per-worker x N`` segments (two per clip, cut at a keyframe) through
  `archive`, against `process` over the same clips with N Ray actors. The archive grows with N so
  every run keeps each worker equally busy. Frames are tiny (64x48) so that decode and encode, which
  share this machine's 2 cores among all "nodes", stay small beside the sleep: the simulation
  measures scheduling, not codecs. Two throughputs per run, both from the same run:

  - *wall*: all frames over the job's wall-clock time (Ray Data start, worker start-up and joins in);
  - *steady*: from the ledger's rows (a unit's span is ``started`` to ``started + seconds``, its
    worker is ``extra.pid``), the window from the latest worker's first unit start to the earliest
    worker's last unit end, in which every worker is up and has work; each unit counts
    ``frames x (its span inside the window) / (its span)`` frames (its frames taken as evenly spread
    over its span), and steady fps is their sum over the window's length. Gaps between a worker's
    units are inside the window, so scheduling counts against it. For `process`, *steady* is all
    frames over the time from every actor being ready to the last clip's end (its actors are up
    once the backend is built; the driver and the clip-after-clip order are in it).

  Worker start-up is reported apart, per worker: from the dataset's start to its first unit (Ray
  Data start, process start, imports, model build) and the part of that inside the worker (the
  ledger's ``startup_s``). On a cluster each worker starts on its own node, in parallel; on this
  2-core host the N simulated nodes' workers import torch on the same 2 cores one after another,
  which is the simulation host's limit, not the design's;
* overhead per unit: the unit's time beyond its model time (open, decode, encode, close, ledger),
  the gap between one unit's end and the next unit's start on a worker (scheduling), a worker's
  start-up (process, imports, model build) and the join, as shares of a 60 s segment matted at the
  simulated speed.

    python -m benchmarks.archive --workers 1 2 4 8 16 --units-per-worker 5 --unit-frames 50 --sleep-ms 200
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import tempfile
import time
from pathlib import Path

import av
import numpy as np

from benchmarks.clips import ScaledScene
from birefnet.atomic import write_text
from pipeline.synthetic import write_clip

FPS = 25
SEGMENT_FRAMES = 60 * FPS  # the 60 s segment


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


def tiny_clip(path: Path, frames: int, keyframe_every: int, seed: int) -> str:
    """A 64x48 H.264 clip with a keyframe every ``keyframe_every`` frames (so it cuts into segments there)."""
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=FPS, options={"g": str(keyframe_every), "sc_threshold": "0"})
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for index in range(frames):
            picture = np.roll(base, index, axis=1)
            for packet in stream.encode(av.VideoFrame.from_ndarray(picture, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return str(path)


def run_archive_once(clips: list[str], out: Path, workers: int, sleep_s: float,
                     unit_frames: int) -> tuple[float, dict]:
    from pipeline.archive.job import run_archive
    from pipeline.settings.archive import build_config

    config = build_config({"temporal": "off", "device": "cpu", "quiet": True, "workers": workers,
                           "worker_resource": "slot", "cpus_per_worker": 0.1, "codec": "ffv1",
                           "output": "matte", "refine_foreground": False,
                           "segment_seconds": unit_frames / FPS})
    started = time.perf_counter()
    result = run_archive(clips, str(out), config, _importable(SleepingFactory)(sleep_s))
    seconds = time.perf_counter() - started
    return seconds, {"units": result.units, "joins": result.join_seconds, "started": time.time() - seconds,
                     "phases": result.phase_seconds}


def run_process_once(clips: list[str], out: Path, workers: int, sleep_s: float) -> tuple[float, float]:
    """(wall seconds, seconds from every actor ready to the last clip's end)."""
    from pipeline.jobs import Job, run_job
    from pipeline.settings.process import build_config
    from workers.base import BackendConfig
    from workers.factory import create_backend

    config = build_config({"temporal": "off", "device": "cpu", "quiet": True, "codec": "ffv1", "output": "matte",
                           "refine_foreground": False})
    started = time.perf_counter()
    with create_backend(_importable(SleepingFactory)(sleep_s),
                        BackendConfig(kind="ray", device="cpu", workers=workers, in_flight=2)) as backend:
        ready = time.perf_counter()  # the backend is built once every actor answered ``ready``
        for clip in clips:
            run_job(Job(clip, str(out / Path(clip).stem) + ".mkv"), config, backend)
        finished = time.perf_counter()
    return time.perf_counter() - started, finished - ready


def _by_worker(units: list[dict]) -> dict[int, list[dict]]:
    """Done units per worker process, each worker's in start order."""
    by_worker: dict[int, list[dict]] = {}
    for unit in units:
        if unit.get("state") == "done":
            by_worker.setdefault(unit["extra"]["pid"], []).append(unit)
    for rows in by_worker.values():
        rows.sort(key=lambda u: u["started"])
    return by_worker


def steady_state(units: list[dict]) -> dict[str, float | None]:
    """Frames/s while every worker is up and has work (the module docstring defines the window); None
    where there is no such window (a worker's last unit ended before another's first began)."""
    by_worker = _by_worker(units)
    start = max(rows[0]["started"] for rows in by_worker.values())
    end = min(rows[-1]["started"] + rows[-1]["seconds"] for rows in by_worker.values())
    if end <= start:
        return {"steady_window_s": 0.0, "steady_frames": 0.0, "archive_steady_fps": None}
    frames = 0.0
    for rows in by_worker.values():
        for unit in rows:
            inside = min(end, unit["started"] + unit["seconds"]) - max(start, unit["started"])
            if inside > 0:
                frames += unit["frames"] * inside / unit["seconds"]
    return {"steady_window_s": end - start, "steady_frames": frames, "archive_steady_fps": frames / (end - start)}


def worker_startups(run: dict) -> dict[str, float]:
    """Per worker: seconds from the dataset's start to its first unit, and the ledger's in-worker part."""
    dataset_started = run["started"] + run["phases"].get("plan", 0.0) + run["phases"].get("start", 0.0)
    by_worker = _by_worker(run["units"])
    to_first = [rows[0]["started"] - dataset_started for rows in by_worker.values()]
    inside = [rows[0]["extra"]["startup_s"] for rows in by_worker.values() if "startup_s" in rows[0]["extra"]]
    return {"workers_seen": len(by_worker), "startup_to_first_unit_mean_s": float(np.mean(to_first)),
            "startup_to_first_unit_max_s": float(np.max(to_first)),
            "startup_in_worker_mean_s": float(np.mean(inside)) if inside else 0.0,
            "startup_in_worker_max_s": float(np.max(inside)) if inside else 0.0}


def unit_overheads(run: dict, sleep_s: float) -> dict[str, float]:
    """Means over a run's units (seconds): beyond the model's sleep, the scheduling gap on a worker, the
    join per part."""
    by_worker = _by_worker(run["units"])
    units = [unit for rows in by_worker.values() for unit in rows]
    beyond = [u["seconds"] - u["frames"] * sleep_s for u in units]
    gaps = [b["started"] - (a["started"] + a["seconds"]) for rows in by_worker.values() for a, b in zip(rows, rows[1:])]
    parts_per_output = len(units) / max(1, len(run["joins"]))
    return {"beyond_model_s": float(np.mean(beyond)), "scheduling_gap_s": float(np.mean(gaps)) if gaps else 0.0,
            "join_per_part_s": float(np.mean(list(run["joins"].values()))) / parts_per_output}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4, 8, 16])
    parser.add_argument("--units-per-worker", type=int, default=5)
    parser.add_argument("--unit-frames", type=int, default=50)
    parser.add_argument("--sleep-ms", type=float, default=200.0)
    parser.add_argument("--nodes", type=int, default=4)
    parser.add_argument("--ceiling-frames", type=int, default=24)
    parser.add_argument("--skip-ceiling", action="store_true")
    parser.add_argument("--skip-process", action="store_true")
    parser.add_argument("--json", help="write all results here")
    args = parser.parse_args()
    import ray
    from ray.cluster_utils import Cluster

    logging.getLogger("birefnet_video").setLevel(logging.ERROR)  # per-clip notes of the process runs
    sleep_s = args.sleep_ms / 1000
    per_node = -(-max(args.workers) // args.nodes)
    results: dict = {"args": vars(args), "load_at_start": os.getloadavg(), "ceiling": {}, "scaling": []}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 2, "resources": {"slot": per_node},
                                                                "include_dashboard": False})
        for _ in range(args.nodes - 1):
            cluster.add_node(num_cpus=2, resources={"slot": per_node})
        ray.init(address=cluster.address, include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR)
        ray.data.DataContext.get_current().enable_progress_bars = False
        try:
            if not args.skip_ceiling:
                for width, height in ((1920, 1080), (3840, 2160)):
                    fps = driver_ceiling(root, width, height, args.ceiling_frames)
                    results["ceiling"][f"{height}p"] = fps
                    print(f"ceiling {height}p: one driver decodes + ships {fps:.1f} frames/s "
                          f"= {fps / 20:.2f} GPUs at 20 fps", flush=True)
            one: dict[str, float] = {}
            for workers in args.workers:
                count = -(-workers * args.units_per_worker // 2)  # two segments per clip
                clips = [tiny_clip(root / f"n{workers}_clip{i:02d}.mp4", 2 * args.unit_frames, args.unit_frames, i)
                         for i in range(count)]
                frames = count * 2 * args.unit_frames
                load = os.getloadavg()[0]
                seconds, run = run_archive_once(clips, root / f"archive_{workers}", workers, sleep_s, args.unit_frames)
                row: dict = {"workers": workers, "units": len(run["units"]), "frames": frames, "load_1min": load,
                             "archive_wall_fps": frames / seconds, **steady_state(run["units"]),
                             **worker_startups(run), **unit_overheads(run, sleep_s),
                             **{f"phase_{k}_s": v for k, v in run["phases"].items()}}
                if not args.skip_process:
                    wall, after_ready = run_process_once(clips, root / f"process_{workers}", workers, sleep_s)
                    row.update(process_wall_fps=frames / wall, process_steady_fps=frames / after_ready)
                for key in ("archive_wall_fps", "archive_steady_fps", "process_wall_fps", "process_steady_fps"):
                    if row.get(key):
                        one.setdefault(key, row[key])
                        row[key.replace("fps", "efficiency")] = row[key] / (workers * one[key])
                results["scaling"].append(row)
                print(json.dumps(row), flush=True)
        finally:
            ray.shutdown()
            cluster.shutdown()
    model_s = SEGMENT_FRAMES * sleep_s
    print(f"ideal one worker: {1 / sleep_s:.1f} fps; a 60 s segment ({SEGMENT_FRAMES} frames) takes {model_s:.0f} s")
    results["load_at_end"] = os.getloadavg()
    print(f"load average at start {results['load_at_start']}, at end {results['load_at_end']}")
    if args.json:
        write_text(args.json, json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
