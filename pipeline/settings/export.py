"""Settings of `export`: which model, which format and shapes, and what the export checks."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pipeline.settings import common, values
from pipeline.settings.table import Key, SettingsTable

FORMATS = ("onnx",)
EXPORT_PRECISIONS = ("fp32", "fp16")
QUANTIZATIONS = ("none", "int8")
DYNAMIC = "dynamic"


@dataclass
class ExportSettings:
    """One export: the model source, the file written, its shapes, precision and checks."""

    model: str = ""  # required, as is output
    output: str = ""
    format: str = "onnx"
    resolution: tuple[int, int] | str = DYNAMIC  # (W, H) for a static export
    batch: int | str = DYNAMIC
    precision: str = "fp32"
    opset: int = 17
    quantize: str = "none"
    verify: bool = True
    overwrite: bool = False
    quiet: bool = False


def _export_resolution(value: Any) -> tuple[int, int] | str:
    size = values.resolution(DYNAMIC)(value)
    return (size, size) if isinstance(size, int) else size


def _batch(value: Any) -> int | str:
    if str(value).strip().lower() == DYNAMIC:
        return DYNAMIC
    return values.integer(1, 64)(value)


EXPORT_SETTINGS = SettingsTable("export", {
    "model": common.MODEL,
    "output": Key(values.text, "file to write (model.onnx)", "FILE", aliases=("-o",)),
    "format": Key(values.choice(FORMATS), "what to export to", "|".join(FORMATS)),
    "resolution": Key(_export_resolution, "input size the graph takes: N, WxH, or dynamic (any multiple of 32)",
                      "N|WxH|dynamic"),
    "batch": Key(_batch, "frames per call: dynamic, or a fixed N", "dynamic|N"),
    "precision": Key(values.choice(EXPORT_PRECISIONS), "weights and arithmetic inside the graph (input and "
                     "output stay float32)", "|".join(EXPORT_PRECISIONS)),
    "opset": Key(values.integer(17, 23), "ONNX opset", "N"),
    "quantize": Key(values.choice(QUANTIZATIONS), "int8: dynamic int8 quantisation of the matrix products, for "
                    "CPU (its accuracy cost is measured and reported)", "|".join(QUANTIZATIONS)),
    "verify": Key(values.boolean, "run the file with ONNX Runtime and compare it with PyTorch", kind="toggle"),
    "overwrite": common.OVERWRITE.with_help("replace an existing output file"),
    "quiet": common.QUIET.with_help("print only the verification line"),
}, required=("model", "output"))


def default_values() -> dict[str, Any]:
    return {key: value for key, value in vars(ExportSettings()).items() if value != ""}
