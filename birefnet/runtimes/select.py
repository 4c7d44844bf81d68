"""Pick and build the runtime a Predictor asked for, with the variant facts its pre-processing needs."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from ..errors import ConfigError
from ..export.metadata import is_onnx_file
from ..model import IMAGENET_MEAN, IMAGENET_STD
from ..registry import Variant, get_variant
from . import RUNTIMES
from .onnx_runtime import OnnxRuntime
from .torch_runtime import TorchRuntime, pick_precision

Runtime = TorchRuntime | OnnxRuntime


@dataclass(frozen=True)
class OpenedModel:
    """A runtime and what the predictor needs to feed it. ``fixed_resolution``: (W, H) a static export
    takes (None: any multiple of 32)."""

    runtime: Runtime
    variant: Variant | None
    dtype: torch.dtype
    fixed_resolution: tuple[int, int] | None
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD


def _onnx_precision(runtime: str, precision: str, device: torch.device) -> str:
    """Precision of the exported graph a checkpoint source is turned into (TensorRT: fp32, it casts itself)."""
    if precision == "bf16":
        raise ConfigError(f"runtime {runtime} takes precision fp32 or fp16, not bf16")
    if runtime == "tensorrt":
        return "fp32"
    if precision == "auto":
        return "fp16" if device.type == "cuda" else "fp32"
    return precision


def _open_onnx(source: str, runtime: str, device: torch.device, precision: str) -> OpenedModel:
    from ..export.cache import cached_export
    from ..export.optional import require

    require("onnxruntime", f"runtime {runtime}")  # before a checkpoint is exported for it
    if is_onnx_file(source):
        path = Path(source).expanduser()
    else:
        path = cached_export(source, _onnx_precision(runtime, precision, device))
    fp16 = precision in ("auto", "fp16")
    engine = OnnxRuntime(path, device, tensorrt=runtime == "tensorrt", fp16=fp16)
    meta = engine.metadata
    if runtime == "onnx" and precision not in ("auto", meta.precision):
        raise ConfigError(f"{path.name} holds an {meta.precision} graph; precision {precision} needs an export "
                          f"with --precision {precision} (or --precision auto)")
    graph_fp16 = meta.precision == "fp16" or (runtime == "tensorrt" and fp16)
    variant = get_variant(meta.variant) if meta.variant else None
    return OpenedModel(engine, variant, torch.float16 if graph_fp16 else torch.float32, meta.resolution,
                       meta.mean, meta.std)


def open_runtime(source: str, runtime: str, device: torch.device, precision: str, compile: bool | str,
                 channels_last: bool) -> OpenedModel:
    """The model of ``source`` on ``device`` in ``runtime`` (auto: onnx for an .onnx file, else torch)."""
    from ..weights import load_model_and_variant

    if runtime not in RUNTIMES:
        raise ConfigError(f"runtime must be one of {', '.join(RUNTIMES)}, not {runtime!r}")
    if runtime == "auto":
        runtime = "onnx" if is_onnx_file(source) else "torch"
    if runtime != "torch":
        if compile:
            raise ConfigError(f"compile is a torch runtime option; runtime {runtime} optimises the graph itself")
        return _open_onnx(source, runtime, device, precision)
    if is_onnx_file(source):
        raise ConfigError(f"{source} is an ONNX export; run it with runtime onnx or tensorrt")
    model, variant = load_model_and_variant(source, "cpu")
    dtype = pick_precision(precision, device)
    return OpenedModel(TorchRuntime(model, device, dtype, compile, channels_last), variant, dtype, None)
