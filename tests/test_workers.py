"""Matting workers and backends: order, backpressure, retries, out-of-memory halving, a killed actor.

The predictor here is a small real one (alpha = the frame's mean brightness, a pure function of the
pixels), so every result can be checked exactly; the end-to-end tests use the BiRefNet model.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
import torch

from birefnet.errors import CheckpointError, ConfigError
from pipeline.frames import FrameBatch
from tests.ray_session import local_ray  # noqa: F401  (fixture)
from workers.backend import BackendConfig, BatchFailed, create_backend
from workers.matting import MattingWorker, WorkerHooks, WorkerOutOfMemory

POISON = 13  # a frame whose first pixel is this value makes PickyPredictor fail: a reason in the data


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


def expected_alpha(frames: np.ndarray, dtype: str = "uint8") -> np.ndarray:
    mean = frames.astype(np.float32).mean(axis=-1) / 255.0
    scale = 255 if dtype == "uint8" else 65535
    return np.round(mean * scale).astype(dtype)


class PredictorFactory:
    """Picklable factory so the same predictor can be built inside Ray actors."""

    def __init__(self, **options):
        self.options = options

    def __call__(self, device: str) -> BrightnessPredictor:
        return BrightnessPredictor(device, **self.options)


class BrokenCheckpoint:
    def __call__(self, device: str):
        raise CheckpointError("weights.safetensors does not match the swin_v1_t architecture")


def make_batches(count: int, size: int = 4, poison_batch: int | None = None, seed: int = 0) -> list[FrameBatch]:
    rng = np.random.default_rng(seed)
    batches = []
    for i in range(count):
        images = rng.integers(0, 256, (size, 8, 8, 3), dtype=np.uint8)
        images[:, 0, 0, 0] = 0
        if i == poison_batch:
            images[1, 0, 0, 0] = POISON
        batches.append(FrameBatch(i * size, images, list(range(i * size, (i + 1) * size)), Fraction(1, 25)))
    return batches


class CountingSource:
    """Yields batches and records, at each pull, how many results the consumer has already taken."""

    def __init__(self, batches):
        self.batches = batches
        self.pulled = 0
        self.consumed = 0
        self.max_ahead = 0

    def __iter__(self):
        for batch in self.batches:
            self.pulled += 1
            self.max_ahead = max(self.max_ahead, self.pulled - self.consumed)
            yield batch


def run_backend(backend, batches, alpha_dtype="uint8"):
    source = CountingSource(batches)
    out = []
    for batch in backend.matte(source, alpha_dtype):
        source.consumed += 1
        out.append(batch)
    return out, source


def assert_all_matted(out, batches, dtype="uint8"):
    assert [b.index for b in out] == [b.index for b in batches]
    for batch in out:
        assert batch.alpha.dtype == np.dtype(dtype)
        np.testing.assert_array_equal(batch.alpha, expected_alpha(batch.images, dtype))


# ---- the worker ----------------------------------------------------------------------------------------


def test_worker_halves_chunk_on_out_of_memory_and_keeps_it():
    predictor = BrightnessPredictor(max_frames=3)
    worker = MattingWorker(predictor, warmup=False)
    images = make_batches(1, size=8)[0].images
    alpha, seconds = worker.matte(images, "uint16")
    np.testing.assert_array_equal(alpha, expected_alpha(images, "uint16"))
    assert worker.max_chunk == 2 and seconds >= 0
    predictor.calls.clear()
    worker.matte(images, "uint8")
    assert predictor.calls == [2, 2, 2, 2]  # the smaller size sticks: no new OOM on the next batch


def test_worker_gives_up_when_one_frame_does_not_fit():
    worker = MattingWorker(BrightnessPredictor(max_frames=0), warmup=False)
    with pytest.raises(WorkerOutOfMemory, match="single frame"):
        worker.matte(make_batches(1)[0].images)


# ---- the local backend ---------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", ["uint8", "uint16"])
def test_local_backend_mattes_in_order_one_batch_at_a_time(dtype):
    batches = make_batches(5)
    with create_backend(PredictorFactory(), BackendConfig(kind="local")) as backend:
        out, source = run_backend(backend, batches, dtype)
    assert_all_matted(out, batches, dtype)
    assert source.max_ahead == 1
    assert backend.stats.frames == 20 and backend.stats.batches == 5


def test_local_backend_reports_a_batch_that_fails_twice_with_its_frames():
    batches = make_batches(3, poison_batch=1)
    with create_backend(PredictorFactory(fail_on_poison=True), BackendConfig(kind="local")) as backend:
        with pytest.raises(BatchFailed, match=r"frames 4-7 failed 2 times in matting: ValueError: poisoned frame"):
            run_backend(backend, batches)
        assert backend.stats.retried_batches == 1


def test_local_backend_rejects_settings_it_cannot_honour():
    with pytest.raises(ConfigError, match="workers"):
        create_backend(PredictorFactory(), BackendConfig(kind="local", workers=2))
    with pytest.raises(ConfigError, match="exit_after_batches"):
        create_backend(PredictorFactory(), BackendConfig(kind="local", hooks=(WorkerHooks(exit_after_batches=1),)))
    with pytest.raises(ConfigError, match="backend: expected one of auto, ray, local"):
        create_backend(PredictorFactory(), BackendConfig(kind="spark"))


# ---- Ray: one local Ray session for the module ---------------------------------------------------------


@pytest.mark.slow
def test_ray_uneven_actors_keep_frame_order_and_bound_in_flight(local_ray):
    batches = make_batches(12)
    config = BackendConfig(kind="ray", workers=2, in_flight=1, hooks=(WorkerHooks(delay_s=0.5), WorkerHooks()))
    with create_backend(PredictorFactory(), config) as backend:
        out, source = run_backend(backend, batches)
    assert_all_matted(out, batches)
    assert source.max_ahead <= 2 * 2 * 1  # 2 actors x 1 in flight, x2 reorder slack
    assert backend.stats.batches == 12


@pytest.mark.slow
def test_ray_killed_actor_loses_nothing_and_output_matches_fault_free_run(local_ray):
    batches = make_batches(10)
    with create_backend(PredictorFactory(), BackendConfig(kind="local")) as backend:
        reference, _ = run_backend(backend, make_batches(10))
    config = BackendConfig(kind="ray", workers=2, hooks=(WorkerHooks(exit_after_batches=2),))
    with create_backend(PredictorFactory(), config) as backend:
        out, _ = run_backend(backend, batches)
        assert backend.stats.restarts == 1
    assert [b.index for b in out] == [b.index for b in reference]
    for got, want in zip(out, reference):
        np.testing.assert_array_equal(got.alpha, want.alpha)


@pytest.mark.slow
def test_ray_reports_data_failures_and_checkpoint_errors_as_they_are(local_ray):
    config = BackendConfig(kind="ray", workers=2)
    with create_backend(PredictorFactory(fail_on_poison=True), config) as backend:
        with pytest.raises(BatchFailed, match=r"frames 8-11 failed 2 times in matting: ValueError: poisoned frame"):
            run_backend(backend, make_batches(4, poison_batch=2))
    with pytest.raises(CheckpointError, match="does not match"):
        create_backend(BrokenCheckpoint(), BackendConfig(kind="ray", workers=1))
