"""PVT v2 backbone: checkpoint layout of every released variant, output geometry, determinism."""

import json
from functools import cache
from pathlib import Path

import pytest
import torch

from birefnet.backbones.pvt_v2 import PVT_V2_CONFIGS, PyramidVisionTransformerV2

MANIFESTS = Path(__file__).parent / "fixtures" / "manifests"
VARIANTS = sorted(PVT_V2_CONFIGS)


@cache
def backbone(name: str) -> PyramidVisionTransformerV2:
    torch.manual_seed(0)
    return PyramidVisionTransformerV2(PVT_V2_CONFIGS[name]).eval()


def manifest_backbone_entries(name: str) -> list[tuple[str, list[int], str]]:
    tensors = json.loads((MANIFESTS / f"manifest_{name}.json").read_text())["tensors"]
    return [(key.removeprefix("bb."), shape, dtype) for key, shape, dtype in tensors if key.startswith("bb.")]


def test_all_manifest_variants_are_configured():
    released = sorted(p.stem.removeprefix("manifest_") for p in MANIFESTS.glob("manifest_pvt_v2_*.json"))
    assert released == VARIANTS


@pytest.mark.parametrize("name", VARIANTS)
def test_state_dict_matches_checkpoint_manifest(name):
    state = backbone(name).state_dict()
    ours = [(key, list(t.shape), str(t.dtype).removeprefix("torch.")) for key, t in state.items()]
    assert ours == manifest_backbone_entries(name)


@pytest.mark.parametrize("name", VARIANTS)
def test_forward_returns_four_nchw_maps_at_strides_4_to_32(name):
    model = backbone(name)
    with torch.no_grad():
        features = model(torch.randn(2, 3, 64, 96))
    assert len(features) == 4
    expected = [(2, c, 64 // s, 96 // s) for c, s in zip(model.out_channels, (4, 8, 16, 32))]
    assert [tuple(f.shape) for f in features] == expected
    assert all(torch.isfinite(f).all() for f in features)
    assert model.out_channels == PVT_V2_CONFIGS[name].embed_dims


def test_accepts_any_multiple_of_32():
    with torch.no_grad():
        features = backbone("pvt_v2_b0")(torch.randn(1, 3, 192, 320))
    assert [tuple(f.shape[2:]) for f in features] == [(48, 80), (24, 40), (12, 20), (6, 10)]


@pytest.mark.parametrize("name", ["pvt_v2_b0", "pvt_v2_b2"])
def test_fp32_forward_is_deterministic(name):
    x = torch.randn(2, 3, 64, 96, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        first = backbone(name)(x)
        second = backbone(name)(x.clone())
    for a, b in zip(first, second):
        assert torch.equal(a, b)


@pytest.mark.parametrize("name", ["pvt_v2_b0", "pvt_v2_b2"])
def test_batch_items_match_single_item_forward(name):
    x = torch.randn(2, 3, 64, 96, generator=torch.Generator().manual_seed(2))
    model = backbone(name)
    with torch.no_grad():
        batched = model(x)
        for i in range(2):
            single = model(x[i : i + 1])
            for b, s in zip(batched, single):
                torch.testing.assert_close(b[i : i + 1], s, rtol=0, atol=1e-5)


def test_drop_path_is_inactive_in_eval_and_active_in_train():
    torch.manual_seed(0)
    model = PyramidVisionTransformerV2(PVT_V2_CONFIGS["pvt_v2_b0"], drop_path_rate=0.5)
    x = torch.randn(4, 3, 64, 64)
    with torch.no_grad():
        model.eval()
        eval_out = model(x)[-1]
        assert torch.equal(eval_out, model(x)[-1])
        model.train()
        train_out = model(x)[-1]
    assert not torch.allclose(train_out, eval_out)
