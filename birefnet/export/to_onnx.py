"""BiRefNet -> ONNX with dynamic batch and size, checked by ONNX Runtime against PyTorch, optionally int8.

The graph is traced with the TorchScript exporter (opset >= 17): our deformable convolution is
``grid_sample`` plus a matrix product, so every op has a standard ONNX form and no custom op is needed.
Input sizes stay symbolic through the trace (the model takes no Python branch on them), so a dynamic
export is traced at a small size and verified at that size and at another, non-square one.
"""

from __future__ import annotations

import copy
import logging
import tempfile
import time
import warnings
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..atomic import AtomicPath
from ..errors import UserError
from ..model import IMAGENET_MEAN, IMAGENET_STD, BiRefNet
from ..registry import Variant
from .metadata import INPUT_NAME, OUTPUT_NAME, ExportMetadata
from .optional import require

MIN_OPSET = 17
FP32_LOGIT_LIMIT = 1e-3  # max abs logit difference ONNX Runtime vs PyTorch for an fp32 export
FP16_ALPHA_LIMIT = 2e-2  # max abs alpha difference for an fp16 export (half-precision arithmetic inside)
QUANTIZED_OPS = ["MatMul"]  # int8 weights for the attention and MLP products; convolutions stay fp32
VERIFY_FRAMES = 1  # noise frames and scene frames per checked size
COST_FRAMES = 2  # the same for the int8 accuracy cost
DYNAMIC_TRACE_SIZE = (256, 256)  # (W, H) a dynamic export is traced at
PRECISIONS = {"fp32": torch.float32, "fp16": torch.float16}


class ExportError(UserError):
    """The exporter failed, or the exported graph disagrees with PyTorch."""

    exit_code = 6


@dataclass(frozen=True)
class ExportOptions:
    """``resolution``: (W, H) for a static export, None for any size; ``batch``: None for any."""

    resolution: tuple[int, int] | None = None
    batch: int | None = None
    precision: str = "fp32"
    opset: int = MIN_OPSET
    quantize: str | None = None  # "int8": dynamic quantisation for CPU
    verify: bool = True


@dataclass(frozen=True)
class Verification:
    """ONNX Runtime (CPU) against PyTorch fp32 on the same normalised frames."""

    sizes: tuple[tuple[int, int], ...]  # (W, H) checked
    frames: int  # frames per size: half random noise, half synthetic scenes
    max_logit_error: float
    max_alpha_error: float
    precision: str

    @property
    def passed(self) -> bool:
        if self.precision == "fp32":
            return self.max_logit_error < FP32_LOGIT_LIMIT
        return self.max_alpha_error < FP16_ALPHA_LIMIT

    def line(self) -> str:
        sizes = ", ".join(f"{w}x{h}" for w, h in self.sizes)
        limit = (f"logit error {self.max_logit_error:.1e} (limit {FP32_LOGIT_LIMIT:.0e})" if self.precision == "fp32"
                 else f"alpha error {self.max_alpha_error:.1e} (limit {FP16_ALPHA_LIMIT:.0e}), logit error "
                      f"{self.max_logit_error:.1e}")
        verdict = "verified" if self.passed else "FAILED verification"
        return f"{verdict}: ONNX Runtime vs PyTorch, max abs {limit}, {self.frames} frames at each of {sizes}"


@dataclass(frozen=True)
class QuantizationCost:
    """Alpha MAD of the int8 graph against the fp32 model, on noise frames and on synthetic scenes."""

    mad_generated: float
    mad_scenes: float

    def line(self) -> str:
        return (f"int8 cost: alpha MAD vs fp32 {self.mad_generated * 1e3:.2f}e-3 on generated frames, "
                f"{self.mad_scenes * 1e3:.2f}e-3 on synthetic matting scenes")


@dataclass(frozen=True)
class ExportReport:
    path: Path
    metadata: ExportMetadata
    seconds: float
    verification: Verification | None
    quantization: QuantizationCost | None


