"""Fault injection: every place a run can be broken, and what it gets.

Ray faults run against a real local Ray with ``tests.predictors.FaultyFirstWorker`` (the first actor
exits while starting, exits mid-run, freezes with SIGSTOP, or kills its raylet); every output is
compared with a fault-free run. CLI faults run ``run_pipeline.py`` in a subprocess with the bundled
demo model on generated clips. docs/reliability.md lists each case with the test that checks it.
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.predictors import (
    BrightnessFactory,
    FaultyEveryWorker,
    FaultyFirstWorker,
    expected_alpha,
    random_batches,
)
from tests.ray_session import local_ray  # noqa: F401  (fixture)
from workers.base import BackendConfig, WorkersLost
from workers.factory import create_backend


def keyed_batches(count: int) -> list[tuple[int, np.ndarray]]:
    return [(i, images) for i, images in enumerate(random_batches(count))]


def matte_all(backend, batches) -> list[tuple[int, np.ndarray]]:
    return list(backend.matte(iter(batches)))


def assert_same_as_fault_free(out, batches) -> None:
    """The fault-free result of a BrightnessPredictor is exact: the mean brightness of each frame."""
    assert [key for key, _ in out] == [key for key, _ in batches]
    for (_, alpha), (_, images) in zip(out, batches):
        np.testing.assert_array_equal(alpha, expected_alpha(images))


# ---- Ray actors: start-up, mid-run, hang ----------------------------------------------------------------


@pytest.mark.slow
def test_actor_dying_while_it_starts_is_replaced(local_ray, tmp_path):
    dies_at_start = FaultyFirstWorker(BrightnessFactory(), tmp_path / "token", exit_at_start=True)
    batches = keyed_batches(6)
    with create_backend(dies_at_start, BackendConfig(kind="ray", workers=2)) as backend:
        out = matte_all(backend, batches)
        assert backend.stats.restarts == 1
    assert_same_as_fault_free(out, batches)


@pytest.mark.slow
def test_hung_actor_is_replaced_and_its_batches_resent(local_ray, tmp_path):
    freezes = FaultyFirstWorker(BrightnessFactory(), tmp_path / "token", exit_after_batches=1, fault="stop")
    batches = keyed_batches(8)
    config = BackendConfig(kind="ray", workers=2, hang_floor_s=1.0)
    with create_backend(freezes, config) as backend:
        out = matte_all(backend, batches)
        assert backend.stats.restarts == 1
    assert_same_as_fault_free(out, batches)


@pytest.mark.slow
def test_actors_that_keep_dying_end_the_run_in_one_line(local_ray):
    config = BackendConfig(kind="ray", workers=1, max_restarts=1)
    with create_backend(FaultyEveryWorker(BrightnessFactory()), config) as backend:
        with pytest.raises(WorkersLost, match=r"^matting actors were lost 2 times; last: \w+") as lost:
            matte_all(backend, keyed_batches(3))
    assert "\n" not in str(lost.value)
