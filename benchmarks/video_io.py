"""Pass-through benchmark of the video I/O: decode -> constant alpha -> encode, ours vs the ffmpeg
command line doing the same transcode with the same codec settings, measured in one run.

    python -m benchmarks.video_io                       # 1080p and 4K, ProRes 4444, + memory check
    python -m benchmarks.video_io --sizes 1080p --frames 60 --memory-frames 0

For each size a test clip (H.264 yuv420p, testsrc2) is generated with the imageio-ffmpeg binary,
then both sides run as child processes, alternating, ``--repeats`` times; the best time of each
counts. Our time is taken inside the child from opening the source to the closed output (the
interpreter start and imports, which pull in torch through ``birefnet``, are left out); ffmpeg's is
the whole process. Peak memory is each child's max RSS (ours includes the imports). The memory check
runs ours on 150 and 1500 frames of one clip: streaming means the peak must not grow with the
length. Results print as a Markdown table for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import imageio_ffmpeg
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SIZES = {"360p": (640, 360), "720p": (1280, 720), "1080p": (1920, 1080), "4k": (3840, 2160)}
FFMPEG = imageio_ffmpeg.get_ffmpeg_exe()
# the same encoder settings on both sides: ours gets them from pipeline.encoders for .mov rgba
FFMPEG_PRORES = ["-c:v", "prores_ks", "-profile:v", "4", "-vendor", "apl0", "-pix_fmt", "yuva444p10le"]


def make_input(path: Path, size: tuple[int, int], frames: int) -> None:
    if path.exists():
        return
    subprocess.run([FFMPEG, "-v", "error", "-f", "lavfi", "-i", f"testsrc2=size={size[0]}x{size[1]}:rate=25",
                    "-frames:v", str(frames), "-c:v", "libx264", "-preset", "ultrafast", "-crf", "18",
                    "-pix_fmt", "yuv420p", "-color_primaries", "bt709", "-color_trc", "bt709",
                    "-colorspace", "bt709", "-y", str(path)], check=True)


def run_child(cmd: list[str]) -> dict:
    """Run a command, return wall seconds and its peak RSS (MiB)."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    out = proc.stdout.read().decode()
    if status != 0:
        raise RuntimeError(f"{cmd[:3]} failed: {proc.stderr.read().decode()[-2000:]}")
    result = json.loads(out.strip().splitlines()[-1]) if out.strip().startswith("{") else {}
    result.update(peak_mib=usage.ru_maxrss / 1024)
    result["seconds"] = result.pop("inner_seconds", seconds)
    return result


def ours(src: str, dst: str, frames: int | None, batch: int) -> None:
    """Child: our pass-through; prints frames written and the in-process time as JSON."""
    from pipeline.sinks import open_sink
    from pipeline.sources import open_source

    start = time.perf_counter()
    with open_source(src, frame_range=(0, frames) if frames else None) as source:
        sink = open_sink(dst, source.info, output="rgba", audio="drop", overwrite=True)
        alpha = None
        for b in source.batches(batch):
            if alpha is None or len(alpha) != len(b):
                alpha = np.full(b.images.shape[:3], 255, np.uint8)
            sink.write(b, b.images, alpha)
        summary = sink.close()
    print(json.dumps({"frames": summary.frames_written, "inner_seconds": time.perf_counter() - start}))


def compare(size_name: str, frames: int, repeats: int, work: Path) -> dict:
    size = SIZES[size_name]
    src = work / f"in_{size_name}_{frames}.mp4"
    make_input(src, size, frames)
    ours_cmd = [sys.executable, "-m", "benchmarks.video_io", "--child", str(src), str(work / "ours.mov")]
    ffmpeg_cmd = [FFMPEG, "-v", "error", "-y", "-i", str(src), *FFMPEG_PRORES, "-an", str(work / "ffmpeg.mov")]
    best = {"ours": None, "ffmpeg": None}
    for _ in range(repeats):
        for name, cmd in (("ours", ours_cmd), ("ffmpeg", ffmpeg_cmd)):
            result = run_child(cmd)
            if best[name] is None or result["seconds"] < best[name]["seconds"]:
                best[name] = result
    return {"size": size_name, "frames": frames,
            "ours_fps": frames / best["ours"]["seconds"], "ffmpeg_fps": frames / best["ffmpeg"]["seconds"],
            "ours_peak_mib": best["ours"]["peak_mib"], "ffmpeg_peak_mib": best["ffmpeg"]["peak_mib"]}


def memory(size_name: str, counts: list[int], work: Path) -> list[dict]:
    size = SIZES[size_name]
    src = work / f"in_{size_name}_{max(counts)}.mp4"
    make_input(src, size, max(counts))
    rows = []
    for n in counts:
        result = run_child([sys.executable, "-m", "benchmarks.video_io", "--child", str(src), str(work / "mem.mov"),
                            "--frames", str(n)])
        rows.append({"size": size_name, "frames": n, "peak_mib": result["peak_mib"], "seconds": result["seconds"]})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="1080p,4k")
    parser.add_argument("--frames", type=int, default=48, help="frames per speed run (4K uses half)")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--memory-size", default="360p")
    parser.add_argument("--memory-frames", default="150,1500", help="'0' skips the memory check")
    parser.add_argument("--work", default=None, help="folder for clips (default: a temp folder)")
    parser.add_argument("--child", nargs=2, metavar=("SRC", "DST"), help=argparse.SUPPRESS)
    parser.add_argument("--batch", type=int, default=8)
    args = parser.parse_args()
    if args.child:
        ours(args.child[0], args.child[1], args.frames if "--frames" in sys.argv else None, args.batch)
        return
    work = Path(args.work or tempfile.mkdtemp(prefix="video_io_bench_"))
    work.mkdir(parents=True, exist_ok=True)
    print(f"device: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs; "
          f"date: {time.strftime('%Y-%m-%d')}; command: python -m benchmarks.video_io {' '.join(sys.argv[1:])}")
    print("\n| size | frames | ours fps | ffmpeg fps | ours / ffmpeg | ours peak MiB | ffmpeg peak MiB |")
    print("|---|---|---|---|---|---|---|")
    for size_name in args.sizes.split(","):
        frames = args.frames if size_name != "4k" else max(10, args.frames // 2)
        row = compare(size_name, frames, args.repeats, work)
        print(f"| {row['size']} | {row['frames']} | {row['ours_fps']:.1f} | {row['ffmpeg_fps']:.1f} | "
              f"{row['ours_fps'] / row['ffmpeg_fps']:.0%} | {row['ours_peak_mib']:.0f} | "
              f"{row['ffmpeg_peak_mib']:.0f} |", flush=True)
    counts = [int(n) for n in args.memory_frames.split(",") if int(n)]
    if counts:
        print("\n| memory check | frames | ours peak MiB | seconds |")
        print("|---|---|---|---|")
        for row in memory(args.memory_size, counts, work):
            print(f"| {row['size']} | {row['frames']} | {row['peak_mib']:.0f} | {row['seconds']:.1f} |", flush=True)


if __name__ == "__main__":
    main()
