"""Predictors for the worker and pipeline tests, and the faults a test builds around any predictor.

``BrightnessPredictor`` is a small real model (alpha = the frame's mean brightness, a pure function of
the pixels), so every result can be checked exactly. ``FaultyFirstWorker`` wraps any predictor factory:
the first predictor it builds in a test sleeps before each batch or exits its process as a crash
would, and every later one (other workers, replacement actors) runs clean. Faults live here, not in
the workers: production code carries no test machinery.

Every factory is a small picklable class, so Ray rebuilds the same predictor inside its actor
processes (they import this module from the checkout, which is on their path).
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

POISON = 13  # a frame whose first pixel is this value makes a fail_on_poison predictor fail: a reason in the data
WARMUP_CALLS = 1  # MattingWorker predicts once on a black frame before its first batch


def expected_alpha(frames: np.ndarray, dtype: str = "uint8") -> np.ndarray:
    mean = frames.astype(np.float32).mean(axis=-1) / 255.0
    scale = 255 if dtype == "uint8" else 65535
    return np.round(mean * scale).astype(dtype)


def random_batches(count: int, size: int = 4, poison_batch: int | None = None, seed: int = 0) -> list[np.ndarray]:
    """``count`` batches of ``size`` random 8x8 frames; one frame of ``poison_batch`` is poisoned."""
    rng = np.random.default_rng(seed)
    batches = []
    for i in range(count):
        images = rng.integers(0, 256, (size, 8, 8, 3), dtype=np.uint8)
        images[:, 0, 0, 0] = 0
        if i == poison_batch:
            images[1, 0, 0, 0] = POISON
        batches.append(images)
    return batches


class BrightnessPredictor:
    """alpha = mean of the RGB channels; raises on poisoned frames or when asked to take too many at once."""

    def __init__(self, device: str = "cpu", max_frames: int | None = None, fail_on_poison: bool = False):
        self.max_frames = max_frames
        self.fail_on_poison = fail_on_poison
        self.calls: list[int] = []

    def predict(self, frames: np.ndarray, dtype: str = "float32") -> np.ndarray:
        self.calls.append(len(frames))
        if self.max_frames is not None and len(frames) > self.max_frames:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        if self.fail_on_poison and (frames[:, 0, 0, 0] == POISON).any():
            raise ValueError("poisoned frame")
        return expected_alpha(frames, dtype)


class BrightnessFactory:
    """Builds a ``BrightnessPredictor`` with ``options`` on the device a worker was given."""

    def __init__(self, **options: Any):
        self.options = options

    def __call__(self, device: str) -> BrightnessPredictor:
        return BrightnessPredictor(device, **self.options)


class BrokenCheckpoint:
    """A factory that fails as a mismatched checkpoint does."""

    def __call__(self, device: str) -> BrightnessPredictor:
        from birefnet.errors import CheckpointError

        raise CheckpointError("weights.safetensors does not match the swin_v1_t architecture")


def claim(token: Path) -> bool:
    """True for the first caller on this machine to claim ``token`` (any process), False for the rest."""
    try:
        os.close(os.open(token, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:
        return False
    return True




def _fault(kind: str) -> None:
    if kind == "exit":
        os._exit(1)  # die like a crashed process, taking the actor's queued batches with it
    elif kind == "stop":
        os.kill(os.getpid(), signal.SIGSTOP)  # hang like a frozen process (SIGKILL still ends it)
    elif kind == "kill-raylet":
        os.kill(os.getppid(), signal.SIGKILL)  # an actor's parent is its node's raylet
        time.sleep(60)


class _Faulty:
    """Passes batches to ``inner``; sleeps before each, or faults after some of them."""

    def __init__(self, inner: Any, delay_s: float, fault_after_batches: int | None, fault: str):
        self.inner, self.delay_s, self.fault_after_batches, self.fault = inner, delay_s, fault_after_batches, fault
        self.calls = 0

    def predict(self, frames: np.ndarray, dtype: str = "float32") -> np.ndarray:
        self.calls += 1
        batches_done = self.calls - 1 - WARMUP_CALLS
        if batches_done >= 0:
            if self.fault_after_batches is not None and batches_done >= self.fault_after_batches:
                _fault(self.fault)
            time.sleep(self.delay_s)
        return self.inner.predict(frames, dtype)


@dataclass(frozen=True)
class FaultyFirstWorker:
    """``build``'s predictors, the first of which (the one that claims ``token``) misbehaves.

    ``delay_s`` sleeps before each of its batches (a slow model, uneven actors); after
    ``exit_after_batches`` batches it does ``fault``: "exit" ends its process hard, "stop" freezes it
    (SIGSTOP), "kill-raylet" kills its node's raylet. ``exit_at_start`` ends the process while the
    predictor is being built (the actor's ``__init__``). Only for Ray actors when faulting: in-process
    it would hit the test itself.
    """

    build: Callable[[str], Any]
    token: Path
    delay_s: float = 0.0
    exit_after_batches: int | None = None
    fault: str = "exit"
    exit_at_start: bool = False

    def __call__(self, device: str) -> Any:
        if not claim(self.token):
            return self.build(device)
        if self.exit_at_start:
            os._exit(1)
        return _Faulty(self.build(device), self.delay_s, self.exit_after_batches, self.fault)


@dataclass(frozen=True)
class FaultyEveryWorker:
    """``build``'s predictors, every one of which does ``fault`` after ``fault_after_batches`` batches:
    workers that keep dying, for the restart bound."""

    build: Callable[[str], Any]
    fault_after_batches: int = 0
    fault: str = "exit"

    def __call__(self, device: str) -> Any:
        return _Faulty(self.build(device), 0.0, self.fault_after_batches, self.fault)


class RedKeyModel(torch.nn.Module):
    """A "model" whose alpha is the red channel: exact on frames whose subject is pure red over a background
    without red, at any crop and any working size (resizing is linear). Logits in, as BiRefNet's."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        from birefnet.model import IMAGENET_MEAN, IMAGENET_STD

        red = (x[:, :1] * IMAGENET_STD[0] + IMAGENET_MEAN[0]).clamp(1e-6, 1 - 1e-6)
        return torch.log(red / (1 - red))


@dataclass(frozen=True)
class RedKeyFactory:
    """Builds a ``birefnet.Predictor`` around ``RedKeyModel`` at ``resolution``."""

    resolution: int = 128

    def __call__(self, device: str) -> Any:
        from birefnet import Predictor

        return Predictor.from_model(RedKeyModel(), device="cpu", precision="fp32",  # type: ignore[arg-type]
                                    resolution=self.resolution)
