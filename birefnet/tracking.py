"""Following the subject through a run of frames: its box found in a coarse alpha, smoothed, made a crop.

A coarse pass (the same model at a small working size) gives each frame's alpha; the subject's box is
the bounding box of the pixels above ``threshold`` (nothing when they are fewer than ``min_fraction``
of the frame) together with the fainter ones, above ``faint``, connected to them: a strand thinner
than a coarse pixel is averaged down to a faint trace that belongs in the box, while faint false
alarms elsewhere over the background do not. The box a frame is cropped to is smoothed over a
window of ``radius`` frames either side within the same shot: its centre and its half sizes are the
triangle-weighted means of the window's, the half sizes then grown where needed to hold the frame's
own box around that centre (for a frame whose own box the coarse pass missed, the union of the nearest
boxes found before and after it, between which the subject must be). It is therefore a pure function
of the window, so a batch matted anywhere gets the same crops; it moves as smoothly as the subject does
and always holds the subject's own box, and a subject that moves fast widens only the crops of the frames it is far from
the smoothed centre in, by that distance, not every crop of the window by its whole path (which made
the crops of a moving 4K subject nearly the whole frame). The crop is that box grown by ``enlarge``
of its size each side, at least ``min_side`` of the frame's short side, grown further where the
model would see the box more than ``subject_pixels`` model pixels across (a model trained at a small
size mattes a subject magnified past the sizes it learned badly: the bundled demo model, trained on
192-pixel crops, misses whole body parts of a subject that fills a 512-pixel crop; docs/roi.md),
widened to the working size's aspect ratio where the frame allows, and moved (not cut) to lie inside
the frame.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from .boxes import Box, Region


@dataclass(frozen=True)
class TrackSettings:
    """Knobs of ``--roi auto``; see the module docstring."""

    coarse_resolution: int = 256
    threshold: float = 0.5
    faint: float = 0.1  # coarse alpha above this joins the box where it touches alpha above ``threshold``
    min_fraction: float = 2e-4
    radius: int = 3
    enlarge: float = 0.15
    min_side: float = 0.1
    edge_level: float = 0.5  # alpha on a crop's inner edge above this: the subject leaves it, matte the frame
    subject_pixels: int | None = None  # most model pixels the box may span, either axis; None: no limit


def subject_box(alpha: np.ndarray, threshold: float, min_fraction: float, faint: float) -> Box | None:
    """Bounding box (fractions of the frame) of ``alpha`` (h, w) above ``threshold`` and of the pixels above
    ``faint`` connected to those; None when too little is above ``threshold``."""
    core = alpha > threshold
    if core.mean() < min_fraction or not core.any():
        return None
    _, labels = cv2.connectedComponents((alpha > min(faint, threshold)).astype(np.uint8), connectivity=8)
    mask = np.isin(labels, np.unique(labels[core]))
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    height, width = mask.shape
    return cols[0] / width, rows[0] / height, (cols[-1] + 1) / width, (rows[-1] + 1) / height


def smooth_boxes(found: Sequence[Box | None], shots: Sequence[int], radius: int, frames: range) -> list[Box | None]:
    """The smoothed box of each frame in ``frames`` (indices into ``found``), from the boxes found within
    ``radius`` frames of it in the same shot; None where none was found."""
    smoothed: list[Box | None] = []
    for t in frames:
        window = [(radius + 1 - abs(i - t), found[i])
                  for i in range(max(0, t - radius), min(len(found), t + radius + 1))
                  if shots[i] == shots[t] and found[i] is not None]
        if not window:
            smoothed.append(None)
            continue
        total = sum(weight for weight, _ in window)
        cx = sum(weight * (b[0] + b[2]) / 2 for weight, b in window if b is not None) / total
        cy = sum(weight * (b[1] + b[3]) / 2 for weight, b in window if b is not None) / total
        half_w = sum(weight * (b[2] - b[0]) / 2 for weight, b in window if b is not None) / total
        half_h = sum(weight * (b[3] - b[1]) / 2 for weight, b in window if b is not None) / total
        own = found[t] if found[t] is not None else _bracketing(found, shots, radius, t)
        if own is not None:
            half_w = max(half_w, cx - own[0], own[2] - cx)
            half_h = max(half_h, cy - own[1], own[3] - cy)
        smoothed.append((cx - half_w, cy - half_h, cx + half_w, cy + half_h))
    return smoothed


def _bracketing(found: Sequence[Box | None], shots: Sequence[int], radius: int, t: int) -> Box | None:
    """For a frame whose own box was not found: the union of the nearest boxes found before and after it
    (within ``radius``, same shot), since the subject lies somewhere on its way between them; one of them
    when only one side has one. A mean of the window's centres alone can cut a subject that moved fast."""
    def nearest(steps: range) -> Box | None:
        for i in steps:
            if 0 <= i < len(found) and shots[i] == shots[t] and found[i] is not None:
                return found[i]
        return None

    sides = [b for b in (nearest(range(t - 1, t - radius - 1, -1)), nearest(range(t + 1, t + radius + 1)))
             if b is not None]
    if not sides:
        return None
    return (min(b[0] for b in sides), min(b[1] for b in sides), max(b[2] for b in sides), max(b[3] for b in sides))


