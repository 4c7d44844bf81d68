"""What an exported BiRefNet graph says about itself: variant, sizes, normalisation, precision.

The facts travel in the ONNX file's ``metadata_props``, so a runtime can pre-process frames exactly as
the variant expects without being told, and a file that lacks them is recognised as not one of ours.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from ..errors import CheckpointError

FORMAT_KEY = "birefnet_video.format"
FORMAT = "birefnet-logits-v1"  # float32 (N, 3, H, W) normalised RGB in, float32 logits (N, 1, H, W) out
FIELDS_KEY = "birefnet_video.export"
INPUT_NAME = "image"
OUTPUT_NAME = "logits"
DYNAMIC = "dynamic"


@dataclass(frozen=True)
class ExportMetadata:
    """The contract of one exported graph.

    ``resolution``: (W, H) of a static export, or None for any multiple of 32. ``batch``: frames per
    call of a static export, or None for any. ``variant_resolution``: (W, H) the weights were trained
    at (None: the variant follows each frame's aspect, at about ``dynamic_base`` squared pixels).
    """

    variant: str | None
    backbone: str
    resolution: tuple[int, int] | None
    batch: int | None
    variant_resolution: tuple[int, int] | None
    dynamic_base: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    precision: str  # weights and arithmetic inside the graph: fp32 or fp16 (input and output stay float32)
    quantization: str | None  # "int8" (dynamic, weights int8) or None
    opset: int

    def as_props(self) -> dict[str, str]:
        """String key/value pairs for ``metadata_props``: the format tag, the fields as JSON, and a
        few plain keys for tools that show metadata (Netron, onnx.load)."""
        size = DYNAMIC if self.resolution is None else "{}x{}".format(*self.resolution)
        return {
            FORMAT_KEY: FORMAT,
            FIELDS_KEY: json.dumps(asdict(self)),
            "variant": self.variant or "(checkpoint)",
            "resolution": size,
            "batch": DYNAMIC if self.batch is None else str(self.batch),
            "normalisation": f"(rgb/255 - mean {list(self.mean)}) / std {list(self.std)}",
            "input": f"{INPUT_NAME}: float32 (N, 3, H, W), H and W multiples of 32",
            "output": f"{OUTPUT_NAME}: float32 (N, 1, H, W) logits; alpha = sigmoid(logits)",
        }

    @classmethod
    def from_props(cls, props: dict[str, str], origin: str) -> ExportMetadata:
        if props.get(FORMAT_KEY) != FORMAT or FIELDS_KEY not in props:
            raise CheckpointError(f"{origin} is an ONNX model but not a birefnet-video export (no {FORMAT_KEY} "
                                  "metadata); make one with `birefnet-video export`")
        fields = json.loads(props[FIELDS_KEY])
        for key in ("resolution", "variant_resolution", "mean", "std"):
            if fields[key] is not None:
                fields[key] = tuple(fields[key])
        return cls(**fields)

    def describe(self) -> str:
        size = "any size" if self.resolution is None else "{}x{}".format(*self.resolution)
        batch = "any batch" if self.batch is None else f"batch {self.batch}"
        quant = f", {self.quantization} weights" if self.quantization else ""
        return f"{self.variant or self.backbone} {self.precision}{quant}, {size}, {batch}, opset {self.opset}"


def is_onnx_file(source: str | Path) -> bool:
    return str(source).lower().endswith(".onnx")


def read_metadata(path: str | Path) -> ExportMetadata:
    """The metadata of an exported file; a missing, unreadable or foreign file is a ``CheckpointError``."""
    import onnx

    path = Path(path).expanduser()
    if not path.is_file():
        raise CheckpointError(f"ONNX model {path} does not exist")
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # protobuf decode errors of every kind
        raise CheckpointError(f"{path} is not a readable ONNX model ({type(exc).__name__})") from None
    return ExportMetadata.from_props({p.key: p.value for p in model.metadata_props}, str(path))
