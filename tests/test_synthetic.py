"""Synthetic clips: deterministic, exact alpha, soft and thin structures, the promised segments."""

import numpy as np

from birefnet.train.scenes import SyntheticScene
from pipeline.synthetic import FlickerSimulator, make_clip


def test_make_clip_is_deterministic_and_shaped():
    frames, alpha = make_clip(3, 6, (64, 96))
    assert frames.shape == (6, 64, 96, 3) and frames.dtype == np.uint8
    assert alpha.shape == (6, 64, 96) and alpha.dtype == np.float32
    again_frames, again_alpha = make_clip(3, 6, (64, 96))
    assert np.array_equal(frames, again_frames) and np.array_equal(alpha, again_alpha)
    other_frames, _ = make_clip(4, 6, (64, 96))
    assert not np.array_equal(frames, other_frames)


def test_frame_is_the_composite_of_its_parts():
    frame = SyntheticScene(1, 10, 96, 128, noise=0.0).render(2)
    a = frame.alpha[..., None]
    expected = a * frame.foreground + (1 - a) * frame.background
    assert np.abs(frame.image / 255.0 - expected).max() <= 1 / 255 + 1e-4
    assert 0.0 <= frame.alpha.min() and frame.alpha.max() <= 1.0


def test_alpha_has_soft_and_thin_structures():
    frame = SyntheticScene(2, 10, 128, 192).render(0)
    soft = (frame.alpha > 0.05) & (frame.alpha < 0.95)
    assert soft.mean() > 0.005  # strands, veil and anti-aliased edges
    assert ((frame.alpha > 0.3) & (frame.alpha < 0.6)).sum() > 50  # the 45% veil
    assert (frame.alpha > 0.99).mean() > 0.02  # an opaque body


def test_segments_cut_and_entering_object():
    scene = SyntheticScene(0, 40, 64, 96)
    ranges = list(scene.segments.values())
    assert ranges[0].start == 0 and ranges[-1].stop == 40
    assert all(a.stop == b.start for a, b in zip(ranges, ranges[1:]))
    cut = scene.cuts[0]
    assert cut == scene.segments["after_cut"].start
    before, after = scene.render(cut - 1).image.astype(float), scene.render(cut).image.astype(float)
    inside = scene.render(cut - 2).image.astype(float)
    assert np.abs(after - before).mean() > 3 * np.abs(before - inside).mean()
    # The ball crosses the frame during enter_leave: it covers different columns early and late.
    seg = scene.segments["enter_leave"]
    early, late = scene.render(seg.start + 1).alpha, scene.render(seg.stop - 2).alpha
    band = slice(int(0.3 * 64) - 2, int(0.3 * 64) + 3)  # the ball's rows
    left, right = slice(0, int(0.2 * 96)), slice(int(0.8 * 96), 96)
    assert early[band, left].sum() > late[band, left].sum()
    assert late[band, right].sum() > early[band, right].sum()


def test_flicker_simulator_is_deterministic_bounded_and_flickers():
    _, alpha = make_clip(0, 4, (96, 128))
    simulator = FlickerSimulator(seed=5, dropout_prob=1.0)
    first = simulator.predict_batch(alpha, 0)
    assert np.array_equal(first, FlickerSimulator(seed=5, dropout_prob=1.0).predict_batch(alpha, 0))
    assert first.min() >= 0.0 and first.max() <= 1.0 and first.dtype == np.float32
    error = np.abs(first - alpha).mean()
    assert 0.0005 < error < 0.05  # wrong, but near the truth
    # Same truth, different frame index -> different errors (independent per frame).
    assert not np.array_equal(simulator.predict(alpha[0], 0), simulator.predict(alpha[0], 1))