def _check_options(options: ExportOptions) -> None:
    if options.precision not in PRECISIONS:
        raise ExportError(f"precision must be fp32 or fp16, not {options.precision!r}")
    if options.opset < MIN_OPSET:
        raise ExportError(f"opset must be {MIN_OPSET} or more, not {options.opset}")
    if options.quantize not in (None, "int8"):
        raise ExportError(f"quantize must be int8 or none, not {options.quantize!r}")
    if options.quantize and options.precision != "fp32":
        raise ExportError("int8 quantisation starts from fp32 weights; use --precision fp32 with --quantize int8")
    if options.resolution is not None and (min(options.resolution) < 32 or any(s % 32 for s in options.resolution)):
        raise ExportError(f"resolution {options.resolution}: sides must be positive multiples of 32")


class _HalfGraph(nn.Module):
    """fp16 weights and arithmetic inside; the graph's input and output stay float32."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model.half()

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.model(image.half()).float()


def _trace(model: BiRefNet, path: Path, options: ExportOptions, size: tuple[int, int]) -> None:
    """The TorchScript exporter on a CPU copy of the model, symbolic in the axes left dynamic."""
    graph: nn.Module = copy.deepcopy(model).to("cpu", torch.float32).eval()
    if options.precision == "fp16":
        graph = _HalfGraph(graph)
    width, height = size
    example = torch.zeros(options.batch or 1, 3, height, width)
    axes = {**({0: "batch"} if options.batch is None else {}),
            **({2: "height", 3: "width"} if options.resolution is None else {})}
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # tracer and deprecation warnings about code we have checked
            torch.onnx.export(graph, (example,), str(path), dynamo=False, opset_version=options.opset,
                              input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                              dynamic_axes={INPUT_NAME: axes, OUTPUT_NAME: axes} if axes else None)
    except Exception as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ExportError(f"torch.onnx.export failed: {reason}") from None


def _save_with_metadata(source: Path, target: Path, metadata: ExportMetadata) -> None:
    onnx = require("onnx", "ONNX export")
    graph = onnx.load(str(source))
    del graph.metadata_props[:]
    for key, value in metadata.as_props().items():
        graph.metadata_props.add(key=key, value=value)
    graph.producer_name = "birefnet-video"
    onnx.save(graph, str(target))


def _check_frames(size: tuple[int, int], count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``count`` uint8 RGB frames at (W, H): uniform noise, and frames of a synthetic matting scene."""
    from ..train.scenes import SyntheticScene

    width, height = size
    rng = np.random.default_rng(seed)
    noise = rng.integers(0, 256, (count, height, width, 3), dtype=np.uint8)
    scene = SyntheticScene(seed, 4 * count, height, width)
    scenes = np.stack([scene.render(t).image for t in range(0, 4 * count, 4)])
    return noise, scenes


def _normalised(frames: np.ndarray) -> torch.Tensor:
    x = torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 255.0
    mean, std = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return (x - mean) / std


def _compare(model: BiRefNet, path: Path, sizes: list[tuple[int, int]],
             per_kind: int) -> tuple[list[tuple[float, float, float]], list[tuple[float, float, float]]]:
    """(max logit error, max alpha error, alpha MAD) per size, for noise frames and for scene frames."""
    from ..runtimes.onnx_runtime import OnnxRuntime

    runtime = OnnxRuntime(path, torch.device("cpu"))
    reference = copy.deepcopy(model).to("cpu", torch.float32).eval()
    results: tuple[list, list] = ([], [])
    for index, size in enumerate(sizes):
        for kind, frames in enumerate(_check_frames(size, per_kind, seed=index)):
            x = _normalised(frames)
            with torch.inference_mode():
                expected = reference(x)
                got = runtime(x)
            alpha_error = (torch.sigmoid(got) - torch.sigmoid(expected)).abs()
            results[kind].append(((got - expected).abs().max().item(), alpha_error.max().item(),
                                  alpha_error.mean().item()))
    return results


def _verification(results, sizes: list[tuple[int, int]], per_kind: int, precision: str) -> Verification:
    rows = [row for kind in results for row in kind]
    return Verification(tuple(sizes), 2 * per_kind, max(r[0] for r in rows), max(r[1] for r in rows), precision)


