"""ONNX Runtime as a Predictor's runtime: the CPU provider, CUDA, or TensorRT with its engines cached on disk.

Input and output stay on the predictor's device: on CUDA the session reads the torch tensor's memory
and writes into a torch tensor (I/O binding), so frames never round-trip through the host. A static
export (fixed size or batch) is checked against each call; a static batch is filled up with zeros.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from ..errors import ConfigError, InputError
from ..export.metadata import INPUT_NAME, OUTPUT_NAME, read_metadata
from ..export.optional import require

TENSORRT_PROVIDER = "TensorrtExecutionProvider"
CUDA_PROVIDER = "CUDAExecutionProvider"
CPU_PROVIDER = "CPUExecutionProvider"


def engine_cache_dir(model_path: Path) -> Path:
    """Where TensorRT keeps the engines it builds for ``model_path`` (beside it, one folder per file)."""
    return model_path.with_name(model_path.name + ".trt")


def _providers(ort, device: torch.device, tensorrt: bool, fp16: bool, model_path: Path) -> list:
    available = ort.get_available_providers()
    if device.type == "mps":
        raise ConfigError("the onnx and tensorrt runtimes run on cpu or cuda, not mps; use --runtime torch")
    if tensorrt and (device.type != "cuda" or TENSORRT_PROVIDER not in available):
        where = "a CUDA GPU" if device.type != "cuda" else "onnxruntime-gpu with TensorRT"
        raise ConfigError(f"runtime tensorrt needs {where} (this onnxruntime offers {', '.join(available)}): "
                          "pip install 'birefnet-video[tensorrt]'")
    if device.type == "cpu":
        return [CPU_PROVIDER]
    if CUDA_PROVIDER not in available:
        raise ConfigError(f"runtime onnx on {device} needs onnxruntime-gpu (this onnxruntime offers "
                          f"{', '.join(available)}): pip install onnxruntime-gpu, or use --device cpu")
    index = device.index if device.index is not None else torch.cuda.current_device()
    cuda = (CUDA_PROVIDER, {"device_id": index})
    if not tensorrt:
        return [cuda]
    cache = engine_cache_dir(model_path)
    cache.mkdir(parents=True, exist_ok=True)
    trt = (TENSORRT_PROVIDER, {"device_id": index, "trt_fp16_enable": fp16, "trt_engine_cache_enable": True,
                               "trt_engine_cache_path": str(cache), "trt_timing_cache_enable": True,
                               "trt_timing_cache_path": str(cache)})
    return [trt, cuda]


class OnnxRuntime:
    """Logits of an exported BiRefNet graph (``birefnet-video export``) for normalised input on ``device``.

    ``tensorrt``: run through TensorRT (fp16 when ``fp16``), the engines built once per input shape and
    kept in ``<file>.trt/``; parts TensorRT cannot take fall back to CUDA.
    """

    def __init__(self, path: str | Path, device: torch.device, tensorrt: bool = False, fp16: bool = True) -> None:
        ort = require("onnxruntime", "runtime " + ("tensorrt" if tensorrt else "onnx"))
        self.path = Path(path).expanduser()
        self.metadata = read_metadata(self.path)
        self.device = device
        self.name = "tensorrt" if tensorrt else "onnx"
        options = ort.SessionOptions()
        options.log_severity_level = 3  # warnings of graph fusions are not the user's business
        providers = _providers(ort, device, tensorrt, fp16, self.path)
        self.session = ort.InferenceSession(str(self.path), options, providers=providers)
        self.provider = self.session.get_providers()[0]

    def check_size(self, width: int, height: int) -> None:
        """An ``InputError`` for a size this file cannot take."""
        static = self.metadata.resolution
        if static is not None and (width, height) != static:
            raise InputError(f"{self.path.name} is a static export at {static[0]}x{static[1]} and cannot take "
                             f"{width}x{height} input; re-export with --resolution {width}x{height} or dynamic")
        if width % 32 or height % 32:
            raise InputError(f"{self.path.name} takes sides that are multiples of 32, not {width}x{height}")

    def __call__(self, x: Tensor) -> Tensor:
        count, _, height, width = x.shape
        self.check_size(width, height)
        step = self.metadata.batch or count
        parts = []
        for start in range(0, count, step):
            chunk = x[start:start + step]
            filled = len(chunk)
            if filled < step:
                chunk = torch.cat([chunk, chunk.new_zeros((step - filled, *chunk.shape[1:]))])
            parts.append(self._run(chunk.float().contiguous())[:filled])
        return parts[0] if len(parts) == 1 else torch.cat(parts)

    def _run(self, x: Tensor) -> Tensor:
        if x.device.type == "cpu":
            logits = self.session.run([OUTPUT_NAME], {INPUT_NAME: x.numpy()})[0]
            return torch.from_numpy(logits)
        out = torch.empty((x.shape[0], 1, *x.shape[2:]), dtype=torch.float32, device=x.device)
        binding = self.session.io_binding()
        index = x.device.index or 0
        binding.bind_input(INPUT_NAME, "cuda", index, np.float32, tuple(x.shape), x.data_ptr())
        binding.bind_output(OUTPUT_NAME, "cuda", index, np.float32, tuple(out.shape), out.data_ptr())
        torch.cuda.current_stream(x.device).synchronize()  # the session runs on its own stream
        self.session.run_with_iobinding(binding)
        return out
