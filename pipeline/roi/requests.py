"""The ROI stage of the graph: each decoded batch turned into the ``RegionRequest`` its worker mattes.

Given boxes (``--box``, ``--boxes``): each frame's boxes (``keyframes.BoxTrack``) become pixel regions
with the margin in them. ``--roi auto``: this is where frame order is known, so the stage gives each
batch the *window* its worker needs to find and smooth the subject's box: thumbnails of the batch's
frames and of ``radius`` frames either side (so a batch waits for the next one to be decoded), and
each frame's shot number from the smoother's histogram cut detector. The worker runs the coarse pass
on the window and the smoothed crops follow from it alone (``birefnet.tracking``), so every batch can
go to any worker, in any order, and get the same crops.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator

import cv2
import numpy as np
import torch

from birefnet.boxes import region_of
from birefnet.pixels import to_uint8
from birefnet.tracking import TrackSettings
from pipeline.frames import FrameBatch
from pipeline.roi.keyframes import BoxTrack
from pipeline.temporal.analysis import FrameContext, frame_contexts, is_scene_cut
from pipeline.temporal.config import SmootherConfig
from workers.payload import RegionRequest, TrackWindow


def box_requests(batches: Iterable[FrameBatch], track: BoxTrack,
                 margin: float) -> Iterator[tuple[FrameBatch, RegionRequest]]:
    """Each batch with its frames' boxes as pixel regions (margin included)."""
    for batch in batches:
        height, width = batch.images.shape[1:3]
        boxes = [np.array([region_of(box, height, width, margin) for box in track.at(batch.index + i)],
                          dtype=np.int64).reshape(-1, 4) for i in range(len(batch))]
        yield batch, RegionRequest(batch.images, boxes=boxes)


class _Window:
    """Thumbnails and shot numbers of the recent frames, by position in the stream of frames seen."""

    def __init__(self, long_side: int, cut_threshold: float):
        self.long_side = long_side
        self.cut_threshold = cut_threshold
        self.images: list[np.ndarray] = []
        self.shots: list[int] = []
        self.start = 0  # stream position of images[0]
        self._shot = 0
        self._last: FrameContext | None = None

    @property
    def end(self) -> int:
        return self.start + len(self.images)

    def add(self, images: np.ndarray) -> None:
        height, width = images.shape[1:3]
        scale = min(1.0, self.long_side / max(height, width))
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        small = np.stack([cv2.resize(im, size, interpolation=cv2.INTER_AREA) for im in to_uint8(images)])
        contexts = frame_contexts(torch.from_numpy(small), torch.zeros(small.shape[:3]), max(size))
        for image, context in zip(small, contexts, strict=True):
            if self._last is not None and is_scene_cut(self._last, context, self.cut_threshold):
                self._shot += 1
            self._last = context
            self.images.append(image)
            self.shots.append(self._shot)

    def request(self, images: np.ndarray, position: int, settings: TrackSettings) -> RegionRequest:
        """The request of the batch at ``position``: its frames and ``radius`` either side that are here."""
        lo = max(self.start, position - settings.radius)
        hi = min(self.end, position + len(images) + settings.radius)
        window = TrackWindow(np.stack(self.images[lo - self.start:hi - self.start]),
                             np.array(self.shots[lo - self.start:hi - self.start]), position - lo, settings)
        return RegionRequest(images, track=window)

    def forget_before(self, position: int) -> None:
        drop = max(0, position - self.start)
        del self.images[:drop], self.shots[:drop]
        self.start += drop


def track_requests(batches: Iterable[FrameBatch],
                   settings: TrackSettings) -> Iterator[tuple[FrameBatch, RegionRequest]]:
    """Each batch with its tracking window; a batch is handed on once ``radius`` frames after it are in."""
    window = _Window(2 * settings.coarse_resolution, SmootherConfig().cut_threshold)
    waiting: deque[tuple[FrameBatch, int]] = deque()  # (batch, its stream position)
    for batch in batches:
        waiting.append((batch, window.end))
        window.add(batch.images)
        while waiting and window.end - (waiting[0][1] + len(waiting[0][0])) >= settings.radius:
            yield _release(window, waiting, settings)
    while waiting:
        yield _release(window, waiting, settings)


def _release(window: _Window, waiting: deque[tuple[FrameBatch, int]],
             settings: TrackSettings) -> tuple[FrameBatch, RegionRequest]:
    batch, position = waiting.popleft()
    request = window.request(batch.images, position, settings)
    window.forget_before(position + len(batch) - settings.radius)
    return batch, request
