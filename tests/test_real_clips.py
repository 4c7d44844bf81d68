"""Regression on cuts of real clips nobody here made (tests/fixtures/real, see its README): every frame
the reader hands out has FFmpeg's picture and timestamp, frame ranges are FFmpeg's frames, and header
counts are not taken for bad frames or truncation."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.sources import open_source
from tests.quirky_clips import ffmpeg_decode, unmuxable
from tests.test_frame_exact import assert_same_frames

REAL = Path(__file__).parent / "fixtures" / "real"
# file: (width, height, frames FFmpeg decodes, frames the header lists)
CLIPS = {
    "megamind_3s.avi": (720, 528, 72, 72),
    "box_3s.mp4": (640, 480, 90, 90),
    "tree_8s.avi": (320, 240, 19, 120),
    "vtest_3s.avi": (768, 576, 30, 30),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(CLIPS))
def test_real_clip_frames_match_ffmpeg(name):
    width, height, decoded, listed = CLIPS[name]
    reference = ffmpeg_decode(REAL / name, width, height)
    assert len(reference.times) == decoded
    with open_source(str(REAL / name)) as source:
        frames = list(source.frames())
        assert source.info.frame_count == listed
        assert source.frames_bad == 0 and source.truncation is None
    assert_same_frames(frames, source.info.time_base, reference, unmuxable(reference.times))


@pytest.mark.slow
@pytest.mark.parametrize("name,frame_range", [("megamind_3s.avi", (24, 60)), ("box_3s.mp4", (30, 60)),
                                              ("tree_8s.avi", (5, 12))])
def test_real_clip_frame_range_is_exact(name, frame_range):
    width, height, _, _ = CLIPS[name]
    first, stop = frame_range
    reference = ffmpeg_decode(REAL / name, width, height, frames=f"{first}:{stop}")
    with open_source(str(REAL / name), frame_range=frame_range) as source:
        frames = list(source.frames())
    assert [f.index for f in frames] == list(range(first, stop))
    assert_same_frames(frames, source.info.time_base, reference)
