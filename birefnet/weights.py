"""Model sources -> checkpoints -> a BiRefNet with its weights.

A model source is a variant name, a .pth/.safetensors file, a directory in the hub layout
(model.safetensors beside config.json) or a hub repo id. For files the architecture is read off the
tensors' shapes, so a fine-tuned checkpoint needs no flags. Loading is strict, and a mismatch becomes
one readable sentence rather than a wall of tensor names.
"""

from __future__ import annotations

import math
import pickle
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from .backbones import BACKBONE_CONFIGS, PVT_V2_CONFIGS, PVTv2Config, SwinConfig
from .errors import CheckpointError
from .model import BiRefNet, BiRefNetConfig
from .registry import VARIANTS, Variant, get_variant

CHECKPOINT_SUFFIXES = (".safetensors", ".pth", ".pt", ".bin", ".ckpt")
HUB_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
_STRIPPED_PREFIXES = ("module.", "_orig_mod.")


@dataclass(frozen=True)
class ResolvedSource:
    """Where a model source's weights are on disk, and the variant it names (if any)."""

    path: Path
    variant: Variant | None
    description: str


def _download_from_hub(repo_id: str, variant: Variant | None) -> Path:
    """The repo's weight file from the local Hugging Face cache, downloading it once if needed."""
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError, LocalEntryNotFoundError, RepositoryNotFoundError

    hint = f" (variant {variant.name!r})" if variant else ""
    for filename in HUB_WEIGHT_FILES:
        try:
            return Path(hf_hub_download(repo_id, filename))
        except LocalEntryNotFoundError:  # (a subclass of EntryNotFoundError: test it first)
            raise CheckpointError(
                f"weights of {repo_id}{hint} are not in the local cache and the hub cannot be reached; "
                f"download them on a connected machine (huggingface-cli download {repo_id}) or pass a checkpoint file"
            ) from None
        except EntryNotFoundError:
            continue
        except RepositoryNotFoundError:
            raise CheckpointError(f"hub repo {repo_id!r} does not exist or is private") from None
        except Exception as exc:  # network and HTTP failures of every kind
            raise CheckpointError(f"could not download {repo_id}{hint}: {type(exc).__name__}: {exc}") from None
    raise CheckpointError(f"hub repo {repo_id!r} has none of {', '.join(HUB_WEIGHT_FILES)}")


def cached_hub_file(repo_id: str) -> Path | None:
    """The repo's weight file if it is already in the local cache (never touches the network)."""
    from huggingface_hub import try_to_load_from_cache

    for filename in HUB_WEIGHT_FILES:
        found = try_to_load_from_cache(repo_id, filename)
        if isinstance(found, str):
            return Path(found)
    return None


def _weights_in_directory(directory: Path) -> Path:
    for filename in HUB_WEIGHT_FILES:
        if (directory / filename).is_file():
            return directory / filename
    candidates = sorted(p for p in directory.iterdir() if p.suffix in CHECKPOINT_SUFFIXES)
    if len(candidates) == 1:
        return candidates[0]
    raise CheckpointError(
        f"directory {directory} has no {HUB_WEIGHT_FILES[0]}"
        + (f" and several checkpoints ({', '.join(p.name for p in candidates)}): name one" if candidates else "")
    )


def resolve_source(source: str | Path) -> ResolvedSource:
    """Find the checkpoint file a model source refers to, downloading a hub repo once if needed."""
    text = str(source)
    variant = get_variant(text)
    if variant is not None:
        if variant.bundled_path is not None:
            if not variant.bundled_path.is_file():
                raise CheckpointError(f"bundled weights of {variant.name!r} are missing: {variant.bundled_path}")
            return ResolvedSource(variant.bundled_path, variant, f"variant {variant.name}")
        if variant.hub_repo is None:
            raise CheckpointError(f"variant {variant.name!r} has neither bundled weights nor a hub repo")
        return ResolvedSource(_download_from_hub(variant.hub_repo, variant), variant, f"variant {variant.name}")
    path = Path(text).expanduser()
    if path.is_dir():
        return ResolvedSource(_weights_in_directory(path), None, str(path))
    if path.is_file():
        return ResolvedSource(path, None, str(path))
    if path.suffix in CHECKPOINT_SUFFIXES or text.startswith((".", "/", "~")):
        raise CheckpointError(f"checkpoint {text} does not exist")
    if re.fullmatch(r"[\w.-]+/[\w.-]+", text):
        return ResolvedSource(_download_from_hub(text, None), None, f"hub repo {text}")
    raise CheckpointError(
        f"model {text!r} is not a variant ({', '.join(VARIANTS)}), an existing file or directory, or a hub repo id"
    )


