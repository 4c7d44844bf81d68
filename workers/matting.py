"""What one matting worker does with a batch: predict alpha, small on the wire, halving on out-of-memory.

The same ``MattingWorker`` runs inside a Ray actor and inside the in-process backend, so both backends
produce identical alpha for identical frames.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from birefnet.errors import UserError
from birefnet.pixels import to_uint8


class PredictorLike(Protocol):
    """The part of ``birefnet.Predictor`` a worker uses."""

    def predict(self, frames: np.ndarray, dtype: str = "float32") -> np.ndarray: ...


# builds a predictor on the device a worker was given ("cpu", "cuda" or "auto")
PredictorFactory = Callable[[str], PredictorLike]

ALPHA_DTYPES = ("uint8", "uint16")


@dataclass(frozen=True)
class PredictorSpec:
    """How to build a ``birefnet.Predictor``; small and picklable, so it travels to every actor."""

    source: str = "hr-matting"
    precision: str = "auto"
    resolution: int | tuple[int, int] | str | None = None
    runtime: str = "auto"

    def __call__(self, device: str) -> PredictorLike:
        from birefnet import Predictor

        return Predictor(self.source, device=device, precision=self.precision, resolution=self.resolution,
                         runtime=self.runtime)


class WorkerOutOfMemory(UserError):
    """The device ran out of memory even on a single frame."""


def is_out_of_memory(exc: BaseException) -> bool:
    """True for a device out-of-memory error (CUDA, or any backend that says so in its message)."""
    import torch

    if isinstance(exc, torch.OutOfMemoryError):
        return True
    return isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()


def _release_device_cache() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()


class MattingWorker:
    """One predictor, warmed up once, turning frames into uint8/uint16 alpha.

    A device out-of-memory error halves the number of frames sent to the model at once and tries again;
    the smaller chunk size is kept for the following batches. Only when a single frame does not fit does
    it give up with ``WorkerOutOfMemory``.
    """

    def __init__(self, predictor: PredictorLike, warmup: bool = True):
        self.predictor = predictor
        self.max_chunk: int | None = None  # frames per model call; None until an OOM sets it
        if warmup:
            predictor.predict(np.zeros((1, 64, 64, 3), np.uint8), dtype="uint8")

    def matte(self, images: np.ndarray, alpha_dtype: str = "uint8") -> tuple[np.ndarray, float]:
        """Alpha (N, H, W) of ``alpha_dtype`` for frames (N, H, W, 3), and the seconds it took."""
        if alpha_dtype not in ALPHA_DTYPES:
            raise ValueError(f"alpha dtype must be one of {ALPHA_DTYPES}, got {alpha_dtype!r}")
        started = time.perf_counter()
        alpha = self._predict_in_chunks(to_uint8(images), alpha_dtype)
        return alpha, time.perf_counter() - started

    def _predict_in_chunks(self, images: np.ndarray, alpha_dtype: str) -> np.ndarray:
        count = len(images)
        chunk = min(count, self.max_chunk or count)
        parts = []
        start = 0
        while start < count:
            try:
                parts.append(np.asarray(self.predictor.predict(images[start:start + chunk], dtype=alpha_dtype)))
            except Exception as exc:
                if not is_out_of_memory(exc):
                    raise
                _release_device_cache()
                if chunk == 1:
                    raise WorkerOutOfMemory(
                        "out of device memory on a single frame; lower --resolution, use --precision fp16, "
                        "or give each worker more memory"
                    ) from None
                chunk = max(1, chunk // 2)
                self.max_chunk = chunk
                continue
            start += chunk
        return parts[0] if len(parts) == 1 else np.concatenate(parts)
