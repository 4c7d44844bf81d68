"""The model matches the official checkpoints' layout and numerics."""

import numpy as np
import pytest
import torch

from birefnet import BiRefNet, build_model
from birefnet.registry import VARIANTS, model_config
from birefnet.weights import load_weights

from .model_helpers import FIXTURES, MANIFEST_BACKBONES, load_manifest, synthetic_state_dict


@pytest.mark.parametrize("backbone", MANIFEST_BACKBONES)
def test_state_dict_equals_official_manifest(backbone):
    with torch.device("meta"):  # shapes and dtypes without allocating 220M parameters
        model = BiRefNet(model_config(backbone))
    ours = [(k, list(v.shape), str(v.dtype).removeprefix("torch.")) for k, v in model.state_dict().items()]
    assert ours == load_manifest(backbone)


@pytest.mark.slow
@pytest.mark.parametrize("backbone", ["swin_v1_t", "swin_v1_l", "pvt_v2_b2"])
def test_logits_match_official_model(backbone):
    model = build_model(backbone)
    load_weights(model, synthetic_state_dict(model, backbone), origin="synthetic")
    reference = np.load(FIXTURES / f"reference_{backbone}_seed0.npz")
    for i in range(2):
        x = torch.from_numpy(reference[f"input_{i}"])
        with torch.inference_mode():
            logits = model(x).numpy()
        expected = reference[f"logits_{i}"]
        assert logits.shape == expected.shape
        assert np.abs(logits - expected).max() < 1e-3, f"shape {x.shape}"


def test_every_variant_builds_its_architecture():
    for name, variant in VARIANTS.items():
        with torch.device("meta"):
            model = BiRefNet(model_config(name))
        assert model.config.backbone == variant.backbone


def test_build_model_is_eval_and_returns_logits_of_input_size():
    model = build_model("demo")
    assert not model.training
    with torch.inference_mode():
        out = model(torch.randn(2, 3, 64, 96))
    assert out.shape == (2, 1, 64, 96)


def test_batch_items_are_independent():
    model = build_model("demo")
    x = torch.randn(3, 3, 64, 64)
    with torch.inference_mode():
        batched = model(x)
        single = model(x[1:2])
    assert torch.allclose(batched[1:2], single, atol=1e-5)


def test_input_not_multiple_of_32_is_rejected():
    with pytest.raises(ValueError, match="multiples of 32"):
        build_model("demo")(torch.randn(1, 3, 60, 64))


def test_training_forward_returns_side_outputs():
    model = build_model("demo").train()
    out = model.forward_train(torch.randn(2, 3, 64, 64))
    assert out["logits"].shape == (2, 1, 64, 64)
    assert len(out["side_logits"]) == 3 and len(out["gradient_logits"]) == 3
    assert [t.shape[-1] for t in out["side_logits"]] == [2, 4, 8]


def test_attention_masks_are_cached_and_follow_weight_changes():
    model = build_model("swin_v1_t")
    attn = model.bb.layers[0].blocks[1].attn
    with torch.inference_mode():
        first = attn._masks(True, torch.float32)
        assert attn._masks(True, torch.float32) is first  # built once per shape, reused per call
    with torch.no_grad():
        attn.relative_position_bias_table.add_(1.0)
    with torch.inference_mode():
        rebuilt = attn._masks(True, torch.float32)
    assert rebuilt is not first
    finite = torch.isfinite(first[(False, False)])
    assert torch.allclose(rebuilt[(False, False)][finite], first[(False, False)][finite] + 1.0)