def strip_prefixes(state_dict: dict[str, Tensor]) -> dict[str, Tensor]:
    """Remove the ``module.`` (DataParallel) and ``_orig_mod.`` (torch.compile) prefixes, in any order."""
    stripped = {}
    for key, value in state_dict.items():
        while key.startswith(_STRIPPED_PREFIXES):
            key = key.split(".", 1)[1]
        stripped[key] = value
    return stripped


def _not_a_checkpoint(path: Path) -> str | None:
    """What the file's first bytes say it is not, when they do not start a checkpoint; None when they
    do (then the loader's own error is the reason). Garbage otherwise reads as 'list index out of range'
    from the unpickler, or as a file that holds code."""
    try:
        with path.open("rb") as handle:
            head = handle.read(9)
    except OSError:
        return None
    if path.suffix == ".safetensors":  # 8-byte header length, then the JSON header
        return None if head[8:9] == b"{" else "not a safetensors file (no JSON header)"
    if head.startswith(b"PK\x03\x04") or head[:1] == b"\x80":  # torch.save's zip archive, or a pickle
        return None
    return "not a PyTorch checkpoint (neither torch.save's zip archive nor a pickle)"


def read_state_dict(path: Path) -> dict[str, Tensor]:
    """Tensors of a .safetensors or a pickled state dict (weights_only: no code runs on load)."""
    problem = _not_a_checkpoint(path)
    if problem:
        raise CheckpointError(f"cannot read checkpoint {path}: {problem}")
    state: object
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:  # weights_only refused a class or a call: the file holds code or objects
        raise CheckpointError(
            f"checkpoint {path} holds code or Python objects besides tensors, which we refuse to load; "
            "if you trust its source, convert it once to safetensors (torch.load(..., weights_only=False), then "
            "safetensors.torch.save_file(state_dict, 'model.safetensors')) and pass that file") from None
    except Exception as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise CheckpointError(f"cannot read checkpoint {path}: {reason[:200]}") from None
    for wrapper in ("state_dict", "model", "model_state_dict"):
        if isinstance(state, dict) and isinstance(state.get(wrapper), dict):
            state = state[wrapper]
    if not isinstance(state, dict) or not all(isinstance(v, Tensor) for v in state.values()):
        raise CheckpointError(f"checkpoint {path} does not hold a state dict of tensors")
    return strip_prefixes(state)


def _count_indexed(state: dict[str, Tensor], pattern: str) -> int:
    """Number of distinct indices N in keys matching ``pattern`` (a regex with one (\\d+) group)."""
    regex = re.compile(pattern)
    return len({m.group(1) for key in state if (m := regex.match(key))})


def _infer_swin(state: dict[str, Tensor]) -> tuple[str, SwinConfig]:
    embed_dim = state["bb.patch_embed.proj.weight"].shape[0]
    stages = _count_indexed(state, r"bb\.layers\.(\d+)\.")
    depths = tuple(_count_indexed(state, rf"bb\.layers\.{i}\.blocks\.(\d+)\.") for i in range(stages))
    tables = [state[f"bb.layers.{i}.blocks.0.attn.relative_position_bias_table"] for i in range(stages)]
    window = (math.isqrt(tables[0].shape[0]) + 1) // 2
    config = SwinConfig(embed_dim, depths, tuple(t.shape[1] for t in tables), window)
    known = {**BACKBONE_CONFIGS, **{v.backbone: v.config.backbone_config for v in VARIANTS.values()}}
    name = next((n for n, c in known.items() if c == config), "swin_custom")
    return name, config


def _infer_pvt(state: dict[str, Tensor]) -> tuple[str, PVTv2Config]:
    stages = _count_indexed(state, r"bb\.patch_embed(\d+)\.")
    dims = tuple(state[f"bb.patch_embed{i}.proj.weight"].shape[0] for i in range(1, stages + 1))
    depths = tuple(_count_indexed(state, rf"bb\.block{i}\.(\d+)\.") for i in range(1, stages + 1))
    for name, config in PVT_V2_CONFIGS.items():
        if tuple(config.embed_dims) == dims and tuple(config.depths) == depths:
            return name, config
    raise CheckpointError(f"PVT v2 checkpoint with dims {dims} and depths {depths} matches no known variant")


