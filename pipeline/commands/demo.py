"""`birefnet-video demo`: see the whole product work offline, in under a minute or two on a laptop CPU.

Generates a short synthetic clip with exact ground-truth alpha (``pipeline.synthetic``), runs the real
`process` pipeline on it once with the bundled ``demo`` model, writing a ProRes 4444 file with alpha and
a green-screen MP4 from the same mattes, then writes a PNG contact sheet (input | matte | composite for a few
frames) and prints MAD and dtSSD of the written matte against the ground truth.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass, fields, replace
from pathlib import Path

import numpy as np

from birefnet.atomic import AtomicPath, write_text
from birefnet.errors import OutputError
from pipeline.commands import add_command

EXAMPLES = """examples:
  birefnet-video demo                      # writes ./birefnet-demo/
  birefnet-video demo -o /tmp/demo --length 24 --size 256x256
then on real footage:
  birefnet-video process clip.mp4 -o clip_rgba.mov --model hr-matting
"""


@dataclass(frozen=True)
class DemoFiles:
    """What one demo run writes into its directory."""

    input: Path
    rgba: Path
    green: Path
    contact_sheet: Path
    report: Path

    @classmethod
    def in_folder(cls, folder: Path) -> DemoFiles:
        return cls(folder / "input.mp4", folder / "rgba.mov", folder / "green.mp4",
                   folder / "contact_sheet.png", folder / "report.json")

    def all(self) -> list[Path]:
        return [getattr(self, f.name) for f in fields(self)]


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    from pipeline.settings.demo import DEMO_SETTINGS, default_values

    parser = add_command(
        subparsers, "demo",
        help="offline first run: synthetic clip -> pipeline -> ProRes 4444, green screen, contact sheet",
        description="Generate a synthetic clip with ground truth, matte it with the bundled demo model through "
                    "the full pipeline, and report how close the matte is (MAD, dtSSD).",
        examples=EXAMPLES, run=run)
    DEMO_SETTINGS.add_arguments(parser, default_values())


def decode_video(path: Path, with_alpha: bool = False) -> np.ndarray:
    """All frames of a video as uint8 RGB (N, H, W, 3), or RGBA (N, H, W, 4) with its alpha channel."""
    from pipeline.sources import open_source

    with open_source(str(path), alpha=with_alpha) as source:
        return np.stack([frame.image for frame in source.frames()])


def contact_sheet(inputs: np.ndarray, alphas: np.ndarray, composites: np.ndarray, count: int,
                  tile_width: int = 256) -> np.ndarray:
    """Rows of input | matte | composite for ``count`` frames spread over the clip, uint8 RGB."""
    import cv2

    picks = np.linspace(0, len(inputs) - 1, max(1, min(count, len(inputs)))).round().astype(int)
    height, width = inputs.shape[1:3]
    tile = (tile_width, max(2, round(height * tile_width / width)))
    rows = []
    for i in picks:
        matte = np.repeat((alphas[i] * 255 + 0.5).astype(np.uint8)[..., None], 3, axis=2)
        tiles = [cv2.resize(np.ascontiguousarray(t), tile, interpolation=cv2.INTER_AREA)
                 for t in (inputs[i], matte, composites[i])]
        for t, label in zip(tiles, (f"frame {i}", "matte", "composite")):
            cv2.putText(t, label, (6, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
        rows.append(np.concatenate(tiles, axis=1))
    return np.concatenate(rows, axis=0)


def _write_png(path: Path, rgb: np.ndarray) -> None:
    import cv2

    with AtomicPath(path) as temp:
        if not cv2.imwrite(str(temp), np.ascontiguousarray(rgb[..., ::-1])):
            raise OutputError(f"cannot write {path}")


def run(args: argparse.Namespace) -> int:
    from birefnet.train.scenes import SyntheticScene
    from pipeline.jobs import Job, build_backend, run_job
    from pipeline.metrics import ClipEvaluator
    from pipeline.progress import format_summary
    from pipeline.settings.demo import DEMO_SETTINGS, DemoSettings
    from pipeline.settings.process import ProcessConfig, check_config
    from pipeline.synthetic import write_clip

    started = time.perf_counter()
    settings = DemoSettings(**DEMO_SETTINGS.values_of(args))
    width, height = settings.size
    folder = Path(settings.output_dir).expanduser()
    if folder.exists() and not folder.is_dir():
        raise OutputError(f"demo: {folder} is a file; -o names the folder for the demo's files")
    files = DemoFiles.in_folder(folder)
    existing = [p.name for p in files.all() if p.exists()]

    def say(text: str) -> None:
        if not settings.quiet:
            print(text, flush=True)

    if existing and not settings.overwrite:  # as `process` skips an input whose output exists: kept, exit 0
        say(f"demo: skipped, {folder} already holds one ({', '.join(existing)}); use --overwrite to replace it")
        return 0
    folder.mkdir(parents=True, exist_ok=True)

    scene = SyntheticScene(settings.seed, settings.length, height, width)
    frames, truth = scene.frames()
    write_clip(files.input, frames, settings.fps)
    say(f"synthetic clip: {files.input} ({settings.length} frames, {width}x{height}, seed {settings.seed})")

    config = ProcessConfig(model=settings.model, backend="local", device=settings.device, overwrite=True,
                           quiet=settings.quiet, resolution=settings.resolution, output="rgba")
    green = replace(config, output="composite", background="green")
    check_config(config)
    with build_backend(config) as backend:
        say(format_summary(run_job(Job(str(files.input), str(files.rgba)), config, backend,
                                   also=[(str(files.green), green)])))

    rgba = decode_video(files.rgba, with_alpha=True)
    composites = decode_video(files.green)
    if len(rgba) != settings.length or len(composites) != settings.length:
        raise OutputError(f"the pipeline wrote {len(rgba)} and {len(composites)} frames for {settings.length} in")
    alphas = rgba[..., 3].astype(np.float32) / 255.0
    evaluator = ClipEvaluator(with_grad_conn=False)
    evaluator.update(alphas, truth)
    scores = evaluator.result()
    _write_png(files.contact_sheet, contact_sheet(frames, alphas, composites, settings.sheet_frames))
    seconds = time.perf_counter() - started
    report = {"model": settings.model, "frames": settings.length, "size": [width, height], "seed": settings.seed,
              "mad_x1e3": scores.mad_x1e3, "dtssd_x1e2": scores.dtssd_x1e2, "seconds": round(seconds, 2),
              "files": {p.name: str(p) for p in files.all()}}
    write_text(files.report, json.dumps(report, indent=2) + "\n")
    say(f"ProRes 4444 with alpha: {files.rgba}\ngreen screen: {files.green}\ncontact sheet: {files.contact_sheet}")
    print(f"MAD {scores.mad_x1e3:.2f} (x1e-3)  dtSSD {scores.dtssd_x1e2:.2f} (x1e-2) against the ground truth; "
          f"{seconds:.1f} s", flush=True)
    if settings.model == "demo":
        say("next, on real footage: birefnet-video process clip.mp4 -o clip_rgba.mov --model hr-matting")
    return 0
