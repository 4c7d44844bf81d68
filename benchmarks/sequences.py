"""Image-sequence writers: ours (open_sink -> numbered files) vs the ffmpeg command line writing the same
format with the same settings, frames per second and bytes per frame, measured in one run.

    python -m benchmarks.sequences                        # 1080p and 4K, every format
    python -m benchmarks.sequences --sizes 1080p --frames 8 --formats exr dpx

Both sides get the same 8-bit RGBA frames (a gradient with grain, so compression has work to do) from
memory: ours as arrays through ``open_sink`` (its encode thread, temp names and renames included),
ffmpeg as raw video on stdin (the whole process timed, its start included). Ours does more per EXR frame
(linear light, premultiplication, header attributes) than FFmpeg's ``exr`` encoder, which can do neither.
Best of ``--repeats``, alternating. Results print as a Markdown table for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import imageio_ffmpeg
import numpy as np

SIZES = {"1080p": (1920, 1080), "4k": (3840, 2160)}
FFMPEG = imageio_ffmpeg.get_ffmpeg_exe()
# format -> (our open_sink settings, ffmpeg's output options for the same result)
FORMATS = {
    "exr": ({"output": "rgba"}, ["-c:v", "exr", "-compression", "zip1", "-format", "half", "-pix_fmt", "gbrapf32le"]),
    "dpx": ({"output": "composite"}, ["-c:v", "dpx", "-pix_fmt", "gbrp10le"]),
    "dpx-rgba": ({"output": "rgba"}, ["-c:v", "dpx", "-pix_fmt", "rgba64le"]),
    "tiff": ({"output": "rgba"}, ["-c:v", "tiff", "-pix_fmt", "rgba64le"]),
    "png": ({"output": "rgba"}, ["-c:v", "png", "-pix_fmt", "rgba"]),
}
EXTENSIONS = {"exr": ".exr", "dpx": ".dpx", "dpx-rgba": ".dpx", "tiff": ".tif", "png": ".png"}


def make_frames(size: tuple[int, int], frames: int) -> np.ndarray:
    width, height = size
    rng = np.random.default_rng(0)
    x = np.linspace(0, 1, width, dtype=np.float32)[None, :]
    y = np.linspace(0, 1, height, dtype=np.float32)[:, None]
    base = np.stack([x + 0 * y, y + 0 * x, (x + y) / 2, 0.25 + 0.75 * x * y], axis=-1)
    out = np.empty((frames, height, width, 4), np.uint8)
    for i in range(frames):
        grain = rng.normal(0, 0.01, base.shape[:2]).astype(np.float32)[..., None]
        out[i] = (np.clip(base + grain, 0, 1) * 255 + 0.5).astype(np.uint8)
    return out


def ours(frames: np.ndarray, folder: Path, name: str) -> float:
    from pipeline.frames import FrameBatch
    from pipeline.sinks import open_sink
    from pipeline.sources import ArraySource

    info = ArraySource(frames[..., :3], Fraction(25)).info
    started = time.perf_counter()
    sink = open_sink(str(folder / f"f.%04d{EXTENSIONS[name]}"), info, audio="drop", overwrite=True,
                     **FORMATS[name][0])
    for index in range(len(frames)):
        batch = FrameBatch(index, np.ascontiguousarray(frames[index:index + 1, ..., :3]), [index], info.time_base)
        sink.write(batch, batch.images, frames[index:index + 1, ..., 3])
    sink.close()
    return time.perf_counter() - started


def ffmpeg(frames: np.ndarray, folder: Path, name: str) -> float:
    height, width = frames.shape[1:3]
    cmd = [FFMPEG, "-v", "error", "-f", "rawvideo", "-pix_fmt", "rgba", "-s", f"{width}x{height}", "-r", "25",
           "-i", "-", *FORMATS[name][1], "-start_number", "1001", "-y", str(folder / f"g.%04d{EXTENSIONS[name]}")]
    started = time.perf_counter()
    subprocess.run(cmd, input=frames.tobytes(), check=True)
    return time.perf_counter() - started


def bytes_per_frame(folder: Path, prefix: str) -> float:
    files = [p for p in folder.iterdir() if p.name.startswith(prefix)]
    return sum(p.stat().st_size for p in files) / max(len(files), 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", default=list(SIZES), choices=list(SIZES))
    parser.add_argument("--formats", nargs="+", default=list(FORMATS), choices=list(FORMATS))
    parser.add_argument("--frames", type=int, default=12)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    print(f"{time.strftime('%Y-%m-%d')}, {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"{args.frames} frames, best of {args.repeats}")
    print("| size | format | ours fps | ffmpeg fps | ratio | ours MB/frame | ffmpeg MB/frame |")
    print("|---|---|---|---|---|---|---|")
    for size in args.sizes:
        frames = make_frames(SIZES[size], args.frames)
        for name in args.formats:
            with tempfile.TemporaryDirectory() as tmp:
                folder = Path(tmp)
                ours_s, ffmpeg_s = float("inf"), float("inf")
                for _ in range(args.repeats):
                    ours_s = min(ours_s, ours(frames, folder, name))
                    ffmpeg_s = min(ffmpeg_s, ffmpeg(frames, folder, name))
                ours_fps, ffmpeg_fps = args.frames / ours_s, args.frames / ffmpeg_s
                print(f"| {size} | {name} | {ours_fps:.1f} | {ffmpeg_fps:.1f} | {ours_fps / ffmpeg_fps:.0%} | "
                      f"{bytes_per_frame(folder, 'f.') / 1e6:.2f} | {bytes_per_frame(folder, 'g.') / 1e6:.2f} |",
                      flush=True)


if __name__ == "__main__":
    main()
