"""Best-effort timestamps and the timeline repair, on the timestamp patterns of real files."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.timestamps import BestEffortClock, repair_timeline


def best_effort(pairs):
    clock = BestEffortClock()
    return [clock(pts, dts) for pts, dts in pairs]


def repaired(stamps, step=1):
    return [stamp for _, stamp in repair_timeline(enumerate(stamps), step)]


def test_pts_equal_dts_on_b_frames_falls_back_to_dts():
    # box.mp4's first frames as PyAV decodes them: (pts, dts); FFmpeg's decode gives 0, 101000, 134000, ...
    pairs = [(0, 67000), (101000, 101000), (67000, 134000), (134000, 167000), (34000, 201000), (234000, 234000)]
    assert best_effort(pairs) == [0, 101000, 134000, 167000, 201000, 234000]


def test_reliable_pts_are_kept_even_when_dts_repeat():
    pairs = [(0, None), (2, 0), (1, 0), (3, 1), (5, 2), (4, 3)]
    assert best_effort(pairs) == [0, 2, 1, 3, 5, 4]  # pts went back once, dts twice: pts wins


def test_packed_b_frames_duplicate_is_placed_between_neighbours():
    # Megamind.avi (Xvid in AVI): best effort gives 1,2,3,5,5,6,... and a repeated last stamp; FFmpeg 1..N
    pairs = [(1, 1), (2, 2), (3, 3), (5, 4), (4, 5), (6, 6), (8, 7), (7, 8), (9, 9), (10, 10)]
    assert repaired(best_effort(pairs)) == list(range(1, 11))
    assert repaired([1, 2, 3, 4, 5, 6, 6]) == [1, 2, 3, 4, 5, 6, 7]


def test_swapped_pair_at_the_end_is_swapped_back():
    assert repaired([100, 133, 167, 234, 200], step=33) == [100, 133, 167, 200, 234]


def test_increasing_timestamps_pass_unchanged_including_vfr():
    stamps = [0, 11, 17, 24, 31, 37, 43, 49, 56, 61]  # tree.avi: empty index entries, real gaps
    assert repaired(stamps, step=1) == stamps


def test_missing_timestamps_follow_their_predecessor():
    assert repaired([None, 10, 20, None, 40, None], step=10) == [0, 10, 20, 30, 40, 50]


@pytest.mark.parametrize("seed", range(20))
def test_output_is_strictly_increasing_and_keeps_every_frame(seed):
    rng = np.random.default_rng(seed)
    stamps = list(np.cumsum(rng.integers(1, 5, 60)))
    for i in rng.choice(60, 8, replace=False):  # damage some: duplicates, swaps, holes, jumps back
        kind = rng.integers(4)
        if kind == 0 and i:
            stamps[i] = stamps[i - 1]
        elif kind == 1 and i + 1 < 60:
            stamps[i], stamps[i + 1] = stamps[i + 1], stamps[i]
        elif kind == 2:
            stamps[i] = None
        else:
            stamps[i] = int(stamps[i]) - 7
    items = [item for item, _ in repair_timeline(enumerate(stamps), 2)]
    out = repaired(stamps, step=2)
    assert items == list(range(60))
    assert all(b > a for a, b in zip(out, out[1:]))
