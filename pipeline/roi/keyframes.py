"""Boxes for every frame from keyframes: ``--box`` for the whole clip, or a ``--boxes`` CSV/JSON file.

A file names boxes at some source frame indices (a tracker's or an editor's export). Each box belongs
to a track (its ``id``; without one, the k-th box of a frame is track k); a track's box is linearly
interpolated between its keyframes and held before the first and after the last, so every frame gets
one box per track. Units (pixels, or fractions when all four values lie in [0, 1]) follow
``birefnet.boxes``; each box is put in pixels of the frame before interpolating, so a file may mix them.

CSV: a header ``frame,x0,y0,x1,y1`` with an optional ``id`` column. JSON: a list of objects
``{"frame": 12, "box": [x0, y0, x1, y1]}`` or ``{"frame": 12, "boxes": [[...], [...]]}``, with an
optional ``"id"`` (for ``box``).
"""

from __future__ import annotations

import bisect
import csv
import functools
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from birefnet.boxes import Box, check_box, in_pixels
from birefnet.errors import InputError

CSV_COLUMNS = ("frame", "x0", "y0", "x1", "y1")


@dataclass(frozen=True)
class Keyframe:
    frame: int
    track: str
    box: Box  # as written: pixels or fractions


def parse_box_list(text: str) -> tuple[Box, ...]:
    """``"x0,y0,x1,y1;x0,y0,x1,y1"`` -> checked boxes (``birefnet.boxes.check_box``)."""
    boxes = []
    for part in text.split(";"):
        if not part.strip():
            continue
        try:
            numbers = [float(v) for v in part.split(",")]
        except ValueError:
            raise InputError(f"box {part.strip()!r}: expected four numbers x0,y0,x1,y1") from None
        boxes.append(check_box(numbers))
    if not boxes:
        raise InputError("box: expected x0,y0,x1,y1 (several separated by ';')")
    return tuple(boxes)


def _frame(value: Any, where: str) -> int:
    try:
        frame = int(str(value).strip())
    except ValueError:
        raise InputError(f"{where}: frame must be a whole number, got {value!r}") from None
    if frame < 0:
        raise InputError(f"{where}: frame must be 0 or more, got {frame}")
    return frame


def _checked(values: Sequence[Any], where: str) -> Box:
    try:
        return check_box([float(v) for v in values])
    except (TypeError, ValueError):
        raise InputError(f"{where}: a box is four numbers x0,y0,x1,y1, got {values!r}") from None
    except InputError as exc:
        raise InputError(f"{where}: {exc}") from None


def _read_csv(path: Path) -> list[Keyframe]:
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        columns = [c.strip() for c in reader.fieldnames or []]
        missing = [c for c in CSV_COLUMNS if c not in columns]
        if missing:
            raise InputError(f"{path}: the header must name {','.join(CSV_COLUMNS)} (and optionally id); "
                             f"missing {','.join(missing)}")
        keyframes: list[Keyframe] = []
        counts: dict[int, int] = {}
        for line, raw in enumerate(reader, start=2):
            row = {k.strip(): v for k, v in raw.items() if k is not None}
            where = f"{path}:{line}"
            frame = _frame(row["frame"], where)
            box = _checked([row[c] for c in CSV_COLUMNS[1:]], where)
            track = (row.get("id") or "").strip() or f"#{counts.get(frame, 0)}"
            counts[frame] = counts.get(frame, 0) + 1
            keyframes.append(Keyframe(frame, track, box))
    return keyframes


def _read_json(path: Path) -> list[Keyframe]:
    try:
        entries = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(entries, list):
        raise InputError(f"{path}: expected a list of {{\"frame\": N, \"box\": [x0, y0, x1, y1]}} objects")
    keyframes = []
    for number, entry in enumerate(entries):
        where = f"{path} entry {number}"
        if not isinstance(entry, dict) or "frame" not in entry or ("box" in entry) == ("boxes" in entry):
            raise InputError(f"{where}: needs \"frame\" and one of \"box\" or \"boxes\"")
        frame = _frame(entry["frame"], where)
        if "box" in entry:
            track = str(entry.get("id", "#0"))
            keyframes.append(Keyframe(frame, track, _checked(entry["box"], where)))
        else:
            if not isinstance(entry["boxes"], list):
                raise InputError(f"{where}: \"boxes\" must be a list of boxes")
            keyframes += [Keyframe(frame, f"#{k}", _checked(b, where)) for k, b in enumerate(entry["boxes"])]
    return keyframes


def read_keyframes(path: str | Path) -> tuple[Keyframe, ...]:
    """The keyframes of a ``.csv`` or ``.json`` boxes file; any problem is one ``InputError`` line.

    Parsed once per version of the file (path, size, modification time): the settings check, the memory
    limit and the ROI stage each ask for it at start-up, and an edited file is read again."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"boxes: {path} does not exist")
    stat = path.stat()
    return _parse_keyframes(path.resolve(), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=8)
def _parse_keyframes(path: Path, size: int, mtime_ns: int) -> tuple[Keyframe, ...]:
    reader = _read_json if path.suffix.lower() == ".json" else _read_csv
    try:
        keyframes = reader(path)
    except OSError as exc:
        raise InputError(f"boxes: cannot read {path}: {exc.strerror or exc}") from None
    if not keyframes:
        raise InputError(f"boxes: {path} holds no boxes")
    return tuple(keyframes)


class BoxTrack:
    """Boxes in pixels of a ``width`` x ``height`` frame for any source frame index."""

    def __init__(self, keyframes: Sequence[Keyframe], height: int, width: int):
        tracks: dict[str, dict[int, Box]] = {}
        for key in keyframes:
            tracks.setdefault(key.track, {})[key.frame] = in_pixels(key.box, height, width)
        self._tracks = [(sorted(points), [points[f] for f in sorted(points)]) for points in tracks.values()]

    @classmethod
    def fixed(cls, boxes: Sequence[Box], height: int, width: int) -> BoxTrack:
        """The same boxes on every frame (``--box``)."""
        return cls([Keyframe(0, f"#{k}", box) for k, box in enumerate(boxes)], height, width)

    def at(self, frame: int) -> list[Box]:
        """One box per track at ``frame``: interpolated between keyframes, held outside them."""
        boxes = []
        for frames, points in self._tracks:
            after = bisect.bisect_right(frames, frame)
            if after == 0:
                boxes.append(points[0])
            elif after == len(frames):
                boxes.append(points[-1])
            else:
                f0, f1 = frames[after - 1], frames[after]
                t = (frame - f0) / (f1 - f0)
                a, b = points[after - 1], points[after]
                boxes.append((a[0] + t * (b[0] - a[0]), a[1] + t * (b[1] - a[1]),
                              a[2] + t * (b[2] - a[2]), a[3] + t * (b[3] - a[3])))
        return boxes
