"""Following the subjects through a run of frames: their boxes found in a coarse alpha, smoothed, made crops.

A coarse pass (the same model at a small working size) gives each frame's alpha. A subject is a
connected part above ``threshold`` together with the fainter pixels, above ``faint``, connected to it
(a strand thinner than a coarse pixel is averaged down to a faint trace that belongs in the box, while
faint false alarms elsewhere over the background do not); a small part whose crop overlaps a larger
one's is a fragment of it, and a subject with less than ``min_fraction`` of the frame above ``threshold``
is none. Each
subject's boxes are linked from frame to frame into a track, and each track is smoothed over a window
of ``radius`` frames either side within the same shot: its centre and its half sizes are the
triangle-weighted means of the window's, the half sizes then grown where needed to hold the frame's
own box around that centre (for a frame whose own box the coarse pass missed, the union of the nearest
boxes found before and after it, between which the subject must be). So the crops are a pure function
of the window, and a batch matted anywhere gets the same ones; a crop moves as smoothly as its subject
does and always holds the subject's own box, and a subject that moves fast widens only the crops of
the frames it is far from the smoothed centre in, by that distance, not every crop of the window by
its whole path (which made the crops of a moving 4K subject nearly the whole frame). A crop is the
box grown by ``enlarge`` of its size each side, at least ``min_side`` of the frame's short side, grown
further where the model would see the box more than ``subject_pixels`` model pixels across (a model
trained at a small size mattes a subject magnified past the sizes it learned badly: the bundled demo
model, trained on 192-pixel crops, misses whole body parts of a subject that fills a 512-pixel crop;
docs/roi.md), widened to the working size's aspect ratio where the frame allows, and moved (not cut)
to lie inside the frame. Two subjects share a crop while one crop holding both is no larger than
their two (``frame_crops``); crops may overlap, their alphas meeting with ``max``; more than
``max_subjects`` share one crop altogether. ``birefnet.live_tracking`` is the causal form for a live stream.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
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
    max_subjects: int = 4  # more separate subjects in a frame than this: one crop holds them all


def subject_boxes(alpha: np.ndarray, settings: TrackSettings, crop: Callable[[Box], Region]) -> list[Box]:
    """The box (fractions of the frame) of each separate subject in a coarse ``alpha`` (h, w).

    A part is a connected region above ``faint`` that holds alpha above ``threshold``; a part whose crop
    (``crop`` of its box) overlaps that of a part more than twice its size is a fragment of it
    (``group_fragments``); a subject with less than ``min_fraction`` of the frame above ``threshold`` is
    dropped.
    """
    core = alpha > settings.threshold
    if not core.any():
        return []
    count, labels, stats, _ = cv2.connectedComponentsWithStats(
        (alpha > min(settings.faint, settings.threshold)).astype(np.uint8), connectivity=8)
    core_pixels = np.bincount(labels[core], minlength=count)
    height, width = alpha.shape
    parts = [k for k in range(1, count) if core_pixels[k]]
    boxes = [(float(x / width), float(y / height), float((x + w) / width), float((y + h) / height))
             for x, y, w, h in (stats[k, :4] for k in parts)]
    least = settings.min_fraction * height * width
    return [box for box, cores in group_fragments(boxes, [int(core_pixels[k]) for k in parts], crop)
            if cores >= least]


def group_fragments(boxes: Sequence[Box], cores: Sequence[int],
                    crop: Callable[[Box], Region]) -> list[tuple[Box, int]]:
    """The subjects among parts' ``boxes``, each as the union of its parts' boxes and their summed ``cores``
    (pixels above ``threshold``): a part (or group) whose crop (``crop`` of its box) overlaps that of one
    with more than twice its core is a fragment of it and joins it; parts of comparable size stay apart
    however near, for ``frame_crops`` to decide whether they share a crop.

    Joining every pair whose crops overlap took two people for one as soon as their crops touched, and
    the crop of their union is far larger than either (measured: 2.3 to 3.1 times fewer model pixels
    across each, for up to 18 frames; docs/roi.md); a fragment near its subject barely grows the crop."""
    unions, sizes = list(boxes), [int(c) for c in cores]
    while len(unions) > 1:
        regions = np.array([crop(box) for box in unions])
        overlap = ((regions[:, None, 0] < regions[None, :, 2]) & (regions[None, :, 0] < regions[:, None, 2])
                   & (regions[:, None, 1] < regions[None, :, 3]) & (regions[None, :, 1] < regions[:, None, 3]))
        size = np.array(sizes)
        fragment = overlap & (2 * size[:, None] < size[None, :])  # [i, j]: i is a fragment of j
        small = np.asarray(fragment.any(axis=1), dtype=bool)
        if not small.any():
            break
        # Each fragment joins the largest part it touches, in this round if that part is no fragment itself
        # (the largest of all such parts never is, so every round joins some), else in a later one.
        target = np.where(fragment, size[None, :], -1).argmax(axis=1)
        joining = small & ~small[target]
        for i in np.flatnonzero(joining):
            j = int(target[i])
            unions[j] = _union([unions[j], unions[i]])
            sizes[j] += sizes[i]
        keep = np.flatnonzero(~joining)
        unions, sizes = [unions[k] for k in keep], [sizes[k] for k in keep]
    return list(zip(unions, sizes, strict=True))


def _union(boxes: Sequence[Box]) -> Box:
    return (min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes))


def link_tracks(found: Sequence[Sequence[Box]], shots: Sequence[int], radius: int) -> list[list[Box | None]]:
    """The boxes found in each frame of a window, sorted into one track per subject (each track: a box or
    None per frame): frame by frame, each box joins the track whose latest box (at most ``radius`` frames
    back, same shot) it matches (``match_boxes``); a box that matches none starts a track of its own."""
    tracks: list[list[Box | None]] = []
    latest: list[int] = []  # frame of each track's latest box
    for t, boxes in enumerate(found):
        live = [k for k in range(len(tracks)) if t - latest[k] <= radius and shots[latest[k]] == shots[t]]
        taken = {b: live[k] for b, k in match_boxes([_at(tracks[k], latest[k]) for k in live], boxes).items()}
        for b, box in enumerate(boxes):
            if b not in taken:
                tracks.append([None] * len(found))
                latest.append(t)
                taken[b] = len(tracks) - 1
            tracks[taken[b]][t] = box
            latest[taken[b]] = t
    return tracks


def match_boxes(before: Sequence[Box], boxes: Sequence[Box]) -> dict[int, int]:
    """Which of ``before`` each of ``boxes`` continues (index to index; at most one each): greedily by the
    overlap of the two once both are grown by their own size, so that a moving subject still overlaps
    where it was; a box that overlaps none is new."""
    pairs = sorted(((_overlap(_grown(box), _grown(old)), b, k) for b, box in enumerate(boxes)
                    for k, old in enumerate(before)), key=lambda pair: -pair[0])
    taken: dict[int, int] = {}
    for score, b, k in pairs:
        if score > 0 and b not in taken and k not in taken.values():
            taken[b] = k
    return taken


def _at(track: list[Box | None], t: int) -> Box:
    box = track[t]
    assert box is not None
    return box


def _grown(box: Box) -> Box:
    w, h = box[2] - box[0], box[3] - box[1]
    return box[0] - w / 2, box[1] - h / 2, box[2] + w / 2, box[3] + h / 2


def _overlap(a: Box, b: Box) -> float:
    """Intersection over union of two boxes."""
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


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
    return _union(sides) if sides else None


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


def escapes(alpha: np.ndarray, regions: Sequence[Region], level: float) -> bool:
    """True when the frame's alpha (H, W) exceeds ``level`` on an edge of one of ``regions`` that is neither
    the frame's nor inside another of them: the subject goes on past the crops, where alpha is 0."""
    height, width = alpha.shape
    for k, (x0, y0, x1, y1) in enumerate(regions):
        others = [r for j, r in enumerate(regions) if j != k]
        lines = []  # (top, bottom, left, right) of each inner edge, one pixel thick
        if x0 > 0:
            lines.append((y0, y1, x0, x0 + 1))
        if x1 < width:
            lines.append((y0, y1, x1 - 1, x1))
        if y0 > 0:
            lines.append((y0, y0 + 1, x0, x1))
        if y1 < height:
            lines.append((y1 - 1, y1, x0, x1))
        for top, bottom, left, right in lines:
            values = alpha[top:bottom, left:right] > level
            for ox0, oy0, ox1, oy1 in others:  # pixels another crop covers are matted there
                values[max(0, oy0 - top):max(0, oy1 - top), max(0, ox0 - left):max(0, ox1 - left)] = False
            if values.any():
                return True
    return False


