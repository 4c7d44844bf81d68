"""Helpers shared by the model tests: the official manifests and the synthetic-weight procedure."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

FIXTURES = Path(__file__).parent / "fixtures"
MANIFEST_BACKBONES = sorted(p.stem.removeprefix("manifest_") for p in (FIXTURES / "manifests").glob("manifest_*.json"))


def load_manifest(backbone: str) -> list[tuple[str, list[int], str]]:
    data = json.loads((FIXTURES / "manifests" / f"manifest_{backbone}.json").read_text())
    return [(name, list(shape), dtype) for name, shape, dtype in data["tensors"]]


def synthetic_state_dict(model: torch.nn.Module, backbone: str) -> dict[str, torch.Tensor]:
    """Weights drawn as the equivalence data's procedure says: one generator seeded 0, manifest order."""
    generator = torch.Generator().manual_seed(0)
    own = model.state_dict()
    state = {}
    for name, shape, _ in load_manifest(backbone):
        tensor = own[name]
        if not tensor.is_floating_point():
            state[name] = tensor
        elif name.endswith("running_var"):
            state[name] = 0.5 + torch.rand(shape, generator=generator)
        elif len(shape) >= 2:
            state[name] = torch.randn(shape, generator=generator) / np.sqrt(np.prod(shape[1:]))
        elif name.endswith(".weight"):
            state[name] = 1 + 0.1 * torch.randn(shape, generator=generator)
        else:
            state[name] = 0.1 * torch.randn(shape, generator=generator)
    return state
