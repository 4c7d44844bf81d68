"""How much memory a model call needs, and how much the device has: checked before anything is loaded.

The estimate is linear in pixels. BiRefNet's cost per pixel is dominated by its decoder, which runs at
the working resolution (the Swin backbone attends within fixed windows, so it too is linear), and by
the frame's own upload, float copy and resize at the frame's size. Measured on a CPU at fp32
(``python -m benchmarks.activation_memory``: peak resident size of one ``Predictor.predict`` call,
slope between 256^2 and 512^2 working pixels, in a fresh process each):

    demo (swin_demo, 16-channel decoder)   726 B per working pixel  (512^2 -> 1024^2: see docs/benchmarks.md)
    lite (swin_v1_t), random weights      2687 B
    hr   (swin_v1_l), random weights      2727 B

The constants below are those figures with 50% headroom (allocator fragmentation, more threads' scratch
buffers, convolution workspaces on a GPU) and serve fp16/bf16 as well (autocast keeps some tensors in
fp32, so halving would not be safe). Every released backbone shares the 64-channel decoder that
dominates, so one constant serves them all; only the demo model's small decoder has its own.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from .model import BiRefNetConfig

FULL_DECODER_BYTES_PER_PIXEL = 4096  # measured 2727 (swin_v1_l) and 2687 (swin_v1_t), +50%
ACTIVATION_BYTES_PER_PIXEL = {"swin_demo": 1100}  # measured 726, +50%
# per frame pixel in a call: the uint8 upload 3, then its float copy 12 for the resize, or, bringing the
# matte back along the edges (birefnet/upsampling.py), 33 measured at 4K (six float maps, a channel's
# float copy); +15%
FRAME_BYTES_PER_PIXEL = 42
LARGEST_PARAMETERS = 221_000_000  # swin_v1_l BiRefNet: what an unknown checkpoint is assumed to hold
RAM_SHARE = 0.75  # of the available RAM a run may plan to fill (the rest: encoder, decoder, the OS)
GPU_SHARE = 0.9  # of the free GPU memory one model may plan to fill


def activation_bytes_per_pixel(config: BiRefNetConfig | None) -> int:
    """Peak bytes one working pixel of one frame costs in a model call (``config`` None: unknown model)."""
    if config is None:
        return FULL_DECODER_BYTES_PER_PIXEL
    return ACTIVATION_BYTES_PER_PIXEL.get(config.backbone, FULL_DECODER_BYTES_PER_PIXEL)


def weight_bytes(config: BiRefNetConfig | None) -> int:
    """Bytes of fp32 weights, twice (the state dict and the model exist together while loading)."""
    if config is None:
        return 2 * 4 * LARGEST_PARAMETERS
    import torch

    from .model import BiRefNet

    with torch.device("meta"):  # shapes only: nothing is allocated
        model = BiRefNet(config)
    return 2 * 4 * sum(p.numel() for p in model.parameters())


def call_bytes(config: BiRefNetConfig | None, working: tuple[int, int], frame: tuple[int, int], inputs: int) -> int:
    """Peak bytes of one model call on ``inputs`` model inputs run at ``working`` (W, H), each a frame of size
    ``frame`` (W, H) or a crop of one (counted as a whole frame: an upper bound)."""
    per_input = (activation_bytes_per_pixel(config) * working[0] * working[1]
                 + FRAME_BYTES_PER_PIXEL * frame[0] * frame[1])
    return inputs * per_input


@dataclass(frozen=True)
class MemoryBudget:
    """What a run may plan to fill on one device, and where the figure came from (for messages)."""

    bytes: int
    where: str  # "RAM" or "GPU"
    source: str  # e.g. "75% of 17.2 GB available RAM"


def available_ram() -> int:
    """Bytes of RAM the kernel says can be had without swapping (``MemAvailable``), else free pages."""
    meminfo = Path("/proc/meminfo")
    if meminfo.is_file():
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def ram_budget() -> MemoryBudget:
    ram = available_ram()
    return MemoryBudget(int(ram * RAM_SHARE), "RAM", f"{RAM_SHARE:.0%} of {gigabytes(ram)} available RAM")


def gpu_budget() -> MemoryBudget:
    """The smallest free memory over the visible CUDA devices (each worker takes one)."""
    import torch

    free = min(torch.cuda.mem_get_info(index)[0] for index in range(torch.cuda.device_count()))
    return MemoryBudget(int(free * GPU_SHARE), "GPU", f"{GPU_SHARE:.0%} of {gigabytes(free)} free GPU memory")


def gigabytes(count: float) -> str:
    """Bytes for a message: GB, MB or KB, whichever reads best."""
    if count >= 1e8:
        return f"{count / 1e9:.1f} GB"
    return f"{count / 1e6:.0f} MB" if count >= 1e6 else f"{count / 1e3:.0f} KB"
