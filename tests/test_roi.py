"""Box-guided matting and subject tracking: paste-back exactness, box geometry and its errors, keyframe
files, tracking on synthetic clips with exact alpha, both backends, and `process` end to end.

The paste-back tests run the conftest's random-weight checkpoint; the tracking tests run the real
``Predictor`` around ``RedKeyModel`` (alpha = the red channel), so the true alpha is known at any crop
and the tracking logic, not a model, is what is under test.
"""

from __future__ import annotations

import json
from dataclasses import replace
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch

import run_pipeline
from birefnet import Predictor
from birefnet.boxes import check_box, region_of
from birefnet.errors import InputError
from birefnet.live_tracking import LiveTracker
from birefnet.tracking import TrackSettings, crop_region, escapes, frame_crops, smooth_boxes, subject_boxes
from pipeline.frames import FrameBatch
from pipeline.roi import open_roi
from pipeline.roi.keyframes import BoxTrack, read_keyframes
from pipeline.roi.requests import track_requests
from pipeline.webcam.engine import Engine
from tests.clips import decode_video, make_clip
from tests.predictors import RedKeyFactory
from workers.base import BackendConfig
from workers.local import LocalBackend
from workers.payload import RegionRequest

TRACK = TrackSettings(coarse_resolution=64, radius=3, enlarge=0.1)


@pytest.fixture(scope="module")
def predictor(checkpoint: Path) -> Predictor:
    return Predictor(str(checkpoint), device="cpu", resolution=64)


@pytest.fixture(scope="module")
def frames() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (2, 48, 80, 3), dtype=np.uint8)


# --- paste-back and geometry ---------------------------------------------------------------------

def test_pasted_crop_equals_the_model_on_the_crop_and_is_zero_outside(predictor, frames):
    alpha = predictor.predict(frames, boxes=[(20, 10, 60, 40)], margin=0.1)
    x0, y0, x1, y1 = region_of((20, 10, 60, 40), 48, 80, 0.1)
    assert (x0, y0, x1, y1) == (16, 7, 64, 43)
    crop = predictor.predict(np.ascontiguousarray(frames[:, y0:y1, x0:x1]))
    np.testing.assert_allclose(alpha[:, y0:y1, x0:x1], crop, atol=1e-6)
    outside = np.ones(alpha.shape, bool)
    outside[:, y0:y1, x0:x1] = False
    assert alpha[outside].max() == 0.0 and crop.max() > 0


def test_fraction_boxes_and_the_whole_frame_box_equal_plain_prediction(predictor, frames):
    assert region_of((0.25, 0.5, 0.75, 1.0), 48, 80, 0.0) == (20, 24, 60, 48)
    np.testing.assert_allclose(predictor.predict(frames, boxes=[(0, 0, 1, 1)], margin=0.0), predictor.predict(frames),
                               atol=1e-6)


def test_two_boxes_per_frame_combine_with_max_and_per_frame_lists(predictor, frames):
    boxes = [[(2, 2, 30, 30), (20, 10, 70, 44)], []]
    alpha = predictor.predict(frames, boxes=boxes, margin=0.0, dtype="uint8")
    first = predictor.predict(np.ascontiguousarray(frames[:1, 2:30, 2:30]), dtype="uint8")[0]
    second = predictor.predict(np.ascontiguousarray(frames[:1, 10:44, 20:70]), dtype="uint8")[0]
    expected = np.zeros((48, 80), np.uint8)
    expected[2:30, 2:30] = first
    expected[10:44, 20:70] = np.maximum(expected[10:44, 20:70], second)
    assert np.abs(alpha[0].astype(int) - expected).max() <= 1  # float rounding of two model batches
    assert alpha[1].max() == 0, "a frame without boxes has no subject"


