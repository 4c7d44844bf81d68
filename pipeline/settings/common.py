"""Keys that mean the same in every command that has them: one parser and one flag name per idea."""

from __future__ import annotations

from birefnet.errors import ConfigError
from pipeline.settings import values
from pipeline.settings.table import Key
from pipeline.temporal.modes import TEMPORAL_MODES

PRECISIONS = ("auto", "fp32", "fp16", "bf16")
ROI_MODES = ("off", "auto")
RUNTIMES = ("auto", "torch", "onnx", "tensorrt")  # birefnet.runtimes.RUNTIMES (a test keeps them equal)
UPSAMPLING_MODES = ("guided", "bilinear")  # birefnet.upsampling.UPSAMPLING_MODES (a test keeps them equal)

MODEL = Key(values.text, "variant name, checkpoint file, hub-layout directory or hub repo id", "NAME")
PRECISION = Key(values.choice(PRECISIONS), "model precision (auto: fp16/bf16 on a GPU, fp32 on CPU)",
                "|".join(PRECISIONS))
RUNTIME = Key(values.choice(RUNTIMES), "what runs the model: torch, onnx (ONNX Runtime; a checkpoint is exported "
              "once and cached), tensorrt (ONNX Runtime's TensorRT provider), auto (onnx for an .onnx model)",
              "|".join(RUNTIMES))
UPSAMPLE = Key(values.choice(UPSAMPLING_MODES), "how the matte is brought from the model's working size to a "
               "larger frame: guided (along the frame's own edges) or bilinear", "|".join(UPSAMPLING_MODES))
DEVICE = Key(values.device, "where the model runs", "auto|cpu|cuda|cuda:N|mps")
TEMPORAL = Key(values.choice(TEMPORAL_MODES), "temporal smoothing of the alpha", "|".join(TEMPORAL_MODES))
ROI = Key(values.choice(ROI_MODES), "auto: find the subjects with a coarse pass and matte crops that follow them",
          "|".join(ROI_MODES))
QUIET = Key(values.boolean, "no progress and no summary", kind="switch")
OVERWRITE = Key(values.boolean, "replace what exists (otherwise it is kept and the run stops or skips)",
                kind="switch")
REPORT = Key(values.optional(values.text), "write the run summary as JSON to this file", "FILE")
RAY_ADDRESS = Key(values.optional(values.text), "address of a running Ray cluster (default: start a local Ray)",
                  "ADDR")


def check_runtime(runtime: str, precision: str, device: str) -> None:
    """Runtime combinations that cannot work, found before any model loads."""
    if runtime in ("onnx", "tensorrt") and precision == "bf16":
        raise ConfigError(f"precision: runtime {runtime} takes fp32 or fp16, not bf16")
    if runtime == "tensorrt" and (device == "cpu" or device == "mps"):
        raise ConfigError(f"runtime: tensorrt needs a CUDA GPU, not --device {device}")
