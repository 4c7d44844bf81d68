"""Matting workers and backends: order, backpressure, retries, out-of-memory halving, a killed actor.

The predictor is a small real one (``tests.predictors.BrightnessPredictor``: alpha = the frame's mean
brightness), so every result can be checked exactly; the end-to-end tests use the BiRefNet model.
Backends speak arrays and keys: here each batch's key is the index of its first frame.
"""

from __future__ import annotations

import numpy as np
import pytest

from birefnet.errors import CheckpointError, ConfigError
from tests.predictors import (
    BrightnessFactory,
    BrightnessPredictor,
    BrokenCheckpoint,
    FaultyFirstWorker,
    expected_alpha,
    random_batches,
)
from workers.base import BackendConfig, BatchFailed
from workers.factory import create_backend
from workers.matting import MattingWorker, WorkerOutOfMemory


def make_batches(count: int, size: int = 4, poison_batch: int | None = None) -> list[tuple[int, np.ndarray]]:
    """(first frame index, images) pairs: the key is the index."""
    return [(i * size, images) for i, images in enumerate(random_batches(count, size, poison_batch))]


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
    for key, alpha in backend.matte(source, alpha_dtype):
        source.consumed += 1
        out.append((key, alpha))
    return out, source


def assert_all_matted(out, batches, dtype="uint8"):
    assert [key for key, _ in out] == [key for key, _ in batches]
    for (_, alpha), (_, images) in zip(out, batches):
        assert alpha.dtype == np.dtype(dtype)
        np.testing.assert_array_equal(alpha, expected_alpha(images, dtype))


# ---- the worker ----------------------------------------------------------------------------------------


def test_worker_halves_chunk_on_out_of_memory_and_keeps_it():
    predictor = BrightnessPredictor(max_frames=3)
    worker = MattingWorker(predictor, warmup=False)
    images = make_batches(1, size=8)[0][1]
    alpha, seconds = worker.matte(images, "uint16")
    np.testing.assert_array_equal(alpha, expected_alpha(images, "uint16"))
    assert worker.max_chunk == 2 and seconds >= 0
    predictor.calls.clear()
    worker.matte(images, "uint8")
    assert predictor.calls == [2, 2, 2, 2]  # the smaller size sticks: no new OOM on the next batch


def test_worker_gives_up_when_one_frame_does_not_fit():
    worker = MattingWorker(BrightnessPredictor(max_frames=0), warmup=False)
    with pytest.raises(WorkerOutOfMemory, match="single frame"):
        worker.matte(make_batches(1)[0][1])


# ---- the local backend ---------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", ["uint8", "uint16"])
def test_local_backend_mattes_in_order_one_batch_at_a_time(dtype):
    batches = make_batches(5)
    with create_backend(BrightnessFactory(), BackendConfig(kind="local")) as backend:
        out, source = run_backend(backend, batches, dtype)
    assert_all_matted(out, batches, dtype)
    assert source.max_ahead == 1
    assert backend.stats.frames == 20 and backend.stats.batches == 5


def test_local_backend_reports_a_batch_that_fails_twice_with_its_key():
    batches = make_batches(3, poison_batch=1)
    with create_backend(BrightnessFactory(fail_on_poison=True), BackendConfig(kind="local")) as backend:
        with pytest.raises(BatchFailed, match=r"^failed 2 times in matting: ValueError: poisoned frame$") as failed:
            run_backend(backend, batches)
        assert backend.stats.retried_batches == 1
    assert failed.value.key == 4 and isinstance(failed.value.cause, ValueError)


def test_local_backend_rejects_settings_it_cannot_honour():
    with pytest.raises(ConfigError, match="workers"):
        create_backend(BrightnessFactory(), BackendConfig(kind="local", workers=2))
    with pytest.raises(ConfigError, match="backend: expected one of auto, ray, local"):
        create_backend(BrightnessFactory(), BackendConfig(kind="spark"))


# ---- Ray: one local Ray session for the module ---------------------------------------------------------


@pytest.mark.slow
def test_ray_uneven_actors_keep_frame_order_and_bound_in_flight(local_ray, tmp_path):
    batches = make_batches(12)
    config = BackendConfig(kind="ray", workers=2, in_flight=1)
    one_slow = FaultyFirstWorker(BrightnessFactory(), tmp_path / "slow", delay_s=0.5)
    with create_backend(one_slow, config) as backend:
        out, source = run_backend(backend, batches)
    assert_all_matted(out, batches)
    assert source.max_ahead <= 2 * 2 * 1  # 2 actors x 1 in flight, x2 reorder slack
    assert backend.stats.batches == 12


@pytest.mark.slow
def test_ray_killed_actor_loses_nothing_and_output_matches_fault_free_run(local_ray, tmp_path):
    batches = make_batches(10)
    with create_backend(BrightnessFactory(), BackendConfig(kind="local")) as backend:
        reference, _ = run_backend(backend, make_batches(10))
    one_crashes = FaultyFirstWorker(BrightnessFactory(), tmp_path / "crash", exit_after_batches=2)
    with create_backend(one_crashes, BackendConfig(kind="ray", workers=2)) as backend:
        out, _ = run_backend(backend, batches)
        assert backend.stats.restarts == 1
    assert [key for key, _ in out] == [key for key, _ in reference]
    for (_, got), (_, want) in zip(out, reference):
        np.testing.assert_array_equal(got, want)


@pytest.mark.slow
def test_ray_reports_data_failures_and_checkpoint_errors_as_they_are(local_ray):
    config = BackendConfig(kind="ray", workers=2)
    with create_backend(BrightnessFactory(fail_on_poison=True), config) as backend:
        with pytest.raises(BatchFailed, match=r"^failed 2 times in matting: ValueError: poisoned frame$") as failed:
            run_backend(backend, make_batches(4, poison_batch=2))
    assert failed.value.key == 8
    with pytest.raises(CheckpointError, match="does not match"):
        create_backend(BrokenCheckpoint(), BackendConfig(kind="ray", workers=1))