def track_regions(coarse: np.ndarray, shots: Sequence[int], frames: range, height: int, width: int,
                  settings: TrackSettings, working: tuple[int, int]) -> list[list[Region]]:
    """Crops for ``frames`` of a window whose coarse alphas (M, h, w) and shot numbers (M,) are given, for
    a model at ``working`` size (W, H): one per separate subject, each tracked and smoothed on its own
    (``frame_crops`` makes a frame's boxes its crops)."""
    def crop(box: Box) -> Region:
        return crop_region(box, height, width, settings, working)

    found = [subject_boxes(a, settings, crop) for a in coarse]
    smoothed = [smooth_boxes(track, shots, settings.radius, frames)
                for track in link_tracks(found, shots, settings.radius)]
    return [frame_crops([box for track in smoothed if (box := track[i]) is not None], crop, settings, height, width)
            for i in range(len(frames))]


def frame_crops(boxes: Sequence[Box], crop: Callable[[Box], Region], settings: TrackSettings, height: int,
                width: int) -> list[Region]:
    """A frame's crops for its subjects' ``boxes``: two subjects share one crop while a crop holding both
    is no larger than their two (one model pass then covers no more pixels than two would), more than
    ``max_subjects`` share one altogether, and no subject gives the whole frame. Crops may overlap: their
    alphas meet with ``max``."""
    if not boxes:
        return [(0, 0, width, height)]
    shared = list(boxes)
    while len(shared) > 1:
        areas = [_area(crop(box)) for box in shared]
        pairs = [(_area(crop(_union([shared[i], shared[j]]))) / (areas[i] + areas[j]), i, j)
                 for i in range(len(shared)) for j in range(i + 1, len(shared))]
        ratio, i, j = min(pairs)
        if ratio > 1:
            break
        shared[i] = _union([shared[i], shared[j]])
        del shared[j]
    if len(shared) > settings.max_subjects:
        return [crop(_union(boxes))]
    return [crop(box) for box in shared]


def _area(region: Region) -> int:
    return (region[2] - region[0]) * (region[3] - region[1])
