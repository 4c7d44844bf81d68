"""The PyTorch runtime: the model eager or compiled, under autocast for fp16/bf16, channels-last on GPU."""

from __future__ import annotations

import torch
from torch import Tensor

from ..errors import ConfigError
from ..model import BiRefNet

PRECISIONS = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


def pick_precision(precision: str, device: torch.device) -> torch.dtype:
    """``auto``: bf16 on GPUs that support it, else fp16 on GPU, fp32 on CPU."""
    if precision != "auto":
        if precision not in PRECISIONS:
            raise ConfigError(f"precision must be auto, fp32, fp16 or bf16, not {precision!r}")
        return PRECISIONS[precision]
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device.type == "mps":
        return torch.float16
    return torch.float32


class TorchRuntime:
    """Logits of a BiRefNet for normalised input on ``device``."""

    name = "torch"

    def __init__(self, model: BiRefNet, device: torch.device, dtype: torch.dtype, compile: bool | str = False,
                 channels_last: bool = False) -> None:
        self.device, self.dtype, self.channels_last = device, dtype, channels_last
        model = model.eval().to(device)
        if channels_last:
            model = model.to(memory_format=torch.channels_last)  # type: ignore[call-overload, unused-ignore]  # torch < 2.14 types it narrower
        self.model = model
        self._forward = torch.compile(model, mode=compile if isinstance(compile, str) else None) if compile else model

    def __call__(self, x: Tensor) -> Tensor:
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast(self.device.type, dtype=self.dtype, enabled=self.dtype != torch.float32):
            return self._forward(x).float()