def test_crops_of_other_shapes_each_run_at_their_own_working_size(checkpoint, frames):
    """At a dynamic resolution a tall and a wide crop want different working sizes: each is the model on
    that crop alone, not resized to the other's size because they share a call."""
    dynamic = Predictor(str(checkpoint), device="cpu", precision="fp32", resolution="dynamic")
    dynamic.dynamic_base = 128  # about 128^2 model pixels a crop, not a checkpoint's 1024^2: a quick test
    tall, wide = (4, 2, 24, 46), (30, 4, 78, 20)
    assert dynamic.working_size(44, 20) != dynamic.working_size(16, 48)
    alpha = dynamic.predict(frames[:1], boxes=[tall, wide], margin=0.0)[0]
    for x0, y0, x1, y1 in (tall, wide):
        alone = dynamic.predict(np.ascontiguousarray(frames[:1, y0:y1, x0:x1]))[0]
        np.testing.assert_allclose(alpha[y0:y1, x0:x1], alone, atol=1e-6)


def test_edge_boxes_and_boxes_larger_than_the_frame_are_clamped(predictor, frames):
    assert region_of((60, 30, 80, 48), 48, 80, 0.5) == (50, 21, 80, 48)
    assert region_of((-100, -50, 500, 300), 48, 80, 0.1) == (0, 0, 80, 48)
    np.testing.assert_allclose(predictor.predict(frames, boxes=[(-100, -50, 500, 300)]), predictor.predict(frames),
                               atol=1e-6)


@pytest.mark.parametrize("box, message", [
    ((10, 10, 10, 40), "is empty: x1 equals x0"),
    ((10, 40, 30, 20), "is inverted: y1 (20) is less than y0 (40)"),
    ((0, 0, float("nan"), 4), "every value must be a finite number"),
    ((1, 2, 3), "needs 4 numbers"),
])
def test_bad_boxes_are_one_line_errors(predictor, frames, box, message):
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace(")", r"\)")) as caught:
        predictor.predict(frames, boxes=[box])
    assert "\n" not in str(caught.value)
    with pytest.raises(InputError, match="lies outside the 80x48 frame"):
        region_of((100, 100, 120, 120), 48, 80)


# --- keyframe files --------------------------------------------------------------------------------

def test_csv_keyframes_interpolate_per_track_and_hold_outside(tmp_path):
    path = tmp_path / "boxes.csv"
    path.write_text("frame,x0,y0,x1,y1,id\n2,0,0,10,10,a\n6,40,20,50,30,a\n4,0.5,0.5,1,1,b\n")
    track = BoxTrack(read_keyframes(path), 48, 80)
    assert track.at(0) == [(0, 0, 10, 10), (40, 24, 80, 48)]
    assert track.at(4) == [(20, 10, 30, 20), (40, 24, 80, 48)]
    assert track.at(5) == [(30, 15, 40, 25), (40, 24, 80, 48)]
    assert track.at(99) == [(40, 20, 50, 30), (40, 24, 80, 48)]


def test_json_keyframes_with_several_boxes_per_frame(tmp_path):
    path = tmp_path / "boxes.json"
    path.write_text(json.dumps([{"frame": 0, "boxes": [[0, 0, 10, 10], [20, 20, 30, 30]]},
                                {"frame": 10, "boxes": [[10, 0, 20, 10], [20, 30, 30, 40]]}]))
    track = BoxTrack(read_keyframes(path), 48, 80)
    assert track.at(5) == [(5, 0, 15, 10), (20, 25, 30, 35)]


def test_an_edited_boxes_file_is_read_again(tmp_path):
    path = tmp_path / "boxes.csv"
    path.write_text("frame,x0,y0,x1,y1\n0,0,0,10,10\n")
    assert BoxTrack(read_keyframes(path), 48, 80).at(0) == [(0, 0, 10, 10)]
    path.write_text("frame,x0,y0,x1,y1\n0,20,20,30,30\n0,40,0,60,20\n")
    assert BoxTrack(read_keyframes(path), 48, 80).at(0) == [(20, 20, 30, 30), (40, 0, 60, 20)]


@pytest.mark.parametrize("text, message", [
    ("frame,x0,y0,x1,y1\n3,10,10,5,20\n", r"boxes.csv:2: box 10,10,5,20 is inverted"),
    ("frame,x0,y0\n3,1,2\n", "missing x1,y1"),
    ("frame,x0,y0,x1,y1\nthree,1,2,3,4\n", "frame must be a whole number"),
    ("frame,x0,y0,x1,y1\n", "holds no boxes"),
])
def test_bad_boxes_files_are_one_line_errors(tmp_path, text, message):
    path = tmp_path / "boxes.csv"
    path.write_text(text)
    with pytest.raises(InputError, match=message):
        read_keyframes(path)


