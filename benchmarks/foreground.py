"""Foreground colour estimation (blur fusion, box sizes 90 then 6): ms per frame, ours vs O(r^2) pooling.

Ours sums box windows with running sums (O(1) per pixel); the published GPU version pools the full
kernel (O(r^2)). On a CPU the pooling version takes many minutes per 4K frame, so by default it is
timed on a centre tile (``--reference-tile``) and its per-pixel cost scaled to the full frame; the
printed line says so. On a GPU, ``--reference-tile 0`` times it on the whole frame.

    python -m benchmarks.foreground --size 3840x2160 --device cpu
"""

from __future__ import annotations

import argparse
import time

import torch

from birefnet.foreground import estimate_foreground
from birefnet.pixels import box_filter_reference
from birefnet.train.scenes import SyntheticScene


def timed_ms(fn, device: torch.device, repeats: int) -> tuple[float, torch.Tensor]:
    """Median wall time of ``fn()`` in ms (after one warm-up call) and its last result."""
    result = fn()
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        began = time.perf_counter()
        result = fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append((time.perf_counter() - began) * 1e3)
    return sorted(times)[len(times) // 2], result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", default="3840x2160", help="WIDTHxHEIGHT")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--reference-tile", type=int, default=256,
                        help="side of the centre tile the O(r^2) version is timed on (0: whole frame)")
    args = parser.parse_args()
    torch.set_grad_enabled(False)
    width, height = (int(v) for v in args.size.lower().split("x"))
    device = torch.device(args.device)
    frame = SyntheticScene(0, 1, height, width).render(0)
    image = torch.from_numpy(frame.image).permute(2, 0, 1)[None].float().div(255).to(device)
    alpha = torch.from_numpy(frame.alpha)[None, None].to(device)

    ours_ms, _ = timed_ms(lambda: estimate_foreground(image, alpha), device, args.repeats)
    tile = args.reference_tile
    if tile:
        top, left = (height - tile) // 2, (width - tile) // 2
        crop = (..., slice(top, top + tile), slice(left, left + tile))
        ref_image, ref_alpha = image[crop].contiguous(), alpha[crop].contiguous()
    else:
        ref_image, ref_alpha = image, alpha
    def reference() -> torch.Tensor:
        return estimate_foreground(ref_image, ref_alpha, box=box_filter_reference)

    ref_ms, ref = timed_ms(reference, device, 1 if device.type == "cpu" else args.repeats)
    ours_same = estimate_foreground(ref_image, ref_alpha)
    max_diff = (ours_same - ref).abs().max().item()
    scale = (width * height) / (ref_image.shape[-1] * ref_image.shape[-2])
    ref_full_ms = ref_ms * scale
    how = f"timed on a {tile}x{tile} tile, scaled x{scale:.0f} by pixel count" if tile else "timed on the full frame"
    print(f"foreground estimation {width}x{height}, device {device}, radii (90, 6), float32")
    print(f"  ours (running sums, O(1)/px):   {ours_ms:10.1f} ms/frame")
    print(f"  pooling (avg_pool2d, O(r^2)/px): {ref_full_ms:10.1f} ms/frame ({how})")
    print(f"  speed-up: x{ref_full_ms / ours_ms:.1f}; max |ours - pooling| on the compared region: {max_diff:.2e}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
