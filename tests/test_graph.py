"""The graph's side of the matting seam: batches go to the backend as keys, and come back named by frames."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from birefnet.errors import InputError
from pipeline.frames import FrameBatch
from pipeline.graph import matte_batches
from tests.predictors import BrightnessFactory, expected_alpha, random_batches
from workers.base import BackendConfig
from workers.factory import create_backend


def frame_batches(count: int, size: int = 4, poison_batch: int | None = None) -> list[FrameBatch]:
    return [FrameBatch(i * size, images, list(range(i * size, (i + 1) * size)), Fraction(1, 25))
            for i, images in enumerate(random_batches(count, size, poison_batch))]


def test_each_batch_comes_back_with_its_own_alpha_in_order():
    batches = frame_batches(3)
    with create_backend(BrightnessFactory(), BackendConfig(kind="local")) as backend:
        out = list(matte_batches(backend, batches, "uint16"))
    assert [batch.index for batch, _ in out] == [0, 4, 8]
    assert all(got is sent for (got, _), sent in zip(out, batches))
    for batch, alpha in out:
        np.testing.assert_array_equal(alpha, expected_alpha(batch.images, "uint16"))


def test_a_batch_that_fails_twice_is_reported_with_its_frame_range():
    batches = frame_batches(3, poison_batch=1)
    with create_backend(BrightnessFactory(fail_on_poison=True), BackendConfig(kind="local")) as backend:
        with pytest.raises(InputError, match=r"^frames 4-7 failed 2 times in matting: ValueError: poisoned frame$"):
            list(matte_batches(backend, batches, "uint8"))
