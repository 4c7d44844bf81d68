"""Fixtures shared by the test modules. Clip makers and independent decoders live in tests/clips.py,
test-side predictors and fault factories in tests/predictors.py."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest


@pytest.fixture(scope="module")
def local_ray() -> Iterator[Any]:
    """One real local Ray per test module that asks for it (Ray takes seconds to start)."""
    ray = pytest.importorskip("ray")
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()
