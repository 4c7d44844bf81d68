"""Box geometry for box-guided matting: boxes checked and put in pixels, grown by a margin, clamped.

A box is ``(x0, y0, x1, y1)``, either in pixels of the frame or, when all four values lie in [0, 1],
in fractions of its width and height (so ``0,0,1,1`` is the whole frame, never a one-pixel box). The
model runs on each box's *region*: the box grown on every side by ``margin`` times its own width
(left and right) and height (top and bottom), rounded outwards to whole pixels and clamped to the
frame. Alpha outside every region is 0; inside, it is the crop's own prediction, combined with ``max``
where regions overlap (``birefnet.predictor.Predictor.predict(frames, boxes=...)``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from .errors import InputError

Box = tuple[float, float, float, float]  # x0, y0, x1, y1: pixels, or fractions of the frame
Region = tuple[int, int, int, int]  # x0, y0, x1, y1 whole pixels, half-open, inside the frame
DEFAULT_MARGIN = 0.1


def _spell(box: Sequence[float]) -> str:
    return ",".join(f"{float(v):g}" for v in box)


def check_box(values: Sequence[float] | np.ndarray) -> Box:
    """Four finite numbers with x1 > x0 and y1 > y0, else a one-line ``InputError`` naming the box."""
    numbers = [float(v) for v in np.asarray(values, dtype=np.float64).reshape(-1)]
    if len(numbers) != 4:
        raise InputError(f"box {_spell(numbers)}: needs 4 numbers x0,y0,x1,y1, got {len(numbers)}")
    if not all(math.isfinite(v) for v in numbers):
        raise InputError(f"box {_spell(numbers)}: every value must be a finite number")
    x0, y0, x1, y1 = numbers
    for axis, low, high in (("x", x0, x1), ("y", y0, y1)):
        if high == low:
            raise InputError(f"box {_spell(numbers)} is empty: {axis}1 equals {axis}0")
        if high < low:
            raise InputError(f"box {_spell(numbers)} is inverted: {axis}1 ({high:g}) is less than {axis}0 ({low:g})")
    return x0, y0, x1, y1


def is_fraction(box: Box) -> bool:
    """True when every value lies in [0, 1]: the box is in fractions of the frame."""
    return all(0.0 <= v <= 1.0 for v in box)


def in_pixels(box: Box, height: int, width: int) -> Box:
    """The checked box in pixels of a ``width`` x ``height`` frame (fractions scaled, pixels kept)."""
    x0, y0, x1, y1 = check_box(box)
    if is_fraction(box):
        return x0 * width, y0 * height, x1 * width, y1 * height
    return x0, y0, x1, y1


def region_of(box: Box, height: int, width: int, margin: float = DEFAULT_MARGIN) -> Region:
    """The pixels the model runs on for ``box``: grown by ``margin`` of its size each side, rounded out,
    clamped to the frame. A box larger than the frame gives the whole frame; one wholly outside it is an
    ``InputError``."""
    if not (math.isfinite(margin) and margin >= 0):
        raise InputError(f"box margin must be a number of at least 0, got {margin}")
    x0, y0, x1, y1 = in_pixels(box, height, width)
    grow_x, grow_y = margin * (x1 - x0), margin * (y1 - y0)
    left, top = max(0, math.floor(x0 - grow_x)), max(0, math.floor(y0 - grow_y))
    right, bottom = min(width, math.ceil(x1 + grow_x)), min(height, math.ceil(y1 + grow_y))
    if right <= left or bottom <= top:
        raise InputError(f"box {_spell(box)} lies outside the {width}x{height} frame")
    return left, top, right, bottom


def frame_regions(boxes: Sequence | np.ndarray, count: int, height: int, width: int,
                  margin: float = DEFAULT_MARGIN) -> list[list[Region]]:
    """Regions per frame for the ``boxes`` argument of ``predict``: one list of boxes for every frame
    (``[(x0, y0, x1, y1), ...]``), or one list per frame (``[[box, ...], [box, ...], ...]``, a frame's list
    may be empty: its alpha is 0). Arrays (K, 4) and (N, K, 4) are read the same way."""
    if is_box_list(boxes):
        shared = [region_of(check_box(b), height, width, margin) for b in boxes]
        return [list(shared) for _ in range(count)]
    if len(boxes) != count:
        raise InputError(f"boxes: got box lists for {len(boxes)} frames, the batch has {count}")
    per_frame = []
    for frame_boxes in boxes:
        if not is_box_list(frame_boxes):
            raise InputError("boxes: each frame's entry must be a list of x0,y0,x1,y1 boxes")
        per_frame.append([region_of(check_box(b), height, width, margin) for b in frame_boxes])
    return per_frame


def is_box_list(value: Sequence | np.ndarray) -> bool:
    """True for a list of boxes (its items are 4 numbers each), False for a list of such lists."""
    if isinstance(value, np.ndarray):
        return value.ndim == 2 or (value.ndim == 1 and value.size == 0)
    if len(value) == 0:
        return True
    first = value[0]
    return not isinstance(first, (str, bytes)) and len(first) > 0 and np.ndim(first[0]) == 0


def covered_fraction(regions: Sequence[Region], height: int, width: int) -> float:
    """Fraction of the frame inside at least one region."""
    if not regions:
        return 0.0
    if len(regions) == 1:  # the usual case: no frame-sized mask to fill
        x0, y0, x1, y1 = regions[0]
        return (x1 - x0) * (y1 - y0) / (height * width)
    mask = np.zeros((height, width), bool)
    for x0, y0, x1, y1 in regions:
        mask[y0:y1, x0:x1] = True
    return float(mask.mean())
