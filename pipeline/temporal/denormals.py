"""Subnormal floats flushed to zero around the smoother's arithmetic only.

A smoothed alpha decaying towards 0 over hundreds of frames enters subnormal floats, where x86 CPU
arithmetic slows ~100x. Flushing them is harmless for this work but not for everyone's (it is a
property of the calling thread's floating-point unit), so it is switched on for the block and put back
as it was afterwards.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch

_SMALLEST_NORMAL = np.float32(np.finfo(np.float32).tiny)


def flushing_denormals_now() -> bool:
    """Whether this thread flushes subnormal results to zero (half the smallest normal float is subnormal)."""
    return bool(_SMALLEST_NORMAL * np.float32(0.5) == 0)


@contextmanager
def denormals_flushed() -> Iterator[None]:
    """Flush subnormal floats to zero on this thread inside the block; restore the previous setting after."""
    already = flushing_denormals_now()
    if not already:
        torch.set_flush_denormal(True)
    try:
        yield
    finally:
        if not already:
            torch.set_flush_denormal(False)