def _quantize(source: Path, target: Path) -> None:
    require("onnxruntime", "int8 quantisation")
    from onnxruntime.quantization import QuantType, quantize_dynamic

    folded = target.with_name(f"{target.stem}.folded.onnx")
    _fold_weight_identities(source, folded)
    quiet = logging.getLogger()  # the quantiser logs advice through the root logger
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        quantize_dynamic(str(folded), str(target), weight_type=QuantType.QInt8, op_types_to_quantize=QUANTIZED_OPS)
    finally:
        quiet.setLevel(level)
        folded.unlink(missing_ok=True)


def _fold_weight_identities(source: Path, target: Path) -> None:
    """``source`` with every Identity of a weight replaced by the weight itself. The exporter shares a
    weight used twice through Identity nodes; the quantiser only takes weights a MatMul reads directly,
    so it left those MatMuls in fp32 and kept each fp32 weight beside its int8 copy (the demo model's
    int8 file came out 14% larger than its fp32 one, with 35 of its 70 weight products quantised)."""
    import onnx

    model = onnx.load(str(source))
    graph = model.graph
    weights = {t.name for t in graph.initializer}
    outputs = {o.name for o in graph.output}
    renamed = {n.output[0]: n.input[0] for n in graph.node
               if n.op_type == "Identity" and n.input[0] in weights and n.output[0] not in outputs}
    kept = [n for n in graph.node if not (n.op_type == "Identity" and n.output[0] in renamed)]
    del graph.node[:]
    graph.node.extend(kept)
    for node in graph.node:
        for index, name in enumerate(node.input):
            node.input[index] = renamed.get(name, name)
    onnx.save(model, str(target))


def export_onnx(model: BiRefNet, variant: Variant | None, path: str | Path,
                options: ExportOptions = ExportOptions()) -> ExportReport:
    """Write ``model`` as ONNX to ``path`` (atomically), verified unless ``options.verify`` is off.

    The file is only put in place when the verification passes; an int8 file is verified as fp32
    before quantisation, and its accuracy cost is measured after."""
    require("onnx", "ONNX export")
    require("onnxruntime", "ONNX export (it verifies the file with ONNX Runtime)")
    _check_options(options)
    started = time.perf_counter()
    path = Path(path).expanduser()
    traced = options.resolution or DYNAMIC_TRACE_SIZE
    metadata = ExportMetadata(
        variant=variant.name if variant else None, backbone=model.config.backbone, resolution=options.resolution,
        batch=options.batch, variant_resolution=variant.resolution if variant else None,
        dynamic_base=variant.dynamic_base if variant else 1024, mean=IMAGENET_MEAN, std=IMAGENET_STD,
        precision=options.precision, quantization=None, opset=options.opset)
    # a second, non-square size: the dynamic axes really are dynamic
    sizes = [traced] if options.resolution else [traced, (traced[0] + 64, traced[1] - 64)]
    verification = cost = None
    with tempfile.TemporaryDirectory(prefix="birefnet-export-") as scratch:
        plain = Path(scratch) / "traced.onnx"
        described = Path(scratch) / "described.onnx"
        _trace(model, plain, options, traced)
        _save_with_metadata(plain, described, metadata)
        if options.verify:
            results = _compare(model, described, sizes, VERIFY_FRAMES)
            verification = _verification(results, sizes, VERIFY_FRAMES, options.precision)
            if not verification.passed:
                raise ExportError(f"{path.name} not written: {verification.line()}")
        final = described
        if options.quantize:
            metadata = replace(metadata, quantization=options.quantize)
            quantized = Path(scratch) / "quantized.onnx"
            _quantize(described, quantized)
            final = Path(scratch) / "final.onnx"
            _save_with_metadata(quantized, final, metadata)
            noise, scenes = _compare(model, final, sizes, COST_FRAMES)
            cost = QuantizationCost(float(np.mean([r[2] for r in noise])), float(np.mean([r[2] for r in scenes])))
        path.parent.mkdir(parents=True, exist_ok=True)
        with AtomicPath(path) as temp:
            temp.write_bytes(final.read_bytes())
    return ExportReport(path, metadata, time.perf_counter() - started, verification, cost)
