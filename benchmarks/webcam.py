"""Live-demo benchmark: sustained fps and capture-to-display latency of the webcam loop (run by hand).

    python -m benchmarks.webcam                                  # lite at 512 and 1024 on the default device
    python -m benchmarks.webcam --device cuda --duration 20 --compile
    python -m benchmarks.webcam --device cpu --resolutions 256 512 1024 --duration 8 --source-fps 30

Runs exactly what ``birefnet-video webcam --display none`` runs (capture thread, newest-frame-wins
engine, causal EMA smoothing, headless display) on a generated clip played at ``--source-fps`` as a
camera, with random weights (speed does not depend on their values). Headless "display" is the
moment a result is ready, so latency here is capture to displayable frame. The clip's rate caps the
sustained fps: give a rate above the one you want to measure (120 by default on GPU).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

from benchmarks.clips import synthetic_clip
from birefnet import Predictor, build_model
from birefnet.atomic import write_text
from birefnet.predictor import pick_device
from pipeline.sources import open_source
from pipeline.temporal.smoother import make_smoother
from pipeline.webcam.calibrate import warm_up
from pipeline.webcam.capture import CaptureThread
from pipeline.webcam.engine import Engine
from pipeline.webcam.live import LiveRun
from pipeline.webcam.render import View

CLIP_SECONDS = 2  # the clip loops; it only has to be long enough not to repeat every few frames


def measure(model: torch.nn.Module, clip: Path, resolution: int, args: argparse.Namespace) -> dict:
    predictor = Predictor.from_model(model, device=args.device, precision=args.precision,
                                     resolution=resolution, compile=args.compile)
    width, height = (int(v) for v in args.size.split("x"))
    warm_up(predictor, np.zeros((height, width, 3), np.uint8))
    engine = Engine(predictor, make_smoother("ema"))
    capture = CaptureThread(open_source(str(clip), loop=True), engine)
    report = LiveRun(engine, capture, View(), display="none", duration=args.duration).run()
    report.update(model=args.model, resolution=resolution, device=str(predictor.device),
                  precision=str(predictor.dtype).removeprefix("torch."), compile=args.compile,
                  source=f"{args.size} at {args.source_fps} fps")
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="lite", help="variant or backbone (random weights) [lite]")
    parser.add_argument("--resolutions", type=int, nargs="+", default=[512, 1024])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--compile", action="store_true", help="torch.compile the model first")
    parser.add_argument("--duration", type=float, default=10.0, help="measured seconds per resolution")
    parser.add_argument("--size", default="1280x720", help="camera picture size WxH [1280x720]")
    parser.add_argument("--source-fps", type=int, help="camera rate [120 on GPU, 30 on CPU]")
    parser.add_argument("--json", type=Path, help="also write the reports here")
    args = parser.parse_args()
    device = pick_device(args.device)
    args.source_fps = args.source_fps or (120 if device.type == "cuda" else 30)
    width, height = (int(v) for v in args.size.split("x"))

    is_cuda = device.type == "cuda"
    name = torch.cuda.get_device_name(device) if is_cuda else platform.processor() or platform.machine()
    print(f"device {device} ({name}), torch {torch.__version__}, {torch.get_num_threads()} CPU threads",
          file=sys.stderr)
    model = build_model(args.model)
    reports = []
    with tempfile.TemporaryDirectory() as folder:
        clip = synthetic_clip(Path(folder) / "camera.mp4", width, height, frames=CLIP_SECONDS * args.source_fps,
                              fps=args.source_fps)
        for resolution in args.resolutions:
            report = measure(model, clip, resolution, args)
            reports.append(report)
            print(json.dumps(report), file=sys.stderr)

    print("| model | resolution | device | precision | source | sustained fps | inference fps | "
          "latency p50 ms | latency p95 ms | shown | dropped |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in reports:
        p50, p95 = (("-" if r[key] is None else f"{r[key]:.0f}") for key in ("latency_ms_p50", "latency_ms_p95"))
        print(f"| {r['model']} | {r['resolution']} | {r['device']} | {r['precision']} | {r['source']} | "
              f"{r['display_fps']:.2f} | {r['inference_fps']:.2f} | {p50} | {p95} | "
              f"{r['frames_shown']} | {r['frames_dropped']} |")
    if args.json is not None:
        write_text(args.json, json.dumps(reports, indent=2) + "\n")


if __name__ == "__main__":
    main()