# --- tracking ----------------------------------------------------------------------------------------

def red_subject_clip(count: int, height: int, width: int, cut: int | None = None,
                     radius: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """A small red disk with a thin strand moving smoothly over a red-free textured background; at
    ``cut`` the background changes and the subject jumps. Returns images and their exact alpha."""
    rng = np.random.default_rng(1)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    backgrounds = [rng.integers(0, 60, (height, width, 3)).astype(np.float32) + (0, 160, 20),
                   rng.integers(0, 60, (height, width, 3)).astype(np.float32) + (0, 20, 170)]
    r = radius * height
    images, alphas = [], []
    for t in range(count):
        after = cut is not None and t >= cut
        if after:
            cx, cy = 0.8 * width - 0.01 * width * (t - cut), 0.3 * height
        else:
            cx, cy = 0.15 * width + 0.012 * width * t, 0.55 * height + 0.05 * height * np.sin(t / 4)
        disk = np.clip(r - np.hypot(xx - cx, yy - cy) + 0.5, 0, 1)
        strand = np.clip(1 - np.abs(yy - (cy - r) + 0.6 * (xx - cx)), 0, 1) * (xx > cx) * (xx < cx + r) * 0.6
        alpha = np.maximum(disk, strand)
        background = backgrounds[int(after)].copy()
        background[..., 0] = 0
        image = alpha[..., None] * np.array([255.0, 0, 0]) + (1 - alpha[..., None]) * background
        images.append(np.round(image).astype(np.uint8))
        alphas.append(alpha)
    return np.stack(images), np.stack(alphas)


def batches_of(images: np.ndarray, size: int) -> list[FrameBatch]:
    return [FrameBatch(i, images[i:i + size], [None] * len(images[i:i + size]), Fraction(1, 25))
            for i in range(0, len(images), size)]


def tracked(images: np.ndarray, backend) -> tuple[np.ndarray, list[tuple[int, int, int, int]]]:
    alpha, regions = [], []
    for _, result in backend.matte(track_requests(batches_of(images, 4), TRACK)):
        alpha.append(result.alpha)
        regions += [r[0] for r in result.regions]
    return np.concatenate(alpha), regions


def check_track(alpha: np.ndarray, true: np.ndarray, regions: list, shots: list[int]) -> None:
    """The crop holds the subject in every frame, alpha is the truth inside and 0 outside it, and the crop's
    centre moves smoothly within a shot."""
    for t, (x0, y0, x1, y1) in enumerate(regions):
        ys, xs = np.nonzero(true[t] > 0.02)
        assert x0 <= xs.min() and xs.max() < x1 and y0 <= ys.min() and ys.max() < y1, f"frame {t} lost the subject"
        inside = np.zeros(true[t].shape, bool)
        inside[y0:y1, x0:x1] = True
        assert alpha[t][~inside].max() == 0
        assert np.abs(alpha[t][inside] / 255.0 - true[t][inside]).mean() < 0.01  # resampling blurs the strand
    centres = np.array([((x0 + x1) / 2, (y0 + y1) / 2) for x0, y0, x1, y1 in regions])
    height = true.shape[1]
    for t in range(1, len(regions) - 1):
        if shots[t - 1] == shots[t] == shots[t + 1]:
            second = np.abs(centres[t + 1] - 2 * centres[t] + centres[t - 1]).max()
            assert second <= 0.02 * height, f"frame {t}: the crop's centre jumps ({second:.1f} px)"


def test_tracking_follows_a_small_subject_smoothly_and_refinds_it_after_a_cut():
    images, true = red_subject_clip(18, 360, 640, cut=11)  # a 4K-like geometry: a 36 px subject in 640x360
    with LocalBackend(RedKeyFactory(128)) as backend:
        alpha, regions = tracked(images, backend)
    shots = [0] * 11 + [1] * 7
    check_track(alpha, true, regions, shots)
    before, after = regions[10], regions[11]
    assert after[0] > before[2], "after the cut the crop is where the subject now is, not where it was"
    assert max((x1 - x0) * (y1 - y0) for x0, y0, x1, y1 in regions) < 0.1 * 360 * 640


def two_subject_clip(count: int, height: int, width: int, enters: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two red disks over a red-free background that start at opposite sides, meet in the middle and part
    again (the right one lower, so they pass without touching); the right one is there from frame
    ``enters`` on. Returns images and their exact alpha."""
    rng = np.random.default_rng(2)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    background = rng.integers(0, 60, (height, width, 3)).astype(np.float32) + (0, 140, 40)
    background[..., 0] = 0
    r = 0.05 * height
    images, alphas = [], []
    for t in range(count):
        travel = 0.7 * width * t / (count - 1)
        left = np.clip(r - np.hypot(xx - (0.1 * width + travel), yy - 0.42 * height) + 0.5, 0, 1)
        right = np.clip(r - np.hypot(xx - (0.9 * width - travel), yy - 0.58 * height) + 0.5, 0, 1) * (t >= enters)
        alpha = np.maximum(left, right)
        image = alpha[..., None] * np.array([255.0, 0, 0]) + (1 - alpha[..., None]) * background
        images.append(np.round(image).astype(np.uint8))
        alphas.append(alpha)
    return np.stack(images), np.stack(alphas)


def subject_centres(alphas: np.ndarray, upper: bool) -> list[float]:
    """Per frame, the x of the centre of ``two_subject_clip``'s upper (or lower) disk."""
    half = alphas.shape[1] // 2
    return [float(np.nonzero((alpha[:half] if upper else alpha[half:]) > 0.5)[1].mean()) for alpha in alphas]


def test_separate_subjects_get_a_crop_each_even_while_they_pass_close_by():
    images, true = two_subject_clip(16, 360, 640)
    with LocalBackend(RedKeyFactory(128)) as backend:
        results = [result for _, result in backend.matte(track_requests(batches_of(images, 4), TRACK))]
    alpha = np.concatenate([result.alpha for result in results])
    regions = [crops for result in results for crops in result.regions]
    for t, crops in enumerate(regions):
        inside = np.zeros(true[t].shape, bool)
        for x0, y0, x1, y1 in crops:  # crops may overlap while the two come near: their alphas meet with max
            inside[y0:y1, x0:x1] = True
        assert inside[true[t] > 0.02].all(), f"frame {t} lost a subject"
        assert alpha[t][~inside].max() == 0
        assert np.abs(alpha[t][inside] / 255.0 - true[t][inside]).mean() < 0.01
    # One crop holding both would be larger than their two as they pass, so each keeps its own; its crop
    # never widens by the 2-3x of taking two subjects for one as soon as their crops touched.
    assert all(len(crops) == 2 for crops in regions), [len(crops) for crops in regions]
    for upper in (True, False):
        widths = [min(c[2] - c[0] for c in crops if c[0] <= centre <= c[2])
                  for crops, centre in zip(regions, subject_centres(true, upper), strict=True)]
        assert max(b / a for a, b in zip(widths, widths[1:])) < 1.6, widths
    area = [sum((x1 - x0) * (y1 - y0) for x0, y0, x1, y1 in crops) for crops in regions]
    assert area[0] < 0.2 * 360 * 640  # two small crops, not one spanning both
    for k in range(2):  # each subject's crop moves smoothly while the two are apart
        centres = np.array([[(c[k][0] + c[k][2]) / 2 for c in regions[:4]]])
        assert np.abs(np.diff(centres, 2)).max() <= 0.02 * 360
    with LocalBackend(RedKeyFactory(128)) as backend:
        one = [result for _, result in backend.matte(track_requests(batches_of(images, 4),
                                                                    replace(TRACK, max_subjects=1)))]
    assert all(len(crops) == 1 for result in one for crops in result.regions)


def test_subjects_share_a_crop_once_one_costs_no_more_than_two_and_each_keeps_most_of_its_scale():
    settings = TrackSettings()

    def crop(box):
        return crop_region(box, 2160, 3840, settings, (1024, 1024))

    def area(region):
        return (region[2] - region[0]) * (region[3] - region[1])

    first = (0.45, 0.4, 0.51, 0.6)
    own = crop(first)
    assert len(frame_crops([first, (0.95, 0.4, 0.99, 0.6)], crop, settings, 2160, 3840)) == 2
    shared = []
    for shift in np.linspace(0.1, 0.0, 21):  # a second subject of the same size closes in on the first
        second = (first[0] + shift, first[1], first[2] + shift, first[3])
        crops = frame_crops([first, second], crop, settings, 2160, 3840)
        union = crop((first[0], first[1], second[2], first[3]))
        assert (len(crops) == 1) == (area(union) <= 2 * area(own)), shift
        assert max(c[2] - c[0] for c in crops) <= 1.5 * (own[2] - own[0])  # at most about sqrt(2) wider
        shared.append(len(crops) == 1)
    assert shared[0] is False and shared[-1] is True


def test_a_crop_edge_inside_another_crop_is_no_escape():
    alpha = np.zeros((100, 200), np.float32)
    a, b = (20, 20, 100, 80), (90, 10, 180, 90)  # overlapping crops
    alpha[30:60, 95:110] = 1  # across a's right edge, inside b: matted there
    assert not escapes(alpha, [a, b], 0.5)
    assert escapes(alpha, [a], 0.5)  # alone, a cuts it
    alpha[79, 40:50] = 1  # on a's bottom edge, outside b: cut
    assert escapes(alpha, [a, b], 0.5)
    assert not escapes(alpha, [(0, 0, 200, 100)], 0.5)  # the frame's own edges are no escape


def test_near_parts_of_one_subject_are_one_subject_and_specks_alone_are_none():
    alpha = np.zeros((90, 160), np.float32)
    alpha[40:50, 10:20] = 1  # a subject
    alpha[40:50, 24:28] = 1  # a part of it (a hand) not touching it at this size
    alpha[40:50, 130:140] = 1  # another subject, far away
    alpha[5, 80] = 1  # a one-pixel false alarm, far from both
    settings = TrackSettings(min_fraction=1e-3)
    boxes = subject_boxes(alpha, settings, lambda box: crop_region(box, 900, 1600, settings, (512, 512)))
    assert boxes == [(10 / 160, 40 / 90, 28 / 160, 50 / 90), (130 / 160, 40 / 90, 140 / 160, 50 / 90)]


class ScarceMemoryRedKey:
    """``RedKeyFactory``'s predictor, out of device memory on calls of more than ``most`` model inputs
    (frames, or their boxes)."""

    def __init__(self, most: int):
        self.inner, self.most, self.calls = RedKeyFactory(128)("cpu"), most, []

    def predict(self, frames, **options):
        boxes = options.get("boxes")
        self.calls.append(len(frames) if boxes is None else sum(len(b) for b in boxes))
        if self.calls[-1] > self.most:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return self.inner.predict(frames, **options)

    def working_size(self, height: int, width: int) -> tuple[int, int]:
        return self.inner.working_size(height, width)


def test_the_coarse_pass_halves_on_out_of_memory_like_the_crops():
    """The coarse pass runs a batch and its window (4 + 2 x 3 thumbnails here) in one call; out of memory,
    it is split as the crop pass is, and the crops come out the same."""
    from workers.matting import MattingWorker

    images, _ = red_subject_clip(12, 360, 640)
    requests = [request for _, request in track_requests(batches_of(images, 4), TRACK)]
    plenty, scarce = MattingWorker(RedKeyFactory(128)("cpu"), warmup=False), ScarceMemoryRedKey(most=3)
    worker = MattingWorker(scarce, warmup=False)
    for request in requests:
        expected, _ = plenty.matte(request)
        got, _ = worker.matte(request)
        np.testing.assert_array_equal(got.alpha, expected.alpha)
        assert got.regions == expected.regions
    assert max(scarce.calls) > 3 and worker.max_chunk is not None and worker.max_chunk <= 3


def test_a_frame_with_more_crops_than_fit_is_split_over_calls_with_the_same_alpha():
    from workers.matting import MattingWorker

    images, _ = two_subject_clip(6, 360, 640)
    boxes = [np.array([[40, 100, 200, 260], [420, 120, 600, 300], [250, 10, 330, 90]])] * len(images)
    request = RegionRequest(images, boxes=boxes)
    expected, _ = MattingWorker(RedKeyFactory(128)("cpu"), warmup=False).matte(request)
    scarce = ScarceMemoryRedKey(most=1)
    worker = MattingWorker(scarce, warmup=False)
    got, _ = worker.matte(request)
    np.testing.assert_array_equal(got.alpha, expected.alpha)
    assert worker.max_chunk == 1 and len(scarce.calls) > 3 * len(images)


def test_nothing_found_falls_back_to_the_whole_frame():
    images = np.zeros((3, 72, 128, 3), np.uint8)
    images[..., 1] = 120
    with LocalBackend(RedKeyFactory(64)) as backend:
        _, regions = tracked(images, backend)
    assert regions == [(0, 0, 128, 72)] * 3


@pytest.mark.slow
def test_both_backends_give_identical_alpha_and_crops(local_ray):
    from workers.ray_actors import RayBackend

    one, _ = red_subject_clip(10, 144, 256, cut=6)
    two, _ = two_subject_clip(10, 144, 256)  # a crop per subject, shared while they pass
    images = np.concatenate([one, two])
    with LocalBackend(RedKeyFactory(64)) as backend:
        local = list(backend.matte(track_requests(batches_of(images, 4), TRACK)))
    with RayBackend(RedKeyFactory(64), BackendConfig(kind="ray", workers=2, device="cpu")) as backend:
        remote = list(backend.matte(track_requests(batches_of(images, 4), TRACK)))
    assert len(local) == len(remote) == 5
    for (_, mine), (_, theirs) in zip(local, remote, strict=True):
        np.testing.assert_array_equal(mine.alpha, theirs.alpha)
        assert mine.regions == theirs.regions
    assert max(len(crops) for _, result in local for crops in result.regions) >= 2


@pytest.mark.slow
def test_tracking_on_a_3840x2160_clip():
    images, true = red_subject_clip(5, 2160, 3840, radius=0.06)
    with LocalBackend(RedKeyFactory(256)) as backend:
        alpha, regions = tracked(images, backend)
    check_track(alpha, true, regions, [0] * 5)
    assert max((x1 - x0) * (y1 - y0) for x0, y0, x1, y1 in regions) < 0.05 * 3840 * 2160


def test_a_fast_move_widens_only_the_crops_near_it_and_every_crop_holds_its_frame():
    # a 0.1 x 0.2 subject drifting right, jumping 0.3 of the frame at frame 7
    found = [(0.1 + 0.01 * t + 0.3 * (t >= 7), 0.4, 0.2 + 0.01 * t + 0.3 * (t >= 7), 0.6) for t in range(14)]
    boxes = smooth_boxes(found, [0] * 14, 2, range(14))
    for own, box in zip(found, boxes, strict=True):
        assert box is not None
        assert box[0] <= own[0] + 1e-9 and own[2] <= box[2] + 1e-9 and box[1] <= own[1] and own[3] <= box[3]
    widths = [box[2] - box[0] for box in boxes if box is not None]
    assert widths[2] == pytest.approx(0.1) and widths[11] == pytest.approx(0.1)  # the jump is 3+ frames away
    assert min(widths[5:9]) > 0.15 and max(widths) < 0.1 + 0.3  # wider near it, never the window's whole path


def test_a_frame_the_coarse_pass_missed_gets_a_crop_holding_its_neighbours_boxes():
    """The subject jumps between frames 1 and 2 and frame 1's coarse pass finds nothing: its crop must hold
    the boxes found either side of it, not only their weighted mean (which cut the subject at 4K)."""
    found = [(0.10, 0.4, 0.20, 0.6), (0.11, 0.4, 0.21, 0.6), None, (0.40, 0.4, 0.50, 0.6), (0.41, 0.4, 0.51, 0.6)]
    box = smooth_boxes(found, [0] * 5, 2, range(5))[2]
    assert box is not None and box[0] <= 0.11 and box[2] >= 0.50
    alone = smooth_boxes([None, None, None, (0.40, 0.4, 0.50, 0.6), None], [0] * 5, 2, range(5))[2]
    assert alone is not None and alone[0] <= 0.40 and alone[2] >= 0.50  # one side only: that side's box
    cut = smooth_boxes([(0.10, 0.4, 0.20, 0.6), None, (0.40, 0.4, 0.50, 0.6)], [0, 1, 1], 2, range(3))[1]
    assert cut is not None and cut[0] >= 0.40  # never the other shot's box


def test_faint_coarse_alpha_joins_the_box_only_where_it_touches_the_subject():
    alpha = np.zeros((100, 200), np.float32)
    alpha[40:60, 50:70] = 0.9  # the subject
    alpha[30:40, 60] = 0.2  # a strand averaged down by the coarse pass, attached
    alpha[80:90, 150:160] = 0.3  # a faint false alarm over the background
    def whole(box):  # a crop as large as the frame: every part is one subject
        return (0, 0, 200, 100)

    settings = TrackSettings(min_fraction=1e-3)
    assert subject_boxes(alpha, settings, whole) == [(0.25, 0.3, 0.35, 0.6)]
    assert subject_boxes(alpha, replace(settings, faint=0.5), whole) == [(0.25, 0.4, 0.35, 0.6)]


def test_subject_pixels_grows_the_crop_so_the_model_sees_the_subject_no_larger():
    box = (0.4, 0.4, 0.5, 0.6)  # 200 x 200 px of a 2000 x 1000 frame
    plain = crop_region(box, 1000, 2000, TrackSettings(enlarge=0.1), (512, 512))
    capped = crop_region(box, 1000, 2000, TrackSettings(enlarge=0.1, subject_pixels=128), (512, 512))
    assert plain == (780, 380, 1020, 620)
    x0, y0, x1, y1 = capped
    assert 200 * 512 / (x1 - x0) <= 128 and 200 * 512 / (y1 - y0) <= 128
    assert (x0 + x1) / 2 == 900 and (y0 + y1) / 2 == 500 and x1 - x0 == y1 - y0 == 800


@pytest.mark.parametrize("model, setting, expected", [
    ("demo", None, 192),  # trained on 192-pixel crops: the registry says so
    ("hr-matting", None, None),  # trained at its working size: no limit
    ("runs/mine/best.safetensors", None, None),  # a file: nothing known, no limit
    ("demo", 0, None),  # 0 lifts the limit
    ("demo", 300, 300),
])
def test_roi_auto_limits_the_subject_to_what_the_model_learned_from_unless_told(model, setting, expected):
    stage = open_roi("auto", None, None, 0.1, 2160, 3840, subject_pixels=setting, model=model)
    assert stage is not None and stage.track is not None and stage.track.subject_pixels == expected


# --- live (webcam) tracking ------------------------------------------------------------------------------

def live_matte(images: np.ndarray, tracker: LiveTracker) -> tuple[np.ndarray, dict]:
    """Every frame through the webcam engine, each waited for (none dropped): alphas and the run's report."""
    engine = Engine(RedKeyFactory(128)("cpu"), tracker=tracker)
    return engine.matte_in_turn(images, timeout=60), engine.report()


def held(alpha: np.ndarray, true: np.ndarray) -> bool:
    """Every solid pixel of the subjects matted solid, and the alpha close to the truth (resampling blurs
    the strand)."""
    return bool((alpha[true > 0.9] > 0.5).all() and np.abs(alpha - true).mean() < 0.01)


def test_live_crops_follow_the_subject_and_rematte_a_frame_that_lost_it():
    images, true = red_subject_clip(24, 360, 640, cut=12)
    alpha, report = live_matte(images, LiveTracker(TRACK))
    for t in range(len(images)):  # every frame, the cut's too, holds the whole subject
        assert held(alpha[t], true[t]), f"frame {t}"
    assert report["roi_coverage_mean"] < 0.3  # crops, not whole frames, most of the time
    assert 1 <= report["roi_frames_rematted"] <= 2  # the cut (and at most one more while the speed is learnt)


def test_a_subject_entering_outside_the_live_crops_is_found_at_the_next_whole_frame():
    images, true = two_subject_clip(16, 360, 640, enters=3)
    alpha, _ = live_matte(images, LiveTracker(TRACK, refind_every=4))
    missed = [t for t in range(len(images)) if not held(alpha[t], true[t])]
    assert missed and min(missed) >= 3 and max(missed) <= 3 + 4, missed  # until the next whole frame, no longer


# --- `process` end to end -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return make_clip(tmp_path_factory.mktemp("roi") / "clip.mp4", width=80, height=48, frames=6)


def process(clip: Path, out: Path, checkpoint: Path, *flags: str) -> int:
    return run_pipeline.main(["process", str(clip), "-o", str(out), "--model", str(checkpoint), "--resolution", "64",
                              "--backend", "local", "--output", "matte", "--temporal", "off", "--quiet", *flags])


def test_process_with_a_boxes_file_mattes_only_inside_the_interpolated_boxes(clip, checkpoint, tmp_path):
    boxes = tmp_path / "boxes.csv"
    boxes.write_text("frame,x0,y0,x1,y1\n1,0,0,20,20\n5,40,20,60,40\n")
    out, report = tmp_path / "matte.mkv", tmp_path / "report.json"
    assert process(clip, out, checkpoint, "--boxes", str(boxes), "--roi-margin", "0", "--report", str(report)) == 0
    matte = decode_video(out, format="gray")[0]
    track = BoxTrack(read_keyframes(boxes), 48, 80)
    for index, frame in enumerate(matte):
        x0, y0, x1, y1 = region_of(track.at(index)[0], 48, 80, 0.0)
        outside = np.ones(frame.shape, bool)
        outside[y0:y1, x0:x1] = False
        assert frame[outside].max() == 0, f"frame {index} has alpha outside its box"
    roi = json.loads(report.read_text())["inputs"][0]["roi"]
    assert roi["mode"] == "boxes" and 0 < roi["coverage"]["min"] <= roi["coverage"]["max"] < 0.2
    assert roi["crops_per_frame"] == {"mean": 1.0, "max": 1} and roi["whole_frames"] == 0
    assert roi["model_pixels_per_subject_pixel"]["roi"] > roi["model_pixels_per_subject_pixel"]["full_frame"]


def test_process_roi_auto_runs_and_reports(clip, checkpoint, tmp_path, capsys):
    out, report = tmp_path / "matte.mkv", tmp_path / "report.json"
    code = run_pipeline.main(["process", str(clip), "-o", str(out), "--model", str(checkpoint), "--resolution", "64",
                              "--backend", "local", "--output", "matte", "--roi", "auto", "--report", str(report)])
    assert code == 0
    assert "ROI auto: crops cover" in capsys.readouterr().out
    assert len(decode_video(out, format="gray")[0]) == 6
    roi = json.loads(report.read_text())["inputs"][0]["roi"]
    assert 1 <= roi["crops_per_frame"]["mean"] <= roi["crops_per_frame"]["max"] <= 4
    assert 0 <= roi["whole_frames"] <= 6


def test_box_given_twice_mattes_inside_both_as_one_flag_with_two_boxes(clip, checkpoint, tmp_path):
    twice, joined = tmp_path / "twice.mkv", tmp_path / "joined.mkv"
    assert process(clip, twice, checkpoint, "--box", "0,0,20,20", "--box", "40,20,60,40", "--roi-margin", "0") == 0
    assert process(clip, joined, checkpoint, "--box", "0,0,20,20;40,20,60,40", "--roi-margin", "0") == 0
    matte = decode_video(twice, format="gray")[0]
    assert np.array_equal(matte, decode_video(joined, format="gray")[0])
    outside = np.ones(matte.shape[1:], bool)
    outside[0:20, 0:20] = outside[20:40, 40:60] = False
    assert matte[:, outside].max() == 0 and matte[:, 20:40, 40:60].max() > 0


@pytest.mark.parametrize("flags, message", [
    (["--box", "10,10,5,40"], "error: --box: box 10,10,5,40 is inverted: x1 (5) is less than x0 (10)"),
    (["--box", "10,10,10,40"], "error: --box: box 10,10,10,40 is empty"),
    (["--box", "1,2,3,4", "--roi", "auto"], "error: box and roi auto: choose one way"),
    (["--boxes", "missing.csv"], "error: boxes: missing.csv does not exist"),
])
def test_bad_box_flags_exit_non_zero_with_one_line(clip, checkpoint, tmp_path, capsys, flags, message):
    assert process(clip, tmp_path / "x.mkv", checkpoint, *flags) != 0
    err = capsys.readouterr().err.strip()
    assert err.startswith(message) and "\n" not in err


def test_check_box_keeps_pixels_and_fractions():
    assert check_box([1, 2, 3, 4]) == (1, 2, 3, 4)
