"""The ROI stage as the graph sees it: requests out to the workers, the crops' figures back for the report."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import numpy as np

from birefnet.boxes import covered_fraction
from birefnet.registry import subject_pixels_of
from birefnet.tracking import TrackSettings
from pipeline.frames import FrameBatch
from pipeline.roi.keyframes import BoxTrack, read_keyframes
from pipeline.roi.requests import box_requests, track_requests
from workers.payload import RegionAlpha, RegionRequest


@dataclass
class RoiStage:
    """Turns batches into ``RegionRequest``s (given boxes, or ``track`` for ``--roi auto``) and keeps how
    much of each frame the crops covered and the model pixels per pixel inside them, as running figures."""

    mode: str  # "boxes" or "auto"
    boxes: BoxTrack | None = None
    margin: float = 0.1
    track: TrackSettings = field(default_factory=TrackSettings)
    frames: int = 0
    coverage_sum: float = 0.0  # running figures, so that a run of any length keeps a few numbers
    coverage_min: float = 1.0
    coverage_max: float = 0.0
    crops: int = 0  # crops matted, all frames together
    most_crops: int = 0  # the most crops of one frame
    whole_frames: int = 0  # frames whose one crop is the whole frame (--roi auto: none found, or the crops lost it)
    model_scale_sum: float = 0.0  # over the frames that had a crop
    scaled_frames: int = 0
    full_scale: float = 0.0

    def requests(self, batches: Iterable[FrameBatch]) -> Iterator[tuple[FrameBatch, RegionRequest]]:
        if self.boxes is not None:
            return box_requests(batches, self.boxes, self.margin)
        return track_requests(batches, self.track)

    def record(self, result: RegionAlpha) -> np.ndarray:
        """Keep a batch's figures; returns its alpha."""
        height, width = result.alpha.shape[1:]
        for regions in result.regions:
            covered = covered_fraction(regions, height, width)
            self.coverage_sum += covered
            self.coverage_min = min(self.coverage_min, covered)
            self.coverage_max = max(self.coverage_max, covered)
            self.crops += len(regions)
            self.most_crops = max(self.most_crops, len(regions))
            self.whole_frames += regions == [(0, 0, width, height)]
        self.frames += len(result.regions)
        scales = [s for s in result.model_scale.tolist() if s > 0]
        self.model_scale_sum += sum(scales)
        self.scaled_frames += len(scales)
        self.full_scale = result.full_scale
        return result.alpha

    def report(self) -> dict:
        """Crop coverage (fraction of each frame: mean, min, max), crops per frame (mean, max), frames matted
        whole, and model pixels per subject pixel with the crops (mean over frames) and without them (the
        whole frame at the working size)."""
        frames = max(1, self.frames)
        scale = self.model_scale_sum / self.scaled_frames if self.scaled_frames else 0.0
        return {"mode": self.mode,
                "coverage": {"mean": round(self.coverage_sum / frames, 4),
                             "min": round(self.coverage_min if self.frames else 0.0, 4),
                             "max": round(self.coverage_max, 4)},
                "crops_per_frame": {"mean": round(self.crops / frames, 3), "max": self.most_crops},
                "whole_frames": self.whole_frames,
                "model_pixels_per_subject_pixel": {"roi": round(scale, 4), "full_frame": round(self.full_scale, 4)}}


def open_roi(roi: str, box: tuple | None, boxes: str | None, margin: float, height: int,
             width: int, coarse: int = TrackSettings.coarse_resolution,
             subject_pixels: int | None = None, model: str = "",
             subjects: int = TrackSettings.max_subjects) -> RoiStage | None:
    """The stage the settings ask for (None: the model sees whole frames). ``margin`` grows given boxes,
    and the tracked box of ``--roi auto``, by that fraction of their size each side; ``coarse`` is the
    working size of the pass that finds the subject, ``subject_pixels`` the most model pixels the tracked
    subject may span (None: what ``model`` learned from, ``birefnet.registry``; 0: no limit), ``subjects``
    the most separate subjects given crops of their own."""
    if box:
        return RoiStage("boxes", BoxTrack.fixed(box, height, width), margin)
    if boxes:
        return RoiStage("boxes", BoxTrack(read_keyframes(boxes), height, width), margin)
    if roi == "auto":
        if subject_pixels is None:
            subject_pixels = subject_pixels_of(model)
        return RoiStage("auto", margin=margin, track=TrackSettings(coarse_resolution=coarse, enlarge=margin,
                                                                 subject_pixels=subject_pixels or None,
                                                                 max_subjects=subjects))
    return None
