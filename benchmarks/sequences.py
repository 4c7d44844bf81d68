"""Image-sequence writers: ours (open_sink -> numbered files) vs the ffmpeg command line writing the same
format with the same settings, frames per second and bytes per frame, measured in one run.

    python -m benchmarks.sequences                        # 1080p and 4K, every format
    python -m benchmarks.sequences --sizes 1080p --frames 8 --formats exr dpx

Every side gets the same frames (8-bit RGBA, a gradient with grain so compression has work to do), made
before any timing starts: ours as 8-bit RGB and alpha arrays through ``open_sink`` (its encode thread, its
image threads, temporary names, fsync and renames included); ffmpeg as raw video on stdin, its whole process
timed, two ways. "ffmpeg (rgba)" is fed the 8-bit RGBA and converts it itself with swscale, which for the
10/16-bit formats gives other values than ours (255 -> 1020 in 10 bits, 65284 in 16), values that TIFF's
PackBits compresses at another speed. "ffmpeg (same pixels)" is fed the very samples we write, already
in the output pixel format (x 257 for 16 bits, (x 257) >> 6 for 10), so its encoder sees the same picture
and converts nothing; "same pixels" says whether its files decode to exactly our samples. PNG's output is the
8-bit RGBA itself, and FFmpeg's ``exr`` encoder can do neither our linear light, premultiplication nor
header, so those two formats have only the first comparison. The sides run in turn ``--repeats`` times:
frames/s and CPU ms/frame are each side's best run, a ratio is the median over the repeats of ours against
the ffmpeg runs of the same repeat (so both sides of a ratio ran under about the same load).
Results print as a Markdown table for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import imageio_ffmpeg
import numpy as np

SIZES = {"1080p": (1920, 1080), "4k": (3840, 2160)}
FFMPEG = imageio_ffmpeg.get_ffmpeg_exe()


def _rgba64(rgba: np.ndarray) -> np.ndarray:
    return rgba.astype("<u2") * 257


def _rgb48(rgba: np.ndarray) -> np.ndarray:
    return rgba[..., :3].astype("<u2") * 257


def _gbrp10(rgba: np.ndarray) -> np.ndarray:
    ten = (rgba[..., :3].astype("<u2") * 257) >> 6
    return np.ascontiguousarray(ten[..., [1, 2, 0]].transpose(0, 3, 1, 2))  # planes G, B, R


# format -> (our open_sink settings, ffmpeg's output options for the same result,
#            the raw pixel format and samples of exactly our pixels, or None)
FORMATS: dict[str, tuple[dict, list[str], tuple[str, Callable[[np.ndarray], np.ndarray]] | None]] = {
    "exr": ({"output": "rgba"}, ["-c:v", "exr", "-compression", "zip1", "-format", "half", "-pix_fmt", "gbrapf32le"],
            None),
    "dpx": ({"output": "composite"}, ["-c:v", "dpx", "-pix_fmt", "gbrp10le"], ("gbrp10le", _gbrp10)),
    "dpx-rgba": ({"output": "rgba"}, ["-c:v", "dpx", "-pix_fmt", "rgba64le"], ("rgba64le", _rgba64)),
    "tiff": ({"output": "rgba"}, ["-c:v", "tiff", "-pix_fmt", "rgba64le"], ("rgba64le", _rgba64)),
    "tiff-rgb": ({"output": "composite"}, ["-c:v", "tiff", "-pix_fmt", "rgb48le"], ("rgb48le", _rgb48)),
    "png": ({"output": "rgba"}, ["-c:v", "png", "-pix_fmt", "rgba"], None),
}
EXTENSIONS = {"exr": ".exr", "dpx": ".dpx", "dpx-rgba": ".dpx", "tiff": ".tif", "tiff-rgb": ".tif", "png": ".png"}


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


def _cpu(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def ours(rgb: np.ndarray, alpha: np.ndarray, folder: Path, name: str) -> tuple[float, float]:
    """Wall and CPU seconds (all of this process's threads) to write the frames."""
    from pipeline.frames import FrameBatch
    from pipeline.sinks import open_sink
    from pipeline.sources import ArraySource

    info = ArraySource(rgb, Fraction(25)).info
    batches = [FrameBatch(index, rgb[index:index + 1], [index], info.time_base) for index in range(len(rgb))]
    started, cpu = time.perf_counter(), _cpu(resource.RUSAGE_SELF)
    sink = open_sink(str(folder / f"f.%04d{EXTENSIONS[name]}"), info, audio="drop", overwrite=True,
                     **FORMATS[name][0])
    for batch in batches:
        sink.write(batch, batch.images, alpha[batch.index:batch.index + 1])
    sink.close()
    return time.perf_counter() - started, _cpu(resource.RUSAGE_SELF) - cpu


def ffmpeg(raw: bytes, pix_fmt: str, size: tuple[int, int], folder: Path, name: str,
           prefix: str) -> tuple[float, float]:
    """Wall and CPU seconds of the whole ffmpeg process."""
    cmd = [FFMPEG, "-v", "error", "-f", "rawvideo", "-pix_fmt", pix_fmt, "-s", f"{size[0]}x{size[1]}", "-r", "25",
           "-i", "-", *FORMATS[name][1], "-start_number", "1001", "-y", str(folder / f"{prefix}%04d{EXTENSIONS[name]}")]
    started, cpu = time.perf_counter(), _cpu(resource.RUSAGE_CHILDREN)
    subprocess.run(cmd, input=raw, check=True)
    return time.perf_counter() - started, _cpu(resource.RUSAGE_CHILDREN) - cpu


def bytes_per_frame(folder: Path, prefix: str) -> float:
    files = [p for p in folder.iterdir() if p.name.startswith(prefix)]
    return sum(p.stat().st_size for p in files) / max(len(files), 1)


def same_pixels(folder: Path, ours_prefix: str, theirs_prefix: str) -> bool:
    """Whether both sides' files decode to the same samples (the bytes differ only in the encoder version
    string, since PyAV's FFmpeg is not the command line's)."""
    import av

    def decoded(prefix: str) -> list[np.ndarray]:
        arrays = []
        for path in sorted(p for p in folder.iterdir() if p.name.startswith(prefix)):
            with av.open(str(path)) as container:
                frame = next(container.decode(video=0))
                arrays.append(np.concatenate([np.frombuffer(bytes(plane), np.uint8) for plane in frame.planes]))
        return arrays

    mine, theirs = decoded(ours_prefix), decoded(theirs_prefix)
    return len(mine) == len(theirs) and all(np.array_equal(a, b) for a, b in zip(mine, theirs))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", default=list(SIZES), choices=list(SIZES))
    parser.add_argument("--formats", nargs="+", default=list(FORMATS), choices=list(FORMATS))
    parser.add_argument("--frames", type=int, default=12)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(f"{time.strftime('%Y-%m-%d %H:%M')}, {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"load average {os.getloadavg()[0]:.1f} at the start, {args.frames} frames, {args.repeats} repeats")
    print("| size | format | ours fps | ffmpeg (rgba) fps | ratio | ffmpeg (same pixels) fps | ratio | same pixels "
          "| CPU ms/frame: ours / ffmpeg (rgba) / ffmpeg (same pixels) | ours MB/frame | ffmpeg MB/frame |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for size in args.sizes:
        rgba = make_frames(SIZES[size], args.frames)
        rgb, alpha = np.ascontiguousarray(rgba[..., :3]), np.ascontiguousarray(rgba[..., 3])
        for name in args.formats:
            exact = FORMATS[name][2]
            feeds = {"g.": ("rgba", rgba.tobytes())}
            if exact:
                feeds["h."] = (exact[0], exact[1](rgba).tobytes())
            with tempfile.TemporaryDirectory() as tmp:
                folder = Path(tmp)
                runs: list[dict[str, tuple[float, float]]] = []
                for _ in range(args.repeats):  # the sides in turn, so each ratio pairs runs under the same load
                    runs.append({"f.": ours(rgb, alpha, folder, name)})
                    for prefix, (pix_fmt, raw) in feeds.items():
                        runs[-1][prefix] = ffmpeg(raw, pix_fmt, SIZES[size], folder, name, prefix)
                fps = {prefix: args.frames / min(run[prefix][0] for run in runs) for prefix in runs[0]}
                ms = {prefix: f"{min(run[prefix][1] for run in runs) / args.frames * 1e3:.0f}" for prefix in runs[0]}
                ratio = {prefix: f"{statistics.median(run[prefix][0] / run['f.'][0] for run in runs):.0%}"
                         for prefix in feeds}
                exact_cells = (f"{fps['h.']:.1f} | {ratio['h.']} | "
                               f"{'yes' if same_pixels(folder, 'f.', 'h.') else 'no'}") if exact else "- | - | -"
                print(f"| {size} | {name} | {fps['f.']:.1f} | {fps['g.']:.1f} | {ratio['g.']} | "
                      f"{exact_cells} | {ms['f.']} / {ms['g.']} / {ms.get('h.', '-')} | "
                      f"{bytes_per_frame(folder, 'f.') / 1e6:.2f} | {bytes_per_frame(folder, 'g.') / 1e6:.2f} |",
                      flush=True)

if __name__ == "__main__":
    main()
