"""Keys that mean the same in every command that has them: one parser and one flag name per idea."""

from __future__ import annotations

from pipeline.settings import values
from pipeline.settings.table import Key
from pipeline.temporal.modes import TEMPORAL_MODES

PRECISIONS = ("auto", "fp32", "fp16", "bf16")

MODEL = Key(values.text, "variant name, checkpoint file, hub-layout directory or hub repo id", "NAME")
PRECISION = Key(values.choice(PRECISIONS), "model precision (auto: fp16/bf16 on a GPU, fp32 on CPU)",
                "|".join(PRECISIONS))
DEVICE = Key(values.device, "where the model runs", "auto|cpu|cuda|cuda:N|mps")
TEMPORAL = Key(values.choice(TEMPORAL_MODES), "temporal smoothing of the alpha", "|".join(TEMPORAL_MODES))
QUIET = Key(values.boolean, "no progress and no summary", kind="switch")
OVERWRITE = Key(values.boolean, "replace what exists (otherwise it is kept and the run stops or skips)",
                kind="switch")
REPORT = Key(values.optional(values.text), "write the run summary as JSON to this file", "FILE")
RAY_ADDRESS = Key(values.optional(values.text), "address of a running Ray cluster (default: start a local Ray)",
                  "ADDR")
