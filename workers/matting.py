"""What one matting worker does with a batch: predict alpha, small on the wire, halving on out-of-memory.

The same ``MattingWorker`` runs inside a Ray actor and inside the in-process backend, so both backends
produce identical alpha for identical frames. A batch is its frames (an array), or a ``RegionRequest``:
frames with boxes to matte, or with the thumbnails of a window of frames around them to find the
subject in (``--roi auto``: a coarse pass, then the crop pass, both here); either way the answer is a
``RegionAlpha``, the alpha with the crops it came from.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, cast

import numpy as np

from birefnet.boxes import Region
from birefnet.errors import UserError
from birefnet.pixels import to_uint8
from birefnet.tracking import escapes, track_regions
from workers.payload import RegionAlpha, RegionRequest


class PredictorLike(Protocol):
    """The part of ``birefnet.Predictor`` a worker uses."""

    def predict(self, frames: np.ndarray, dtype: str = "float32") -> np.ndarray: ...


class RegionPredictor(Protocol):
    """The part of ``birefnet.Predictor`` a worker uses for box-guided matting."""

    def predict(self, frames: np.ndarray, dtype: str = "float32", boxes: list | None = None, margin: float = 0.1,
                resolution: int | None = None, upsample: str | None = None) -> np.ndarray: ...

    def working_size(self, height: int, width: int) -> tuple[int, int]: ...


# builds a predictor on the device a worker was given ("cpu", "cuda" or "auto")
PredictorFactory = Callable[[str], PredictorLike]

ALPHA_DTYPES = ("uint8", "uint16")


@dataclass(frozen=True)
class PredictorSpec:
    """How to build a ``birefnet.Predictor``; small and picklable, so it travels to every actor."""

    source: str = "hr-matting"
    precision: str = "auto"
    resolution: int | tuple[int, int] | str | None = None
    runtime: str = "auto"
    upsample: str = "guided"

    def __call__(self, device: str) -> PredictorLike:
        from birefnet import Predictor

        return Predictor(self.source, device=device, precision=self.precision, resolution=self.resolution,
                         runtime=self.runtime, upsample=self.upsample)


class WorkerOutOfMemory(UserError):
    """The device ran out of memory even on a single frame."""


def is_out_of_memory(exc: BaseException) -> bool:
    """True for a device out-of-memory error (CUDA, or any backend that says so in its message)."""
    import torch

    if isinstance(exc, torch.OutOfMemoryError):
        return True
    return isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()


def _release_device_cache() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()


class MattingWorker:
    """One predictor, warmed up once, turning frames into uint8/uint16 alpha.

    A device out-of-memory error halves the number of model inputs (frames, crops, thumbnails) sent to
    the model at once and tries again; the smaller chunk size is kept for the following batches. Only
    when a single input does not fit does it give up with ``WorkerOutOfMemory``.
    """

    def __init__(self, predictor: PredictorLike, warmup: bool = True):
        self.predictor = predictor
        self.max_chunk: int | None = None  # model inputs per call; None until an OOM (or the memory plan) sets it
        if warmup:
            predictor.predict(np.zeros((1, 64, 64, 3), np.uint8), dtype="uint8")

    def matte(self, images: np.ndarray | RegionRequest,
              alpha_dtype: str = "uint8") -> tuple[np.ndarray | RegionAlpha, float]:
        """Alpha (N, H, W) of ``alpha_dtype`` for frames (N, H, W, 3), or a ``RegionAlpha`` for a
        ``RegionRequest``, and the seconds it took."""
        if alpha_dtype not in ALPHA_DTYPES:
            raise ValueError(f"alpha dtype must be one of {ALPHA_DTYPES}, got {alpha_dtype!r}")
        started = time.perf_counter()
        if isinstance(images, RegionRequest):
            result: np.ndarray | RegionAlpha = self._matte_regions(images, alpha_dtype)
        else:
            frames = to_uint8(images)
            predictor = self.predictor
            result = self._predict_in_chunks(len(frames), lambda s: predictor.predict(frames[s], dtype=alpha_dtype))
        return result, time.perf_counter() - started

    def _matte_regions(self, request: RegionRequest, alpha_dtype: str) -> RegionAlpha:
        """The crops (given, or found by a coarse pass over the window), one model call per chunk of crops
        (the coarse pass in chunks of thumbnails, so an out-of-memory halves either); a frame whose alpha
        reaches an inner edge of a found crop outside its other crops (the subject goes on past them) is
        matted whole instead."""
        predictor = cast(RegionPredictor, self.predictor)
        frames = to_uint8(request.images)
        count, height, width = frames.shape[:3]
        work_w, work_h = predictor.working_size(height, width)
        if request.track is not None:
            track = request.track
            thumbnails, coarse_size = track.thumbnails, track.settings.coarse_resolution
            # the coarse pass only finds where the subjects are: a soft (bilinear) matte errs towards the
            # larger box around a faint strand, where one brought back along the edges would hug it
            coarse = self._predict_in_chunks(len(thumbnails), lambda s: predictor.predict(
                thumbnails[s], resolution=coarse_size, upsample="bilinear"))
            regions = track_regions(coarse, track.shots.tolist(), range(track.first, track.first + count),
                                    height, width, track.settings, (work_w, work_h))
        else:
            regions = [[_region(box) for box in boxes] for boxes in request.boxes or []]
        alpha = self._matte_crops(predictor, frames, regions, alpha_dtype)
        if request.track is not None:
            scale = 1.0 / (255 if alpha_dtype == "uint8" else 65535)
            level = request.track.settings.edge_level / scale
            escaped = [i for i, crops in enumerate(regions) if escapes(alpha[i], crops, level)]
            if escaped:
                leaving = frames[escaped]
                alpha[escaped] = self._predict_in_chunks(len(escaped), lambda s: predictor.predict(
                    leaving[s], dtype=alpha_dtype))
                for i in escaped:
                    regions[i] = [(0, 0, width, height)]
        return RegionAlpha(alpha, regions,
                           np.array([_model_scale(r, predictor) for r in regions]),
                           work_w * work_h / (height * width))

    def _matte_crops(self, predictor: RegionPredictor, frames: np.ndarray, regions: list[list[Region]],
                     alpha_dtype: str) -> np.ndarray:
        """Alpha of ``frames`` matted inside each frame's ``regions`` (0 elsewhere), chunked by crops, not
        frames, so that a frame with many crops can be split over calls: the parts meet with ``max``, as the
        crops of one call do, so the alpha does not depend on the chunks."""
        crops = [(i, region) for i, frame_regions in enumerate(regions) for region in frame_regions]
        if not crops:
            return np.zeros(frames.shape[:3], np.dtype(alpha_dtype))
        rows: list[int] = []  # the frame each predicted row belongs to

        def predict(chunk: slice) -> np.ndarray:
            owners = sorted({i for i, _ in crops[chunk]})
            boxes = [[region for i, region in crops[chunk] if i == owner] for owner in owners]
            images = (frames[owners[0]:owners[-1] + 1] if owners[-1] - owners[0] + 1 == len(owners)
                      else frames[owners])
            part = predictor.predict(images, dtype=alpha_dtype, boxes=boxes, margin=0.0)
            rows.extend(owners)
            return part

        parts = self._predict_in_chunks(len(crops), predict)
        if rows == list(range(len(frames))):  # each frame's crops in one call, as usual: the parts are the alpha
            return parts
        alpha = np.zeros(frames.shape[:3], np.dtype(alpha_dtype))
        for owner, part in zip(rows, parts, strict=True):
            np.maximum(alpha[owner], part, out=alpha[owner])
        return alpha

    def _predict_in_chunks(self, count: int, predict: Callable[[slice], np.ndarray]) -> np.ndarray:
        chunk = min(count, self.max_chunk or count)
        parts = []
        start = 0
        while start < count:
            try:
                parts.append(np.asarray(predict(slice(start, start + chunk))))
            except Exception as exc:
                if not is_out_of_memory(exc):
                    raise
                _release_device_cache()
                if chunk == 1:
                    raise WorkerOutOfMemory(
                        "out of device memory on a single frame; lower --resolution, use --precision fp16, "
                        "or give each worker more memory"
                    ) from None
                chunk = max(1, chunk // 2)
                self.max_chunk = chunk
                continue
            start += chunk
        return parts[0] if len(parts) == 1 else np.concatenate(parts)


def _region(box: np.ndarray) -> Region:
    x0, y0, x1, y1 = (int(v) for v in box)
    return x0, y0, x1, y1


def _model_scale(regions: list[Region], predictor: RegionPredictor) -> float:
    """Model pixels per frame pixel inside a frame's crops (each crop at its own working size); 0 without
    crops."""
    if not regions:
        return 0.0
    model = sum(w * h for w, h in (predictor.working_size(y1 - y0, x1 - x0) for x0, y0, x1, y1 in regions))
    return model / sum((x1 - x0) * (y1 - y0) for x0, y0, x1, y1 in regions)
