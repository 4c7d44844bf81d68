"""What the exact YUV -> RGB read costs against swscale's default one, per frame, in one sitting.

``pipeline.colour.frame_to_rgb`` reads with accurate rounding and full chroma interpolation (and, at 16
bits, through 4:4:4 and a white-level gain); swscale's default path is faster and 1-2 code values dark.
Each frame is a synthetic scene tiled to the size, written by ``rgb_to_frame`` in the layout named; the
two reads alternate, and the least wall time of ``--repeats`` counts (ratios, not milliseconds, are what
a shared machine gives).

    python -m benchmarks.colour_cost --repeats 5
"""

from __future__ import annotations

import argparse
import time

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
        reads = {"default": lambda: frame.to_ndarray(format=plain, **yuv_to_rgb_options(colour)),
                 "exact": lambda: frame_to_rgb(frame, colour, depth)}
        best = dict.fromkeys(reads, float("inf"))
        for _ in range(args.repeats):
            for name, read in reads.items():
                started = time.perf_counter()
                read()
                best[name] = min(best[name], time.perf_counter() - started)
        print(f"| {size} {pix_fmt} -> {depth}-bit RGB | {best['default'] * 1e3:.1f} ms | {best['exact'] * 1e3:.1f} ms "
              f"| x{best['exact'] / best['default']:.2f} |", flush=True)


if __name__ == "__main__":
    main()
