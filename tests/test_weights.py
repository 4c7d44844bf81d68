"""Real checkpoints written here (random weights, official key names) load back through every source kind."""

import json

import pytest
import torch
from safetensors.torch import save_file

from birefnet import CheckpointError, build_model, load_model
from birefnet.weights import infer_config, read_state_dict, resolve_source


@pytest.fixture(scope="module")
def demo_state():
    torch.manual_seed(0)
    return build_model("demo").state_dict()


def _same_weights(model, state):
    return all(torch.equal(model.state_dict()[k].float(), v.float()) for k, v in state.items())


@pytest.mark.parametrize("prefix", ["", "module.", "_orig_mod.", "module._orig_mod."])
def test_pth_with_and_without_prefixes(tmp_path, demo_state, prefix):
    path = tmp_path / "finetune.pth"
    torch.save({prefix + k: v for k, v in demo_state.items()}, path)
    model = load_model(str(path))
    assert _same_weights(model, demo_state)
    assert not model.training


def test_pth_wrapped_in_a_training_checkpoint(tmp_path, demo_state):
    path = tmp_path / "epoch_3.pth"
    torch.save({"state_dict": demo_state, "epoch": 3}, path)
    assert _same_weights(load_model(str(path)), demo_state)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_safetensors(tmp_path, demo_state, dtype):
    path = tmp_path / "half.safetensors"
    save_file({k: v.to(dtype) if v.is_floating_point() else v for k, v in demo_state.items()}, str(path))
    model = load_model(str(path))
    assert next(model.parameters()).dtype == torch.float32
    key = "decoder.conv_out1.0.weight"
    assert torch.equal(model.state_dict()[key], demo_state[key].to(dtype).float())


def test_hub_layout_directory(tmp_path, demo_state):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "SegformerForSemanticSegmentation"}))
    save_file(demo_state, str(tmp_path / "model.safetensors"))
    assert _same_weights(load_model(str(tmp_path)), demo_state)


def test_backbone_detected_from_shapes(tmp_path):
    with torch.device("meta"):
        state = build_model("swin_v1_t").state_dict()
    assert infer_config(state).backbone == "swin_v1_t"
    with torch.device("meta"):
        state = build_model("pvt_v2_b1").state_dict()
    assert infer_config(state).backbone == "pvt_v2_b1"
    with torch.device("meta"):
        state = build_model("general").state_dict()
    assert infer_config(state).backbone == "swin_v1_l"


def test_missing_and_unexpected_keys_give_one_readable_line(tmp_path, demo_state):
    broken = {k: v for k, v in demo_state.items() if not k.startswith("decoder.gdt_convs_attn")}
    broken["decoder.extra_head.weight"] = torch.zeros(1)
    path = tmp_path / "broken.safetensors"
    save_file(broken, str(path))
    with pytest.raises(CheckpointError) as info:
        load_model(str(path))
    message = str(info.value)
    assert "\n" not in message
    assert "missing keys 6 (decoder.gdt_convs_attn_4.*" in message
    assert "unexpected keys 1 (decoder.extra_head.*)" in message
    assert "looks like a swin_demo BiRefNet" in message


def test_not_a_birefnet_checkpoint(tmp_path):
    path = tmp_path / "resnet.pth"
    torch.save({"conv1.weight": torch.zeros(64, 3, 7, 7), "fc.weight": torch.zeros(10, 512)}, path)
    with pytest.raises(CheckpointError, match="does not look like a BiRefNet checkpoint"):
        load_model(str(path))


@pytest.mark.parametrize("name, says", [("truncated.safetensors", "not a safetensors file"),
                                        ("random.pth", "not a PyTorch checkpoint")])
def test_a_file_that_is_no_checkpoint_says_so(tmp_path, name, says):
    path = tmp_path / name
    path.write_bytes(b"\x00\x01 not a checkpoint" + bytes(range(256)))
    with pytest.raises(CheckpointError, match=f"cannot read checkpoint .*{name}: {says}"):
        load_model(str(path))


def test_pickled_code_is_refused(tmp_path):
    class Payload:
        def __reduce__(self):
            return (print, ("this must never run",))

    path = tmp_path / "evil.pth"
    torch.save({"x": Payload()}, path)
    with pytest.raises(CheckpointError):
        read_state_dict(path)


def test_unknown_sources(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        resolve_source(str(tmp_path / "nope.pth"))
    with pytest.raises(CheckpointError, match="not a variant"):
        resolve_source("no such model")


def test_uncached_hub_repo_offline(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    import huggingface_hub.constants as constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path))
    with pytest.raises(CheckpointError, match="not in the local cache"):
        load_model("lite")
