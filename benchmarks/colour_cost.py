"""What the exact YUV -> RGB read costs against swscale's default one, per frame, in one sitting, and
what co-sited chroma (``pipeline.chroma``, for H.264, HEVC and ProRes 422 outputs) adds to a write.

``pipeline.colour.frame_to_rgb`` reads with accurate rounding and full chroma interpolation (and, at 16
bits, through 4:4:4 and a white-level gain); swscale's default path is faster and 1-2 code values dark.
Each frame is a synthetic scene tiled to the size, written by ``rgb_to_frame`` in the layout named; the
ways of doing one thing alternate, and the least wall time of ``--repeats`` counts (ratios, not
milliseconds, are what a shared machine gives).

    python -m benchmarks.colour_cost --repeats 5
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np

from birefnet.train.scenes import SyntheticScene
from pipeline.colour import ColourInfo, frame_to_rgb, rgb_to_frame, yuv_to_rgb_options

CASES = [(size, pix_fmt, depth) for size in ("1080p", "4K")
         for pix_fmt, depth in (("yuv420p", 8), ("yuv422p10le", 16), ("yuv422p10le", 8), ("yuv420p10le", 16))]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    scene = SyntheticScene(11, 1, 540, 960).frames()[0][0]
    pictures = {"4K": np.ascontiguousarray(np.tile(scene, (4, 4, 1)))}
    pictures["1080p"] = np.ascontiguousarray(pictures["4K"][::2, ::2])
    colour = ColourInfo(1, 1, 1, False)
    print(f"# colour read cost, {time.strftime('%Y-%m-%d %H:%M')}, wall ms per frame (min of {args.repeats})")
    print("| frame | default | exact | ratio |\n|---|---:|---:|---:|")
    for size, pix_fmt, depth in CASES:
        frame = rgb_to_frame(pictures[size], pix_fmt, colour)
        plain = "rgb24" if depth == 8 else "rgb48le"
        best = fastest({"default": lambda: frame.to_ndarray(format=plain, **yuv_to_rgb_options(colour)),
                        "exact": lambda: frame_to_rgb(frame, colour, depth)}, args.repeats)
        print(f"| read {size} {pix_fmt} -> {depth}-bit RGB | {row(best)} |", flush=True)
    for size, pix_fmt, depth in CASES:
        rgb = pictures[size] if depth == 8 else pictures[size].astype(np.uint16) * 257
        best = fastest({"between": lambda: rgb_to_frame(rgb, pix_fmt, colour),
                        "co-sited": lambda: rgb_to_frame(rgb, pix_fmt, colour, cosited_chroma=True)}, args.repeats)
        print(f"| write {size} {depth}-bit RGB -> {pix_fmt}, chroma between / co-sited | {row(best)} |", flush=True)


def fastest(ways: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Least wall time (s) of each way over ``repeats`` rounds, the ways alternating within a round."""
    best = dict.fromkeys(ways, float("inf"))
    for _ in range(repeats):
        for name, way in ways.items():
            started = time.perf_counter()
            way()
            best[name] = min(best[name], time.perf_counter() - started)
    return best


def row(best: dict[str, float]) -> str:
    """The table cells of two of ``fastest``'s times: each in ms, then the second's ratio to the first."""
    first, second = best.values()
    return f"{first * 1e3:.1f} ms | {second * 1e3:.1f} ms | x{second / first:.2f}"


if __name__ == "__main__":
    main()