def _fit(centre: float, side: float, limit: int) -> tuple[int, int]:
    """A span of ``side`` pixels (at most ``limit``) around ``centre``, moved to lie inside [0, limit]."""
    side = min(float(limit), side)
    start = min(max(0.0, centre - side / 2), limit - side)
    return max(0, math.floor(start)), min(limit, math.ceil(start + side))


def crop_region(box: Box, height: int, width: int, settings: TrackSettings, working: tuple[int, int]) -> Region:
    """The crop (pixels) for a smoothed box (fractions): enlarged, at least ``min_side``, large enough that
    the box spans at most ``subject_pixels`` of the ``working`` size (W, H), widened towards its aspect
    ratio, inside the frame."""
    x0, y0, x1, y1 = box[0] * width, box[1] * height, box[2] * width, box[3] * height
    work_w, work_h = working
    floor = settings.min_side * min(height, width)
    side_w = max(floor, (x1 - x0) * (1 + 2 * settings.enlarge))
    side_h = max(floor, (y1 - y0) * (1 + 2 * settings.enlarge))
    if settings.subject_pixels:
        side_w = max(side_w, (x1 - x0) * work_w / settings.subject_pixels)
        side_h = max(side_h, (y1 - y0) * work_h / settings.subject_pixels)
    aspect = work_w / work_h
    side_w, side_h = max(side_w, side_h * aspect), max(side_h, side_w / aspect)
    left, right = _fit((x0 + x1) / 2, side_w, width)
    top, bottom = _fit((y0 + y1) / 2, side_h, height)
    return left, top, right, bottom


def touches_edge(alpha: np.ndarray, region: Region, height: int, width: int, level: float) -> bool:
    """True when the frame's alpha (H, W) exceeds ``level`` on an edge of ``region`` that is not the frame's."""
    x0, y0, x1, y1 = region
    edges = []
    if x0 > 0:
        edges.append(alpha[y0:y1, x0])
    if x1 < width:
        edges.append(alpha[y0:y1, x1 - 1])
    if y0 > 0:
        edges.append(alpha[y0, x0:x1])
    if y1 < height:
        edges.append(alpha[y1 - 1, x0:x1])
    return any(float(edge.max()) > level for edge in edges if edge.size)


def track_regions(coarse: np.ndarray, shots: Sequence[int], frames: range, height: int, width: int,
                  settings: TrackSettings, working: tuple[int, int]) -> list[Region]:
    """Crops for ``frames`` of a window whose coarse alphas (M, h, w) and shot numbers (M,) are given, for
    a model at ``working`` size (W, H); the whole frame where no subject was found near a frame."""
    found = [subject_box(a, settings.threshold, settings.min_fraction, settings.faint) for a in coarse]
    whole = (0, 0, width, height)
    return [whole if box is None else crop_region(box, height, width, settings, working)
            for box in smooth_boxes(found, shots, settings.radius, frames)]
