"""Model-only throughput and deformable-convolution benchmarks (run by hand; figures go to docs/benchmarks.md).

    python -m benchmarks.model throughput --models lite general --resolution 256 --batch-sizes 1 2
    python -m benchmarks.model throughput --device cuda --precision bf16 --resolution 1024 --batch-sizes 1 2 4 --compile
    python -m benchmarks.model deform

Throughput runs the Predictor's own path (uint8 upload, resize, normalise, model, resize back), with
random weights (speed does not depend on their values). FLOPs per frame come from torch's FLOP counter
(attention kernels excluded); utilisation divides achieved FLOP/s by ``--peak-tflops`` when given.
"""

from __future__ import annotations

import argparse
import platform
import resource
import statistics
import time

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from birefnet import Predictor, build_model  # noqa: E402
from birefnet.modules.deform_conv import _torchvision_deform_conv2d, deform_conv2d_torch  # noqa: E402


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _time(fn, device: torch.device, repeats: int, warmup: int) -> float:
    """Median seconds per call."""
    for _ in range(warmup):
        fn()
    _sync(device)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def flops_per_frame(model: torch.nn.Module, size: tuple[int, int]) -> float:
    x = torch.randn(1, 3, size[1], size[0])
    counter = FlopCounterMode(display=False)
    with counter, torch.inference_mode():
        model.cpu()(x)
    return float(counter.get_total_flops())


def peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # process peak RSS (KiB on Linux)


def throughput(args: argparse.Namespace) -> None:
    device = torch.device(args.device)
    name = torch.cuda.get_device_name() if device.type == "cuda" else platform.processor() or platform.machine()
    print(f"# device={device} ({name}), torch {torch.__version__}, precision={args.precision}, compile={args.compile}")
    print("| model | resolution | batch | frames/s | ms/frame | GFLOP/frame | achieved TFLOP/s | utilisation "
          "| peak MiB |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name in args.models:
        model = build_model(name)
        size = (args.resolution, args.resolution)
        flops = flops_per_frame(model, size)
        predictor = Predictor.from_model(model, device=device, precision=args.precision, resolution=size,
                                         compile=args.compile)
        for batch in args.batch_sizes:
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats()
            pixels = np.random.default_rng(0).integers(0, 256, (batch, *size[::-1], 3), dtype=np.uint8)
            frames = torch.from_numpy(pixels)
            frames = frames.to(device)
            seconds = _time(lambda: predictor.predict(frames, dtype="uint8"), device, args.repeats, args.warmup)
            fps = batch / seconds
            achieved = flops * fps / 1e12
            utilisation = f"{100 * achieved / args.peak_tflops:.0f}%" if args.peak_tflops else "n/a"
            print(f"| {name} | {size[0]}x{size[1]} | {batch} | {fps:.2f} | {1000 / fps:.1f} | {flops / 1e9:.0f} | "
                  f"{achieved:.3f} | {utilisation} | {peak_memory_mb(device):.0f} |", flush=True)


def deform(args: argparse.Namespace) -> None:
    """Ours vs a naive per-pixel reference (CPU, small map) and vs torchvision (where it runs)."""
    from benchmarks.deform_reference import naive_deform_conv2d

    g = torch.Generator().manual_seed(0)
    x = torch.randn(1, 8, 16, 16, generator=g)
    offset = 2 * torch.randn(1, 2 * 9, 16, 16, generator=g)
    mask = torch.rand(1, 9, 16, 16, generator=g)
    weight = torch.randn(8, 8, 3, 3, generator=g)
    start = time.perf_counter()
    expected = naive_deform_conv2d(x.double(), offset.double(), weight.double(), None, mask.double(), padding=1)
    naive_s = time.perf_counter() - start
    ours_s = _time(lambda: deform_conv2d_torch(x, offset, weight, None, mask, padding=1), torch.device("cpu"), 20, 3)
    err = (deform_conv2d_torch(x, offset, weight, None, mask, padding=1).double() - expected).abs().max().item()
    print("| comparison | map | ours ms | other ms | speed-up | max abs error |")
    print("|---|---|---|---|---|---|")
    print(f"| ours vs naive reference (CPU, fp32 vs fp64) | 1x8x16x16, 3x3 | {ours_s * 1e3:.2f} "
          f"| {naive_s * 1e3:.0f} | {naive_s / ours_s:.0f}x | {err:.1e} |")

    device = torch.device(args.device)
    tv = _torchvision_deform_conv2d()
    if tv is None:
        print("| ours vs torchvision | - | - | - | - | torchvision not importable here |")
        return
    for channels, size, k in ((64, 256, 3), (64, 256, 7), (64, 512, 7)):
        x = torch.randn(1, channels, size, size, device=device)
        offset = 2 * torch.randn(1, 2 * k * k, size, size, device=device)
        mask = torch.rand(1, k * k, size, size, device=device)
        weight = torch.randn(256, channels, k, k, device=device)
        ours = _time(lambda: deform_conv2d_torch(x, offset, weight, None, mask, padding=k // 2), device, 10, 2)
        theirs = _time(lambda: tv(x, offset, weight, None, padding=k // 2, mask=mask), device, 10, 2)
        err = (deform_conv2d_torch(x, offset, weight, None, mask, padding=k // 2)
               - tv(x, offset, weight, None, padding=k // 2, mask=mask)).abs().max().item()
        print(f"| ours vs torchvision ({device.type}) | 1x{channels}x{size}x{size}, {k}x{k} -> 256 "
              f"| {ours * 1e3:.2f} | {theirs * 1e3:.2f} | {theirs / ours:.2f}x | {err:.1e} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="what", required=True)
    t = sub.add_parser("throughput")
    t.add_argument("--models", nargs="+", default=["lite", "general"])
    t.add_argument("--resolution", type=int, default=256)
    t.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 2])
    t.add_argument("--device", default="cpu")
    t.add_argument("--precision", default="fp32")
    t.add_argument("--compile", action="store_true")
    t.add_argument("--repeats", type=int, default=5)
    t.add_argument("--warmup", type=int, default=2)
    t.add_argument("--peak-tflops", type=float, default=None,
                   help="device peak for utilisation, e.g. 989 for H100 bf16 dense")
    t.set_defaults(run=throughput)
    d = sub.add_parser("deform")
    d.add_argument("--device", default="cpu")
    d.set_defaults(run=deform)
    args = parser.parse_args()
    args.run(args)


if __name__ == "__main__":
    main()
