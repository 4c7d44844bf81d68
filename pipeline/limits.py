"""Settings that cannot fit in the device's memory, refused in one line before Ray or the model start.

Two things grow with the settings. Decoded frames: every batch that can be queued at once holds
``batch_size`` frames (the decode channel, the batch being read, the one the main thread smooths and
finishes, the batches in flight on the workers, the smoother's look-ahead, each sink's queue), so
their bytes are bounded by the settings and the largest input's frame size. And one model call, which
grows with the working resolution squared times the model inputs per call (``birefnet.memory``): a
frame, or on the box-guided path each of its crops (a box, a tracked subject), or a thumbnail of
``--roi auto``'s coarse pass (``batch_size + 2 x radius`` of them a batch). The worker chunks every
pass by the same inputs per call. On a GPU it halves them when CUDA runs out of memory, so only a
single input that cannot fit is refused; on the CPU an out-of-memory is the kernel's kill (no
exception to catch), so the inputs per call are capped to what fits, independently of ``batch_size``.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

from birefnet.errors import ConfigError
from birefnet.memory import (
    MemoryBudget,
    activation_bytes_per_pixel,
    call_bytes,
    gigabytes,
    gpu_budget,
    ram_budget,
    weight_bytes,
)
from birefnet.model import BiRefNetConfig
from pipeline.graph import QUEUE_BATCHES
from pipeline.settings.process import ProcessConfig
from pipeline.sinks.sink import QUEUE_BATCHES as SINK_QUEUE_BATCHES
from pipeline.sources import SourceInfo

log = logging.getLogger("birefnet_video")

MAIN_THREAD_BATCHES = 2  # the batch the reader is filling and the one being smoothed and finished
QUEUED_CHANNELS = 4  # decoded frames (3 colour channels) plus their alpha, per pixel, in samples


@dataclass(frozen=True)
class MemoryPlan:
    """What the check found: the model inputs per call (None: all of a batch's) and the estimates."""

    inputs_per_call: int | None
    queued_bytes: int
    call_bytes: int
    budget: MemoryBudget


def model_on_gpu(config: ProcessConfig) -> bool:
    if config.device == "cpu":
        return False
    import torch

    return torch.cuda.is_available()


def worker_count(config: ProcessConfig) -> int:
    return config.workers or 1


def queued_batches(config: ProcessConfig, outputs: int) -> int:
    """Batches of decoded frames that can exist at once (a look-ahead window adds frames, see below)."""
    backend = 0 if config.backend == "local" else 3 * worker_count(config) * config.in_flight  # driver + store
    return QUEUE_BATCHES + MAIN_THREAD_BATCHES + backend + outputs * (SINK_QUEUE_BATCHES + 1)


def frame_bytes(info: SourceInfo, config: ProcessConfig) -> int:
    """Bytes of one frame and its alpha as they travel (uint16 on the 16-bit path)."""
    deep = (config.bit_depth or info.bit_depth) > 8
    return info.width * info.height * QUEUED_CHANNELS * (2 if deep else 1)


def working_size(config: ProcessConfig, info: SourceInfo) -> tuple[int, int]:
    """(W, H) the model runs at for this input, as ``birefnet.Predictor`` will choose it."""
    from birefnet.predictor import DEFAULT_RESOLUTION, dynamic_size, parse_resolution
    from birefnet.registry import get_variant

    variant = get_variant(config.model)
    default = DEFAULT_RESOLUTION if variant is None else (variant.resolution or "dynamic")
    size = parse_resolution(config.resolution, default)
    if size == "dynamic":
        return dynamic_size(info.height, info.width, variant.dynamic_base if variant else DEFAULT_RESOLUTION[0])
    return size  # type: ignore[return-value]  # (W, H) once not dynamic


def model_config(config: ProcessConfig) -> BiRefNetConfig | None:
    """The architecture a variant name gives; None for a checkpoint file (the largest is assumed)."""
    from birefnet.registry import get_variant

    variant = get_variant(config.model)
    return variant.config if variant is not None else None


def check_memory(config: ProcessConfig, infos: list[SourceInfo], outputs: int = 1) -> MemoryPlan | None:
    """Refuse settings whose memory cannot fit (``ConfigError`` naming the setting, the estimate, the
    budget and what to lower); returns the plan for the largest input (None without a probed input)."""
    if not infos:
        return None
    info = max(infos, key=lambda i: i.width * i.height * (2 if i.bit_depth > 8 else 1))
    ram = ram_budget()
    architecture = model_config(config)
    working = working_size(config, info)
    one_input = call_bytes(architecture, working, (info.width, info.height), 1)
    if config.ray_address:  # the workers' memory is on the cluster's machines, not known here
        return MemoryPlan(None, _check_queued_frames(config, info, outputs, ram, 0), one_input, ram)
    on_gpu = model_on_gpu(config)
    weights = weight_bytes(architecture)
    workers = worker_count(config)
    if on_gpu:
        budget = gpu_budget()
        per_worker = budget.bytes // max(1, math.ceil(1 / config.gpus_per_worker))
        queued = _check_queued_frames(config, info, outputs, ram, 0)
    else:  # frames and models share the RAM: each worker's one-frame call is reserved before the frames
        budget, per_worker = ram, ram.bytes // workers
    _check_one_frame(architecture, info, working, one_input, weights, budget, per_worker)
    thumbnails, one_thumbnail = coarse_pass(config, architecture, info)
    _check_one_thumbnail(config, one_thumbnail, weights, budget, per_worker)
    largest = max(one_input, one_thumbnail)  # the worker chunks every pass by the same inputs per call
    if not on_gpu:
        queued = _check_queued_frames(config, info, outputs, ram, workers * (weights + largest))
        per_worker = (ram.bytes - queued) // workers
    fits = (per_worker - weights) // largest
    inputs = config.batch_size * crops_per_frame(config)
    inputs_per_call = None
    if not on_gpu and fits < max(inputs, thumbnails):
        inputs_per_call = int(fits)
        log.warning("batch_size %d: the model takes %d input(s) per call at %dx%d to stay within %s",
                    config.batch_size, inputs_per_call, working[0], working[1], budget.source)
    calls = min(inputs, inputs_per_call or inputs)
    return MemoryPlan(inputs_per_call, queued, calls * one_input, budget)


def _check_one_frame(architecture: BiRefNetConfig | None, info: SourceInfo, working: tuple[int, int],
                     one_frame: int, weights: int, budget: MemoryBudget, per_worker: int) -> None:
    if one_frame + weights <= per_worker:
        return
    side = _largest_square(architecture, info, per_worker - weights)
    lower = f"lower --resolution to {side} or less" if side else "use a smaller model"
    raise ConfigError(
        f"resolution {working[0]}x{working[1]}: one frame needs about {gigabytes(one_frame)} in the model "
        f"({activation_bytes_per_pixel(architecture)} B per working pixel) plus {gigabytes(weights)} of weights, "
        f"over the {budget.where} budget of {gigabytes(per_worker)} per worker ({budget.source}); {lower}")


def crops_per_frame(config: ProcessConfig) -> int:
    """Model inputs per frame: one per given box (a boxes file: one per track, each interpolated on every
    frame), ``--roi-subjects`` with ``--roi auto`` (a crop per subject, at most that many), else one."""
    if config.box:
        return len(config.box)
    if config.boxes:
        from pipeline.roi.keyframes import read_keyframes

        return len({keyframe.track for keyframe in read_keyframes(config.boxes)})
    return config.roi_subjects if config.roi == "auto" else 1


def coarse_pass(config: ProcessConfig, architecture: BiRefNetConfig | None, info: SourceInfo) -> tuple[int, int]:
    """``--roi auto``'s coarse pass: how many thumbnails one batch sends (the batch and ``radius`` frames
    either side, long side 2 x ``--roi-coarse``) and the bytes of one at ``--roi-coarse``; (0, 0) without it."""
    if config.roi != "auto":
        return 0, 0
    from birefnet.tracking import TrackSettings

    scale = min(1.0, 2 * config.roi_coarse / max(info.width, info.height))
    thumbnail = (round(info.width * scale), round(info.height * scale))
    return (config.batch_size + 2 * TrackSettings.radius,
            call_bytes(architecture, (config.roi_coarse, config.roi_coarse), thumbnail, 1))


def _check_one_thumbnail(config: ProcessConfig, one_thumbnail: int, weights: int, budget: MemoryBudget,
                         per_worker: int) -> None:
    if one_thumbnail + weights <= per_worker:
        return
    raise ConfigError(
        f"roi_coarse {config.roi_coarse}: one thumbnail of the coarse pass needs about {gigabytes(one_thumbnail)} "
        f"plus {gigabytes(weights)} of weights, over the {budget.where} budget of {gigabytes(per_worker)} per "
        f"worker ({budget.source}); lower --roi-coarse")


def _check_queued_frames(config: ProcessConfig, info: SourceInfo, outputs: int, ram: MemoryBudget,
                         reserved: int) -> int:
    """Bytes of the frames that can be queued; refused when they do not fit beside ``reserved`` bytes."""
    per_frame = frame_bytes(info, config)
    batches = queued_batches(config, outputs)
    window = config.temporal_window * per_frame if config.temporal != "off" else 0
    queued = config.batch_size * batches * per_frame + window
    room = ram.bytes - reserved
    if queued <= room:
        return queued
    largest = (room - window) // (batches * per_frame)
    if largest < 1:
        raise ConfigError(
            f"frames of {info.width}x{info.height} ({info.path}): {gigabytes(per_frame)} each, and {batches} "
            f"batches plus a look-ahead of {config.temporal_window} can be queued, over the RAM budget "
            f"({ram.source}{_less(reserved)}); lower --temporal-window, --in-flight or --workers, "
            "or use a smaller input")
    raise ConfigError(
        f"batch_size {config.batch_size}: about {gigabytes(queued)} of frames could be queued ({batches} batches "
        f"of {config.batch_size} frames of {info.width}x{info.height}, {gigabytes(per_frame)} each), over the RAM "
        f"budget ({ram.source}); lower --batch-size to {largest} or less (or --in-flight, --workers)")


def _less(reserved: int) -> str:
    return f" less {gigabytes(reserved)} for the model" if reserved else ""


def _largest_square(architecture: BiRefNetConfig | None, info: SourceInfo, room: int) -> int:
    """The largest working side (a multiple of 32) whose single frame fits in ``room`` bytes."""
    frame_part = call_bytes(architecture, (0, 0), (info.width, info.height), 1)
    spare = room - frame_part
    if spare <= 0:
        return 0
    side = int(math.sqrt(spare / activation_bytes_per_pixel(architecture))) // 32 * 32
    return side if side >= 32 else 0
