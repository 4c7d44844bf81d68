"""The training loop: one process, one device - or one rank of a torch.distributed group (Ray Train).

Starts from any model source (a variant, a checkpoint file) or from fresh weights, trains with AdamW
under a warmup + cosine or step schedule, bf16/fp16 autocast on GPU, gradient accumulation, and writes
into ``output``:

- ``last.safetensors`` / ``best.safetensors``: model weights in the format ``load_model`` reads, so
  ``--model run/best.safetensors`` works in the pipeline;
- ``last.pt``: the trainer state (optimizer, schedule, position in the epoch, RNG) for ``--resume``;
- ``log.jsonl``: one JSON line per epoch (losses, learning rate, validation metrics, seconds).

Every batch is a function of (seed, epoch, position), so a resumed run takes the same next step the
interrupted one would have taken.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TypeAlias, cast

import numpy as np
import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from torch.utils.data import DataLoader, Dataset

from birefnet.atomic import AtomicPath
from birefnet.errors import CheckpointError, ConfigError, OutputError
from birefnet.model import IMAGENET_MEAN, IMAGENET_STD, BiRefNet
from birefnet.predictor import pick_device, pick_precision
from birefnet.weights import build_model, load_model

from .augment import AugmentConfig, Augmenter
from .data import PairDataset, check_pairs, find_pairs
from .losses import LOSS_PRESETS, BiRefNetLoss
from .metrics import HIGHER_IS_BETTER, MetricAverager
from .synthetic_data import SyntheticMattingDataset

SYNTHETIC = "synthetic"
STATE_FILE = "last.pt"
LAST_WEIGHTS = "last.safetensors"
BEST_WEIGHTS = "best.safetensors"
LOG_FILE = "log.jsonl"
# the datasets the trainer draws from: both have set_epoch and __len__
_TrainDataset: TypeAlias = PairDataset | SyntheticMattingDataset
_SAVE_DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


@dataclass
class TrainConfig:
    """Everything a run depends on. ``data="synthetic"`` trains on generated composites."""

    output: str
    data: str = SYNTHETIC
    val_data: str | None = None  # folder / list file; with synthetic data: held-out scene frames
    init: str | None = None  # model source to start from; None: fresh weights of ``arch``
    arch: str = "demo"
    loss_preset: str = "matting"
    loss_weights: str | None = None  # "bce=30,ssim=5": overrides of the preset
    size: int = 512  # training crop side
    val_size: int = 512
    batch_size: int = 4
    accumulate: int = 1
    epochs: int = 10
    synthetic_samples: int = 400  # samples per epoch of synthetic data
    synthetic_scale: tuple[float, float] = (1.0, 2.0)  # synthetic scenes are rendered at this x the crop size
    val_samples: int = 8  # synthetic validation frames
    val_seed: int = 7  # held-out synthetic scene
    lr: float = 1e-4
    weight_decay: float = 1e-2
    ema_decay: float = 0.0  # > 0: validate and publish an exponential moving average of the weights
    schedule: str = "cosine"  # cosine | step | constant
    warmup_steps: int = 0
    step_epochs: int = 0  # step schedule: decay every N epochs (0: at 2/3 of the run)
    step_gamma: float = 0.1
    crop_scale: tuple[float, float] = (0.35, 1.0)
    jitter: float = 0.2
    background_prob: float = 0.5
    device: str = "auto"
    precision: str = "auto"
    save_dtype: str = "fp32"
    best_metric: str = "mae"
    save_every: int = 0  # also write last.pt every N optimiser steps (0: at epoch ends only)
    loader_workers: int = -1  # -1: none on CPU, 4 on GPU
    seed: int = 0
    resume: bool = False
    overwrite: bool = False
    check_data: bool = True
    quiet: bool = False

    def validate(self) -> None:
        if self.loss_preset not in LOSS_PRESETS:
            raise ConfigError(f"unknown loss preset {self.loss_preset!r}; known: {', '.join(LOSS_PRESETS)}")
        if self.schedule not in ("cosine", "step", "constant"):
            raise ConfigError(f"schedule must be cosine, step or constant, not {self.schedule!r}")
        for name in ("size", "val_size"):
            value = getattr(self, name)
            if value < 32 or value % 32:
                raise ConfigError(f"--{name.replace('_', '-')} must be a positive multiple of 32, got {value}")
        for name in ("batch_size", "accumulate", "epochs", "synthetic_samples", "val_samples"):
            if getattr(self, name) < 1:
                raise ConfigError(f"--{name.replace('_', '-')} must be at least 1")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ConfigError(f"--ema-decay must be in [0, 1), got {self.ema_decay}")
        low, high = self.synthetic_scale
        if not 1.0 <= low <= high:
            raise ConfigError(f"--synthetic-scale must be two numbers 1 <= LOW <= HIGH, got {low} {high}")
        if self.save_dtype not in _SAVE_DTYPES:
            raise ConfigError(f"--save-dtype must be one of {', '.join(_SAVE_DTYPES)}")
        if self.best_metric not in HIGHER_IS_BETTER:
            raise ConfigError(f"--best-metric must be one of {', '.join(HIGHER_IS_BETTER)}")


def save_weights(model: nn.Module, path: Path, dtype: str = "fp32", metadata: dict | None = None) -> None:
    """The model's state dict as safetensors (floats cast to ``dtype``), written under a temporary name
    and renamed, so a crash never leaves half a checkpoint under the final name."""
    from safetensors.torch import save_file

    cast = _SAVE_DTYPES[dtype]
    state = {k: (v.to(cast) if v.is_floating_point() else v).detach().cpu().contiguous()
             for k, v in model.state_dict().items()}
    with AtomicPath(path) as temp:
        save_file(state, str(temp), metadata={k: str(v) for k, v in (metadata or {}).items()})
        temp.chmod(0o644)


class _TrainForward(nn.Module):
    """Routes ``forward`` to ``forward_train`` so DistributedDataParallel syncs the training outputs."""

    def __init__(self, model: BiRefNet) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: Tensor) -> dict:
        return self.model.forward_train(x)


def _batches(length: int, batch_size: int, seed: int, epoch: int, rank: int, world: int) -> list[list[int]]:
    """This rank's batches of one epoch: a seeded permutation, equal shares per rank, last partial dropped."""
    order = np.random.default_rng([seed, epoch, 99]).permutation(length)
    per_rank = (length // world) // batch_size * batch_size
    mine = order[rank * per_rank:(rank + 1) * per_rank]
    return [mine[i:i + batch_size].tolist() for i in range(0, len(mine), batch_size)]


def _lr_factor(config: TrainConfig, total_steps: int, steps_per_epoch: int):
    warmup = config.warmup_steps
    decay_every = (config.step_epochs or max(1, (2 * config.epochs) // 3)) * steps_per_epoch

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        if config.schedule == "cosine":
            progress = min(1.0, (step - warmup) / max(1, total_steps - warmup))
            return 0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * progress))
        if config.schedule == "step":
            return config.step_gamma ** (step // decay_every)
        return 1.0

    return factor


class Trainer:
    """``Trainer(config).fit()``; ``fit(until_step=n)`` stops after optimiser step n and can be called again."""

    def __init__(self, config: TrainConfig, rank: int = 0, world_size: int = 1,
                 device: torch.device | None = None) -> None:
        config.validate()
        self.config, self.rank, self.world_size = config, rank, world_size
        self.output = Path(config.output).expanduser()
        self.device = device or pick_device(config.device)
        self.dtype = pick_precision(config.precision, self.device)
        self._prepare_output()
        self.train_set, self.val_set = self._datasets()
        torch.manual_seed(config.seed)  # fresh weights and dropout follow the seed (resume restores the RNG)
        self.model = self._initial_model().to(self.device).train()
        forward: nn.Module = _TrainForward(self.model)
        if world_size > 1:
            ids = [self.device.index] if self.device.type == "cuda" else None
            forward = nn.parallel.DistributedDataParallel(forward, device_ids=ids)
        self.forward = forward
        # Small noisy batches leave the weights jittering around a minimum; their running average sits
        # nearer to it. With EMA on, validation and the published weights use the average.
        self.ema = None
        if config.ema_decay:
            self.ema = AveragedModel(self.model, multi_avg_fn=get_ema_multi_avg_fn(config.ema_decay),
                                     use_buffers=True).eval()
        weights = LOSS_PRESETS[config.loss_preset].with_overrides(config.loss_weights)
        self.loss = BiRefNetLoss(weights)
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=config.lr, weight_decay=config.weight_decay,
                                           foreach=True)
        self.batches_per_epoch = len(_batches(len(self.train_set), config.batch_size, 0, 0, rank, world_size))
        if self.batches_per_epoch < config.accumulate:
            raise ConfigError(
                f"the training set ({len(self.train_set)} samples) gives {self.batches_per_epoch} batches of "
                f"{config.batch_size} per worker, fewer than --accumulate {config.accumulate}")
        self.steps_per_epoch = self.batches_per_epoch // config.accumulate
        self.total_steps = self.steps_per_epoch * config.epochs
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, _lr_factor(config, self.total_steps, self.steps_per_epoch))
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.dtype == torch.float16)
        self._mean = torch.tensor(IMAGENET_MEAN, device=self.device).view(1, 3, 1, 1)
        self._std = torch.tensor(IMAGENET_STD, device=self.device).view(1, 3, 1, 1)
        self.epoch, self.batch_in_epoch, self.step = 0, 0, 0
        self.best: float | None = None
        self._epoch_losses: dict[str, float] = {}
        self._epoch_started = time.perf_counter()
        if config.resume and (self.output / STATE_FILE).is_file():
            self.load_state(self.output / STATE_FILE)

    # ---- setup -------------------------------------------------------------------------------
    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def published_model(self) -> BiRefNet:
        """The weights validation measures and checkpoints hold: the EMA when there is one."""
        return cast(BiRefNet, self.ema.module) if self.ema is not None else self.model

    def _prepare_output(self) -> None:
        existing = [n for n in (STATE_FILE, LAST_WEIGHTS, BEST_WEIGHTS) if (self.output / n).exists()]
        if self.config.resume and STATE_FILE not in existing:  # else a typo'd -o would start a whole new run
            raise OutputError(f"--resume: {self.output} holds no run to resume (no {STATE_FILE}); "
                              "drop --resume to start one")
        if existing and not (self.config.resume or self.config.overwrite):
            raise OutputError(f"{self.output} already holds a run ({', '.join(existing)}); "
                              "pass --resume to continue it or --overwrite to start again")
        self.output.mkdir(parents=True, exist_ok=True)
        if self.config.overwrite and not self.config.resume and self.is_main:
            for name in (*existing, LOG_FILE):
                (self.output / name).unlink(missing_ok=True)

    def _datasets(self) -> tuple[_TrainDataset, _TrainDataset | None]:
        c = self.config
        size, val_size = (c.size, c.size), (c.val_size, c.val_size)
        augmenter = Augmenter(
            AugmentConfig(size, cast("tuple[float, float]", tuple(c.crop_scale)), True, c.jitter, c.background_prob)
        )
        train: _TrainDataset
        val: _TrainDataset | None
        if c.data == SYNTHETIC:
            scale = cast("tuple[float, float]", tuple(c.synthetic_scale))
            train = SyntheticMattingDataset(c.seed, c.synthetic_samples, size, augmenter, scale)
            val = (SyntheticMattingDataset(c.val_seed, c.val_samples, val_size, None, scale)
                   if c.val_data is None else None)
        else:
            pairs = find_pairs(c.data)
            if c.check_data:
                check_pairs(pairs, self._progress("checking data", len(pairs)))
            train, val = PairDataset(pairs, size, augmenter, c.seed), None
        if c.val_data is not None:
            val_pairs = find_pairs(c.val_data)
            if c.check_data:
                check_pairs(val_pairs, self._progress("checking validation data", len(val_pairs)))
            val = PairDataset(val_pairs, val_size)
        return train, val

    def _initial_model(self) -> BiRefNet:
        return load_model(self.config.init) if self.config.init else build_model(self.config.arch)

    def _progress(self, description: str, total: int):
        quiet = self.config.quiet or not self.is_main

        def wrap(items):
            from tqdm import tqdm

            return tqdm(items, desc=description, total=total, disable=quiet, leave=False, unit="it")

        return wrap

    def _loader(self, dataset: Dataset, batches: list[list[int]]) -> DataLoader:
        workers = self.config.loader_workers
        if workers < 0:
            workers = 4 if self.device.type == "cuda" else 0
        return DataLoader(dataset, batch_sampler=batches, num_workers=workers,
                          pin_memory=self.device.type == "cuda", persistent_workers=False)

    def _normalise(self, pixels: Tensor) -> Tensor:
        return (pixels.to(self.device, non_blocking=True).float() / 255.0 - self._mean) / self._std

    # ---- state -------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {
            "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(), "scaler": self.scaler.state_dict(),
            "epoch": self.epoch, "batch_in_epoch": self.batch_in_epoch, "step": self.step,
            "best": self.best, "epoch_losses": dict(self._epoch_losses),
            "ema": self.ema.state_dict() if self.ema is not None else None,
            "torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state(self.device) if self.device.type == "cuda" else None,
            "config": asdict(self.config),
        }

    def save_state(self) -> None:
        if not self.is_main:
            return
        with AtomicPath(self.output / STATE_FILE) as temp:
            torch.save(self.state_dict(), temp)

    def load_state(self, path: Path) -> None:
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:
            raise CheckpointError(f"cannot resume from {path}: {str(exc).splitlines()[0][:200]}") from None
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        self.epoch, self.batch_in_epoch, self.step = state["epoch"], state["batch_in_epoch"], state["step"]
        self.best, self._epoch_losses = state["best"], dict(state["epoch_losses"])
        if (self.ema is None) != (state.get("ema") is None):
            raise ConfigError(f"{path} was saved {'with' if state.get('ema') is not None else 'without'} "
                              "weight EMA; resume it with the same --ema-decay setting")
        if self.ema is not None:
            self.ema.load_state_dict(state["ema"])
        torch.set_rng_state(state["torch_rng"])
        if state["cuda_rng"] is not None and self.device.type == "cuda":
            torch.cuda.set_rng_state(state["cuda_rng"], self.device)

    def save_weights(self, name: str) -> Path:
        path = self.output / name
        if self.is_main:
            save_weights(self.published_model, path, self.config.save_dtype,
                         {"format": "birefnet", "step": self.step, "epoch": self.epoch,
                          "arch": self.model.config.backbone})
        return path

    # ---- training ----------------------------------------------------------------------------
    def _micro_step(self, images: Tensor, alphas: Tensor, scale: float) -> dict[str, float]:
        x = self._normalise(images)
        target = alphas.to(self.device, non_blocking=True)
        autocast = self.dtype != torch.float32
        with torch.autocast(self.device.type, dtype=self.dtype, enabled=autocast):
            outputs = self.forward(x)
        total, parts = self.loss(outputs, target, x)
        self.scaler.scale(total * scale).backward()
        parts["loss"] = float(total.detach())
        return parts

    def _optimizer_step(self) -> None:
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        self.scheduler.step()
        self.step += 1
        if self.ema is not None:
            self.ema.update_parameters(self.model)

    def fit(self, until_step: int | None = None) -> dict | None:
        """Train to the end (or to optimiser step ``until_step``); returns the last epoch's log record."""
        c = self.config
        stop = self.total_steps if until_step is None else min(until_step, self.total_steps)
        record = None
        while self.step < stop:
            self.train_set.set_epoch(self.epoch)
            batches = _batches(len(self.train_set), c.batch_size, c.seed, self.epoch, self.rank, self.world_size)
            batches = batches[:self.steps_per_epoch * c.accumulate]
            remaining = batches[self.batch_in_epoch:]
            progress = self._progress(f"epoch {self.epoch + 1}/{c.epochs}", len(remaining))
            self.model.train()
            bar = progress(self._loader(self.train_set, remaining))
            for images, alphas in bar:
                parts = self._micro_step(images, alphas, 1.0 / c.accumulate)
                for name, value in parts.items():
                    self._epoch_losses[name] = self._epoch_losses.get(name, 0.0) + value
                self._epoch_losses["_batches"] = self._epoch_losses.get("_batches", 0.0) + 1
                self.batch_in_epoch += 1
                if self.batch_in_epoch % c.accumulate == 0:
                    self._optimizer_step()
                    bar.set_postfix(loss=f"{parts['loss']:.3f}", step=self.step)
                    if c.save_every and self.step % c.save_every == 0:
                        self.save_state()
                    if self.step >= stop:
                        break
            bar.close()
            if self.batch_in_epoch >= len(batches):
                record = self._end_epoch()
        return record

    # ---- epoch end: validation, logs, checkpoints --------------------------------------------
    @torch.no_grad()
    def validate(self) -> dict[str, float] | None:
        if self.val_set is None:
            return None
        model = self.published_model.eval()
        averager = MetricAverager()
        loader = self._loader(self.val_set, [list(range(i, min(i + self.config.batch_size, len(self.val_set))))
                                             for i in range(0, len(self.val_set), self.config.batch_size)])
        for images, alphas in self._progress("validating", len(loader))(loader):
            with torch.autocast(self.device.type, dtype=self.dtype, enabled=self.dtype != torch.float32):
                logits = model(self._normalise(images))
            preds = torch.sigmoid(logits.float())[:, 0].cpu().numpy()
            averager.update(preds, alphas[:, 0].numpy())
        self.model.train()
        return averager.result()

    def _end_epoch(self) -> dict:
        count = max(self._epoch_losses.pop("_batches", 1.0), 1.0)
        losses = {name: value / count for name, value in self._epoch_losses.items()}
        metrics = self.validate() if self.is_main else None
        if metrics is not None:
            score, higher = metrics[self.config.best_metric], HIGHER_IS_BETTER[self.config.best_metric]
            key = f"val_{self.config.best_metric}"
        else:
            score, higher, key = losses.get("loss", float("inf")), False, "train_loss"
        improved = self.best is None or (score > self.best if higher else score < self.best)
        record = {"epoch": self.epoch + 1, "step": self.step, "lr": self.scheduler.get_last_lr()[0],
                  "train": losses, "val": metrics, "best_by": key, "improved": improved,
                  "seconds": round(time.perf_counter() - self._epoch_started, 2)}
        self.epoch += 1
        self.batch_in_epoch = 0
        self._epoch_losses = {}
        self._epoch_started = time.perf_counter()
        if self.is_main:
            if improved:
                self.best = score
                self.save_weights(BEST_WEIGHTS)
            self.save_weights(LAST_WEIGHTS)
            self.save_state()
            with open(self.output / LOG_FILE, "a") as log:
                log.write(json.dumps(record) + "\n")
            if not self.config.quiet:
                shown = ", ".join(f"{k} {v:.4g}" for k, v in (metrics or {}).items())
                print(f"epoch {record['epoch']}/{self.config.epochs} step {self.step} "
                      f"loss {losses.get('loss', float('nan')):.4f}" + (f" | val {shown}" if shown else "")
                      + (" *best*" if improved else ""), flush=True)
        if self.world_size > 1 and dist.is_initialized():
            dist.barrier()
        return record


def train(config: TrainConfig) -> dict | None:
    """Single-process training; returns the last epoch's log record."""
    return Trainer(config).fit()
