"""Fixtures shared by the test modules. Clip makers and independent decoders live in tests/clips.py,
test-side predictors and fault factories in tests/predictors.py."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest


@pytest.fixture(scope="module")
def local_ray() -> Iterator[Any]:
    """One real local Ray per test module that asks for it (Ray takes seconds to start)."""
    ray = pytest.importorskip("ray")
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="session")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real checkpoint file of the demo architecture with seeded random weights (safetensors)."""
    import torch
    from safetensors.torch import save_file

    from birefnet import build_model

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("checkpoint") / "demo.safetensors"
    save_file(build_model("demo").state_dict(), str(path))
    return path


@pytest.fixture(scope="session", autouse=True)
def one_torch_thread() -> Iterator[None]:
    """Torch in the test process on one thread: its models are tiny (the demo architecture at 64 px), and
    two threads on two cores that Ray actors, subprocesses or other programs also use stall at every op
    (measured: the slow training tests took 266 s with two threads on a loaded machine, 50 s with one).
    Ray actors and CLI subprocesses keep their own settings."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(autouse=True)
def autograd_is_left_on() -> Iterator[None]:
    """Fails the test that switches autograd off for the rest of the session (a benchmark main run
    in-process once did, and the training tests after it failed far from the cause)."""
    yield
    torch = sys.modules.get("torch")
    if torch is not None:
        assert torch.is_grad_enabled(), "this test left autograd disabled for the tests after it"
