"""Pipeline efficiency: end-to-end frames/s against the model alone, Ray scaling and Ray's cost per batch.

    python -m benchmarks.pipeline                          # CPU: random-weight demo model, 1080p and 4K
    python -m benchmarks.pipeline --model hr-matting --device cuda --backends local,ray --workers 1,2

Three measurements, each a ratio taken within one run (machines are noisy):

* efficiency: for each input size, backend and worker count, the pipeline's frames/s divided by the
  model-only frames/s of the same predictors in the same run (frames over the seconds the workers spent
  in ``predict``, x the worker count), i.e. the fraction of the run the workers were computing rather
  than waiting. ``vs_alone`` divides instead by the predictor's frames/s measured on its own just before
  on the same decoded frames (x workers); on a shared machine that reference drifts with the load.
* scaling: N CPU actors whose model is a sleep; throughput against N x one actor's.
* Ray overhead: a model that does nothing, batches of full-size frames through the Ray backend and the
  in-process backend; the difference per batch is what Ray costs (object store, scheduling, return).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
import torch

from benchmarks.clips import synthetic_clip
from birefnet.atomic import write_text
from pipeline.frames import FrameBatch
from pipeline.jobs import Job, run_job
from pipeline.settings.process import build_config
from pipeline.sources import open_source
from workers.base import BackendConfig
from workers.factory import create_backend
from workers.matting import PredictorSpec

SIZES = {"1080p": (1920, 1080), "4k": (3840, 2160), "720p": (1280, 720), "360p": (640, 360)}


class ConstantPredictor:
    """A model that costs nothing: alpha 1 everywhere (for scaling with a sleep, and Ray's overhead)."""

    def __init__(self, device: str = "cpu"):
        self.device = device

    def predict(self, frames: np.ndarray, dtype: str = "float32") -> np.ndarray:
        return np.full(frames.shape[:3], 255 if dtype == "uint8" else 65535, dtype)


def constant_predictor(device: str) -> ConstantPredictor:
    return ConstantPredictor(device)


class SleepingPredictor(ConstantPredictor):
    """A model whose cost is a sleep: scaling with N actors is then free of CPU contention."""

    def __init__(self, device: str, delay_s: float):
        super().__init__(device)
        self.delay_s = delay_s

    def predict(self, frames: np.ndarray, dtype: str = "float32") -> np.ndarray:
        time.sleep(self.delay_s)
        return super().predict(frames, dtype)


@dataclass(frozen=True)
class SleepingPredictorSpec:
    """Builds a ``SleepingPredictor``; picklable, so every actor builds its own."""

    delay_s: float

    def __call__(self, device: str) -> SleepingPredictor:
        return SleepingPredictor(device, self.delay_s)


def decoded_batches(clip: Path, batch_size: int) -> list[FrameBatch]:
    with open_source(str(clip)) as source:
        return list(source.batches(batch_size))


def model_only_fps(spec: PredictorSpec, device: str, batches: list[FrameBatch], threads: int) -> float:
    """Frames/s of the predictor alone on frames already in memory (after one warm-up batch)."""
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        predictor = spec(device)
        predictor.predict(batches[0].images, dtype="uint8")
        if torch.cuda.is_available() and device != "cpu":
            torch.cuda.synchronize()
        started = time.perf_counter()
        for batch in batches:
            predictor.predict(batch.images, dtype="uint8")
        if torch.cuda.is_available() and device != "cpu":
            torch.cuda.synchronize()
        return sum(len(b) for b in batches) / (time.perf_counter() - started)
    finally:
        torch.set_num_threads(before)


def pipeline_run(clip: Path, out: Path, settings: dict, build_predictor, backend_config: BackendConfig):
    """One full run (decode, matting, temporal, finish, encode) on a backend built for it."""
    config = build_config({**settings, "quiet": True, "overwrite": True})
    with create_backend(build_predictor, backend_config) as backend:
        summary = run_job(Job(str(clip), str(out)), config, backend)
        return summary, backend.stats, backend.workers


def efficiency(args, clips: dict[str, Path], spec: PredictorSpec, work: Path) -> list[dict]:
    rows = []
    settings = {"output": args.output, "temporal": args.temporal, "batch_size": str(args.batch_size),
                "refine_foreground": args.refine_foreground, "codec": args.codec, "device": args.device}
    cpu_count = torch.get_num_threads()
    for size, clip in clips.items():
        batches = decoded_batches(clip, args.batch_size)
        for backend in args.backends:
            for workers in args.workers:
                if backend == "local" and workers != 1:
                    continue
                threads = max(1, cpu_count // workers) if backend == "ray" else cpu_count
                alone = model_only_fps(spec, args.device, batches, threads)
                summary, stats, actual_workers = pipeline_run(
                    clip, work / f"{size}_{backend}_{workers}.mkv", settings, spec,
                    BackendConfig(kind=backend, device=args.device, workers=workers))
                rows.append({
                    "input": size, "backend": backend, "workers": actual_workers, "frames": summary.frames_out,
                    "pipeline_fps": round(summary.fps, 2),
                    "model_fps_in_run": round(stats.frames / stats.compute_seconds * actual_workers, 2),
                    "efficiency": round(stats.compute_seconds / actual_workers / summary.seconds, 3),
                    "model_only_fps_alone": round(alone, 2),
                    "vs_alone": round(summary.fps / (alone * actual_workers), 3),
                    "stages_s": {k: round(v, 2) for k, v in summary.stages.items()},
                })
                print(json.dumps(rows[-1]), flush=True)
    return rows


def scaling(args, clip: Path, work: Path) -> list[dict]:
    settings = {"output": "matte", "temporal": "off", "batch_size": str(args.batch_size), "codec": "ffv1"}
    sleeping = SleepingPredictorSpec(args.sleep_ms / 1000)
    results = {}
    for workers in sorted({1, *args.scale_workers}):
        summary, _, _ = pipeline_run(clip, work / f"scale_{workers}.mkv", settings, sleeping,
                                     BackendConfig(kind="ray", device="cpu", workers=workers))
        results[workers] = summary.fps
    rows = [{"workers": n, "fps": round(fps, 2), "vs_n_times_one": round(fps / (n * results[1]), 3)}
            for n, fps in results.items()]
    for row in rows:
        print(json.dumps(row), flush=True)
    return rows


def ray_overhead(args, clip: Path) -> dict:
    """ms per batch that the Ray backend adds over the in-process one, with a model that costs nothing."""
    batches = [(batch.index, batch.images) for batch in decoded_batches(clip, args.batch_size)] * args.overhead_repeats
    seconds = {}
    for kind, in_flight in (("local", 1), ("ray", 1), ("ray", 2)):
        with create_backend(constant_predictor, BackendConfig(kind=kind, device="cpu", workers=1,
                                                              in_flight=in_flight)) as backend:
            list(backend.matte(batches[:2]))  # warm up
            started = time.perf_counter()
            for _ in backend.matte(batches):
                pass
            seconds[(kind, in_flight)] = time.perf_counter() - started
    per_batch = {key: value / len(batches) * 1000 for key, value in seconds.items()}
    result = {
        "batches": len(batches), "frame_size": list(batches[0][1].shape[1:3]), "batch_size": args.batch_size,
        "local_ms_per_batch": round(per_batch[("local", 1)], 2),
        "ray_overhead_ms_per_batch_in_flight_1": round(per_batch[("ray", 1)] - per_batch[("local", 1)], 2),
        "ray_overhead_ms_per_batch_in_flight_2": round(per_batch[("ray", 2)] - per_batch[("local", 1)], 2),
    }
    print(json.dumps(result), flush=True)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", help="model source (default: a random-weight demo checkpoint written here)")
    parser.add_argument("--resolution", default="256", help="model resolution (default 256)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--sizes", default="1080p,4k", help=f"input sizes, from {', '.join(SIZES)}")
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--backends", default="local,ray")
    parser.add_argument("--workers", default="1,2", help="Ray worker counts to try")
    parser.add_argument("--output", default="matte", help="output kind written by the pipeline runs")
    parser.add_argument("--codec", default="ffv1")
    parser.add_argument("--temporal", default="off")
    parser.add_argument("--refine-foreground", default="false")
    parser.add_argument("--sleep-ms", type=float, default=300.0, help="per-batch sleep of the scaling model")
    parser.add_argument("--scale-workers", default="2,4")
    parser.add_argument("--scale-frames", type=int, default=48)
    parser.add_argument("--overhead-repeats", type=int, default=4)
    parser.add_argument("--skip", default="", help="comma list of sections to skip: efficiency,scaling,overhead")
    parser.add_argument("--json", help="write all results here")
    args = parser.parse_args(argv)
    args.backends = args.backends.split(",")
    args.workers = [int(w) for w in args.workers.split(",")]
    args.scale_workers = [int(w) for w in args.scale_workers.split(",")]
    skip = set(filter(None, args.skip.split(",")))

    import ray

    ray.init(include_dashboard=False, log_to_driver=False)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        model = args.model
        if model is None:
            from safetensors.torch import save_file

            from birefnet import build_model

            model = str(work / "demo_random.safetensors")
            save_file(build_model("demo").state_dict(), model)
        spec = PredictorSpec(model, "auto", int(args.resolution) if args.resolution.isdigit() else args.resolution)
        clips = {size: synthetic_clip(work / f"{size}.mp4", *SIZES[size], frames=args.frames)
                 for size in args.sizes.split(",")}
        results = {
            "date": date.today().isoformat(), "host": platform.node(), "cpus": torch.get_num_threads(),
            "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
            "command": " ".join(sys.argv), "model": args.model or "demo (random weights)",
            "resolution": args.resolution,
        }
        if "efficiency" not in skip:
            results["efficiency"] = efficiency(args, clips, spec, work)
        if "scaling" not in skip:
            small = synthetic_clip(work / "scale.mp4", 320, 180, frames=args.scale_frames)
            results["scaling"] = scaling(args, small, work)
        if "overhead" not in skip:
            results["ray_overhead"] = ray_overhead(args, next(iter(clips.values())))
    ray.shutdown()
    if args.json:
        write_text(args.json, json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
