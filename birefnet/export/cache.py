"""Exports made on demand: a checkpoint asked to run on ONNX Runtime or TensorRT is exported once and kept.

The cache key is the checkpoint file (path, size, modification time), the precision and the torch and
format versions, so a changed checkpoint or exporter makes a new file. Writes are atomic, so workers
exporting the same model at once leave one complete file.
"""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

import torch

from ..weights import load_model_and_variant, resolve_source
from .metadata import FORMAT
from .to_onnx import ExportOptions, export_onnx

CACHE_ENV = "BIREFNET_VIDEO_CACHE"


def cache_root() -> Path:
    """``$BIREFNET_VIDEO_CACHE``, else ``$XDG_CACHE_HOME/birefnet-video``, else ``~/.cache/birefnet-video``."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "birefnet-video"


def cached_export(source: str, precision: str) -> Path:
    """The ONNX file (dynamic batch and size) of a model source, exported and verified on first use."""
    resolved = resolve_source(source)
    stat = resolved.path.stat()
    identity = f"{resolved.path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{precision}|{torch.__version__}|{FORMAT}"
    digest = hashlib.sha256(identity.encode()).hexdigest()[:16]
    stem = resolved.variant.name if resolved.variant else resolved.path.stem
    path = cache_root() / "onnx" / f"{stem}-{precision}-{digest}.onnx"
    if not path.is_file():
        print(f"exporting {resolved.description} to ONNX once ({precision}, dynamic size): {path}", file=sys.stderr)
        model, variant = load_model_and_variant(source, "cpu")
        export_onnx(model, variant, path, ExportOptions(precision=precision))
    return path
