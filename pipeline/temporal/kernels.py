"""Which implementation the smoother's per-pixel work takes: OpenCV for CPU tensors (many times faster
there on these small maps), torch ops on the tensors' device otherwise (the GPU path).

``torch_kernels()`` sends CPU tensors down the torch path too, so that the GPU path runs, and is tested,
on a machine without a GPU (tests/test_temporal.py runs the smoother's behaviour tests both ways).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

import torch

_TORCH_ON_CPU: ContextVar[bool] = ContextVar("torch_on_cpu", default=False)


def uses_opencv(device: torch.device) -> bool:
    """True for the CPU (unless within ``torch_kernels``): OpenCV reads those tensors' memory as it lies."""
    return device.type == "cpu" and not _TORCH_ON_CPU.get()


@contextmanager
def torch_kernels() -> Iterator[None]:
    """Within it, on this thread, CPU tensors take the torch path that a GPU's tensors take."""
    token = _TORCH_ON_CPU.set(True)
    try:
        yield
    finally:
        _TORCH_ON_CPU.reset(token)