def infer_config(state: dict[str, Tensor], origin: str = "checkpoint") -> BiRefNetConfig:
    """The architecture a state dict was saved from, read off its tensors' shapes."""
    backbone_config: SwinConfig | PVTv2Config
    try:
        if "bb.patch_embed.proj.weight" in state:
            backbone, backbone_config = _infer_swin(state)
        elif "bb.patch_embed1.proj.weight" in state:
            backbone, backbone_config = _infer_pvt(state)
        else:
            raise CheckpointError(
                f"{origin} does not look like a BiRefNet checkpoint: no backbone patch embedding "
                f"(bb.patch_embed...) among its {len(state)} tensors"
            )
        return BiRefNetConfig(
            backbone,
            backbone_config,
            decoder_channels=state["squeeze_module.0.conv_in.weight"].shape[0],
            aspp_channels=state["squeeze_module.0.dec_att.aspp1.atrous_conv.regular_conv.weight"].shape[0],
            gradient_channels=state["decoder.gdt_convs_4.0.weight"].shape[0],
        )
    except KeyError as exc:
        raise CheckpointError(f"{origin} is not a complete BiRefNet checkpoint: tensor {exc} is missing") from None
    except IndexError:  # a patch embedding without the stages behind it
        raise CheckpointError(
            f"{origin} is not a complete BiRefNet checkpoint: its backbone stages are missing") from None


def _summarise_keys(keys: list[str], limit: int = 3) -> str:
    """'12 (decoder.gdt_convs_4.*, bb.norm3.*, ...)': counts grouped by module, not every name."""
    groups = Counter(".".join(k.split(".")[:2]) + ".*" for k in keys)
    shown = ", ".join(g for g, _ in groups.most_common(limit))
    return f"{len(keys)} ({shown}{', ...' if len(groups) > limit else ''})"


def load_weights(model: BiRefNet, state: dict[str, Tensor], origin: str) -> None:
    """Strict load with one readable error: what is missing, unexpected or mis-shaped, and what the
    file looks like instead. Half-precision checkpoints are cast to the model's dtype."""
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    mis_shaped = [k for k in expected if k in state and state[k].shape != expected[k].shape]
    if missing or unexpected or mis_shaped:
        problems = []
        if missing:
            problems.append(f"missing keys {_summarise_keys(missing)}")
        if unexpected:
            problems.append(f"unexpected keys {_summarise_keys(unexpected)}")
        if mis_shaped:
            problems.append(f"shape mismatches {_summarise_keys(mis_shaped)}")
        try:
            looks_like = f"; the file looks like a {infer_config(state).backbone} BiRefNet"
        except CheckpointError:
            looks_like = "; the file does not look like a BiRefNet checkpoint"
        raise CheckpointError(
            f"{origin} does not fit BiRefNet({model.config.backbone}): {'; '.join(problems)}{looks_like}"
        )
    non_finite = [k for k, v in state.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]
    if non_finite:
        raise CheckpointError(f"{origin} holds non-finite weights (NaN or infinity) in {_summarise_keys(non_finite)}")
    converted = {k: v.to(expected[k].dtype) if v.is_floating_point() else v for k, v in state.items()}
    model.load_state_dict(converted, strict=True)


def build_model(name: str) -> BiRefNet:
    """A BiRefNet in eval mode with freshly initialised weights; ``name`` is a backbone or a variant."""
    from .registry import model_config

    return BiRefNet(model_config(name)).eval()


def load_model(source: str | Path, device: str | torch.device = "cpu") -> BiRefNet:
    """A BiRefNet in eval mode on ``device`` with the weights of any model source."""
    model, _ = load_model_and_variant(source, device)
    return model


def load_model_and_variant(source: str | Path, device: str | torch.device = "cpu") -> tuple[BiRefNet, Variant | None]:
    resolved = resolve_source(source)
    state = read_state_dict(resolved.path)
    config = infer_config(state, origin=f"checkpoint {resolved.path}")
    if resolved.variant is not None and resolved.variant.config.backbone_config != config.backbone_config:
        raise CheckpointError(
            f"{resolved.description} expects a {resolved.variant.backbone} checkpoint, "
            f"but {resolved.path} holds a {config.backbone} one"
        )
    with torch.device("meta"):
        model = BiRefNet(config)
    model = model.to_empty(device="cpu")
    load_weights(model, state, origin=f"checkpoint {resolved.path}")
    return model.eval().to(device), resolved.variant
