"""Settings of `train`: the keys of ``birefnet.train.loop.TrainConfig`` and where the run goes (Ray Train).

The defaults are ``TrainConfig``'s own (read only when the command runs, as it imports torch); the
semantic checks are ``TrainConfig.validate``'s. The named choices below are those of birefnet's
training code (a test keeps them equal) so that the help can list them without importing torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pipeline.settings import common, values
from pipeline.settings.table import Key, SettingsTable

SYNTHETIC = "synthetic"
LOSS_PRESET_NAMES = ("matting", "general")  # birefnet.train.losses.LOSS_PRESETS
SCHEDULES = ("cosine", "step", "constant")
SAVE_DTYPES = ("fp32", "fp16", "bf16")  # birefnet.train.loop._SAVE_DTYPES
BEST_METRICS = ("mae", "s_measure", "weighted_f", "sad", "mse", "grad")  # birefnet.train.metrics.HIGHER_IS_BETTER
PLACEMENT_KEYS = ("workers", "ray_address")


@dataclass(frozen=True)
class TrainPlacement:
    """Where a training run goes: this process (one worker, no cluster) or N Ray Train workers."""

    workers: int = 1
    ray_address: str | None = None

    @property
    def on_ray(self) -> bool:
        return self.workers > 1 or self.ray_address is not None


def _choice(options: tuple[str, ...], help: str) -> Key:
    return Key(values.choice(options), help, "|".join(options))


TRAIN_SETTINGS = SettingsTable("train", {
    "data": Key(values.text, f"training folder (im/ and gt/), list file of 'IMAGE GT' lines, or '{SYNTHETIC}'",
                "DATA"),
    "val_data": Key(values.optional(values.text), "validation folder or list file (synthetic data: held-out frames)",
                    "DATA"),
    "output": Key(values.text, "run directory", "DIR", aliases=("-o",)),
    "init": Key(values.optional(values.text),
                "model source to start from: variant (hr-matting, ...), file or hub repo", "MODEL"),
    "arch": Key(values.text, "architecture for fresh weights when --init is not given", "NAME"),
    "loss_preset": _choice(LOSS_PRESET_NAMES, "loss weights of a task (not an encoder preset)"),
    "loss_weights": Key(values.optional(values.text), "override preset weights, e.g. 'bce=30,iou=0.5,gradient=1'",
                        "NAME=W,..."),
    "size": Key(values.integer(32), "training crop side (multiple of 32)", "PX"),
    "val_size": Key(values.integer(32), "validation side (multiple of 32)", "PX"),
    "batch_size": Key(values.integer(1), "samples per batch, per worker", "N"),
    "accumulate": Key(values.integer(1), "gradient accumulation steps", "N"),
    "epochs": Key(values.integer(1), "passes over the data", "N"),
    "synthetic_samples": Key(values.integer(1), "synthetic samples per epoch", "N"),
    "synthetic_scale": Key(values.number_pair(1.0), "synthetic scenes are rendered at LOW..HIGH times the crop size, "
                           "then cropped", ("LOW", "HIGH"), nargs=2),
    "val_samples": Key(values.integer(1), "synthetic validation frames", "N"),
    "val_seed": Key(values.integer(0), "held-out synthetic scene", "N"),
    "lr": Key(values.number(above=0.0), "learning rate", "F"),
    "weight_decay": Key(values.number(0.0), "AdamW weight decay", "F"),
    "ema_decay": Key(values.number(0.0, below=1.0),
                     "validate and save a moving average of the weights (e.g. 0.998; 0: off)", "F"),
    "schedule": _choice(SCHEDULES, "learning-rate schedule"),
    "warmup_steps": Key(values.integer(0), "steps of linear warm-up", "N"),
    "step_epochs": Key(values.integer(0), "step schedule: decay every N epochs (0: at 2/3 of the run)", "N"),
    "step_gamma": Key(values.number(above=0.0), "step schedule: factor of each decay", "F"),
    "background_prob": Key(values.number(0.0, 1.0), "chance of compositing a sample over another background", "P"),
    "jitter": Key(values.number(0.0), "colour jitter amplitude (0: off)", "F"),
    "device": common.DEVICE,
    "precision": common.PRECISION,
    "save_dtype": _choice(SAVE_DTYPES, "precision of the saved weights"),
    "best_metric": _choice(BEST_METRICS, "validation metric that picks best.safetensors"),
    "save_every": Key(values.integer(0), "also save state every N steps (0: at epoch ends only)", "N"),
    "loader_workers": Key(values.integer(-1), "data loader processes (-1: none on CPU, 4 on GPU)", "N"),
    "seed": Key(values.integer(0), "random seed", "N"),
    "resume": Key(values.boolean, "continue the run in --output", kind="switch"),
    "overwrite": common.OVERWRITE.with_help("start again in a directory holding a run"),
    "check_data": Key(values.boolean, "open every file before training (--no-check-data skips it)", kind="toggle"),
    "workers": Key(values.integer(1), "N > 1: Ray Train with N workers", "N"),
    "ray_address": common.RAY_ADDRESS.with_help("Ray cluster to join (default: start a local one)"),
    "quiet": common.QUIET.with_help("no progress lines"),
}, required=("data", "output"))


def split_placement(settings: dict[str, Any]) -> tuple[dict[str, Any], TrainPlacement]:
    """The ``TrainConfig`` values and the placement among the parsed values of this table."""
    placement = TrainPlacement(**{key: settings.pop(key) for key in PLACEMENT_KEYS if key in settings})
    return settings, placement
