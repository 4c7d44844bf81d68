"""Optional packages (onnx, onnxruntime, TensorRT): imported on first use, a missing one named in one line."""

from __future__ import annotations

import importlib
from types import ModuleType

from ..errors import ConfigError

# package -> the extra that installs it
EXTRAS = {"onnx": "onnx", "onnxruntime": "onnx", "tensorrt": "tensorrt"}


def require(package: str, needed_for: str) -> ModuleType:
    """``import package``, or a ``ConfigError`` naming the extra to install."""
    try:
        return importlib.import_module(package)
    except ImportError:
        extra = EXTRAS[package]
        raise ConfigError(f"{needed_for} needs the {package} package: pip install 'birefnet-video[{extra}]'"
                          + (" (or onnxruntime-gpu on CUDA)" if package == "onnxruntime" else "")) from None
