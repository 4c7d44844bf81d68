"""What guided upsampling costs against bilinear, per frame, at a working size and a frame size.

Times ``birefnet.upsampling.guided_upsample`` (given the working-size frame, as the predictor gives it
the model's input) and the bilinear resize it replaces, on random frames, on one CPU thread by default
or on ``--device cuda``; median of ``--repeats`` after a warm-up (``benchmarks.foreground.timed_ms``).

    python -m benchmarks.upsampling
    python -m benchmarks.upsampling --device cuda --threads 0
"""

from __future__ import annotations

import argparse
import platform

import torch
import torch.nn.functional as F

from benchmarks.foreground import timed_ms
from birefnet.upsampling import guided_upsample

# (frame W x H, working W x H)
CASES = [((3840, 2160), (2048, 2048)), ((3840, 2160), (1024, 1024)), ((3840, 2160), (384, 384)),
         ((1920, 1080), (1024, 1024)), ((1280, 720), (512, 512)), ((512, 512), (288, 288))]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1, help="torch threads on the CPU (0: torch's default)")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or platform.machine()
    print(f"# {name}, torch {torch.__version__}, {torch.get_num_threads()} thread(s); ms per frame, median of "
          f"{args.repeats}")
    print("| frame | working size | bilinear | guided | guided - bilinear |\n|---|---|---:|---:|---:|")
    generator = torch.Generator().manual_seed(0)
    for (width, height), (work_w, work_h) in CASES:
        pixels = torch.randint(0, 256, (1, 3, height, width), dtype=torch.uint8, generator=generator).to(device)
        alpha = torch.rand(1, 1, work_h, work_w, generator=generator).to(device)
        guide = F.interpolate(pixels.float(), size=(work_h, work_w), mode="bilinear", antialias=True)
        bilinear, _ = timed_ms(lambda: F.interpolate(alpha, size=(height, width), mode="bilinear",
                                                     align_corners=False)[:, 0].clamp_(0, 1), device, args.repeats)
        guided, _ = timed_ms(lambda: guided_upsample(alpha, pixels, guide), device, args.repeats)
        print(f"| {width}x{height} | {work_w}x{work_h} | {bilinear:.1f} | {guided:.1f} | {guided - bilinear:.1f} |",
              flush=True)


if __name__ == "__main__":
    main()
