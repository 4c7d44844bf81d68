"""The temporal evaluation: families that do what they say, exact scenes over real video, a clean split,
no-ground-truth scores that see flicker, and the runner the tuner drives."""

import numpy as np
import pytest
import torch

from benchmarks.temporal import main as benchmark_main
from birefnet.train.scenes import SyntheticScene
from pipeline.evaluation import evaluate, family_changes, held_out_cases, mean_change, prepare, tuning_cases
from pipeline.evaluation.backgrounds import REAL_CLIPS, TEXTURE, ping_pong
from pipeline.evaluation.families import (
    FAMILIES,
    BoundaryFlicker,
    GainFlicker,
    MatteJitter,
    SoftDropout,
    SoftNoise,
    soft_band,
)
from pipeline.evaluation.network import network_predictions
from pipeline.evaluation.scenes import RealScene, SceneSpec
from pipeline.evaluation.split import HELD_OUT_FAMILIES, HELD_OUT_FAMILY, HELD_OUT_SEED, TUNING, Case
from pipeline.metrics import departure, still_flicker
from pipeline.synthetic import FlickerSimulator
from pipeline.temporal.smoother import make_smoother


@pytest.fixture(scope="module")
def truth() -> np.ndarray:
    """Exact alpha of a few frames with an opaque body, strands, a veil (108 lines: 1 px at 1080 = 0.1 px)."""
    return SyntheticScene(4, 6, 108, 144).frames()[1]


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_each_family_is_deterministic_bounded_and_changes_the_matte(family, truth):
    predictions = FAMILIES[family](3).predict_batch(truth)
    assert np.array_equal(predictions, FAMILIES[family](3).predict_batch(truth))  # same seed, same bytes
    assert predictions.dtype == np.float32 and predictions.shape == truth.shape
    assert predictions.min() >= 0.0 and predictions.max() <= 1.0
    assert not np.array_equal(predictions, FAMILIES[family](4).predict_batch(truth))
    assert np.abs(predictions - truth).mean() > 0
    assert FAMILIES["mixed"] is FlickerSimulator


def test_jitter_shifts_the_whole_matte_and_keeps_its_mass(truth):
    family = MatteJitter(0, shift_px=30.0)  # up to 3 px at 108 lines
    alpha = truth[0]
    ys, xs = np.mgrid[: alpha.shape[0], : alpha.shape[1]]
    shifts = []
    for index in range(4):
        pred = family.predict(alpha, index)
        assert pred.sum() == pytest.approx(alpha.sum(), rel=0.02)
        shifts.append(((xs * alpha).sum() / alpha.sum() - (xs * pred).sum() / pred.sum(),
                       (ys * alpha).sum() / alpha.sum() - (ys * pred).sum() / pred.sum()))
    shifts = np.array(shifts)
    assert np.abs(shifts).max() <= 3.1 and np.abs(shifts).max() > 0.3
    assert len({tuple(np.round(s, 3)) for s in shifts}) == 4  # a new shift every frame


def test_soft_noise_stays_in_the_soft_band(truth):
    alpha = truth[0]
    pred = SoftNoise(1, amplitude=0.3).predict(alpha, 0)
    outside = soft_band(alpha, 1) == 0
    assert np.array_equal(pred[outside], alpha[outside])  # opaque interior and empty background untouched
    assert np.abs(pred - alpha)[~outside].mean() > 0.02


def test_dropout_lowers_semi_transparent_alpha_only(truth):
    alpha = truth[0]
    pred = SoftDropout(2, probability=1.0).predict(alpha, 0)
    semi = (alpha > 0.01) & (alpha < 0.99)
    assert np.array_equal(pred[~semi], alpha[~semi])
    assert (pred <= alpha + 1e-7).all()
    assert ((alpha - pred) / np.maximum(alpha, 1e-6))[semi].max() >= 0.5 - 1e-6  # 50-100% of its value
    assert np.array_equal(SoftDropout(2, probability=0.0).predict(alpha, 0), alpha)


def test_boundary_flicker_erodes_and_dilates(truth):
    alpha = truth[0]
    family = BoundaryFlicker(0, radius_px=25.0)  # up to 2.5 px at 108 lines
    masses = [family.predict(alpha, index).sum() - alpha.sum() for index in range(12)]
    assert min(masses) < 0 < max(masses)
    interior = cv2_erode(alpha > 0.999, 5)
    for index in range(3):
        assert np.allclose(family.predict(alpha, index)[interior], 1.0)


def cv2_erode(mask: np.ndarray, radius: int) -> np.ndarray:
    import cv2

    return cv2.erode(mask.astype(np.uint8), np.ones((2 * radius + 1,) * 2, np.uint8)).astype(bool)


def test_gain_scales_the_whole_matte(truth):
    alpha = truth[0]
    gains = set()
    for index in range(3):
        pred = GainFlicker(5).predict(alpha, index)
        mid = (alpha > 0.1) & (alpha < 0.5)
        ratio = pred[mid] / alpha[mid]
        assert ratio.max() - ratio.min() < 1e-5
        np.testing.assert_allclose(pred, np.clip(alpha * ratio.mean(), 0, 1), atol=1e-6)
        gains.add(round(float(ratio.mean()), 6))
    assert len(gains) == 3


@pytest.mark.parametrize("backgrounds", [("walkers", "film"), (TEXTURE, "tree")])
def test_scene_alpha_is_exact_and_the_composite_is_its_parts(backgrounds):
    scene = RealScene(SceneSpec(7, backgrounds), 20, 48, 80)
    for t in (0, 6, 12, 18):
        frame = scene.render(t)
        assert frame.alpha.dtype == np.float32 and 0.0 <= frame.alpha.min() and frame.alpha.max() <= 1.0
        a = frame.alpha[..., None]
        expected = a * frame.foreground + (1 - a) * frame.background
        assert np.abs(frame.image / 255.0 - expected).max() <= 0.5 / 255 + 1e-4
    assert ((scene.render(12).alpha > 0.05) & (scene.render(12).alpha < 0.95)).any()  # soft parts exist
    images, alphas = scene.frames()
    again = RealScene(SceneSpec(7, backgrounds), 20, 48, 80).frames()
    assert np.array_equal(images, again[0]) and np.array_equal(alphas, again[1])


def test_cut_and_fast_frames_are_where_the_scene_says():
    scene = RealScene(SceneSpec(1, ("box", "walkers")), 30, 48, 64)
    images = scene.frames()[0].astype(float)
    change = np.abs(np.diff(images, axis=0)).mean(axis=(1, 2, 3))  # change[i]: frame i -> i + 1
    cut = scene.cuts[0]
    assert cut == scene.segments["after_cut"].start
    assert change[cut - 1] == change.max() and change[cut - 1] > 3 * np.median(change)
    assert scene.fast_frames.start == scene.segments["fast"].start
    assert scene.fast_frames.stop == scene.segments["enter_leave"].stop
    inside = [t for t in scene.fast_frames if t + 1 in scene.fast_frames]
    slow = [t for t in scene.segments["pan"] if t + 1 in scene.segments["pan"]]
    alphas = scene.frames()[1]
    moved = np.abs(np.diff(alphas, axis=0)).mean(axis=(1, 2))
    assert moved[inside].mean() > 2 * moved[slow].mean()


def test_scenes_render_at_tiny_and_odd_sizes():
    for height, width in ((16, 16), (17, 31)):
        images, alphas = RealScene(SceneSpec(0, ("tree", "box")), 5, height, width).frames()
        assert images.shape == (5, height, width, 3) and alphas.shape == (5, height, width)
    assert [ping_pong(t, 3) for t in range(7)] == [0, 1, 2, 1, 0, 1, 2]


def test_split_is_disjoint_and_holds_a_family_and_a_background_out():
    tuning, held_out = tuning_cases(), held_out_cases()
    assert not set(tuning) & set(held_out)
    assert {c.split for c in tuning} == {TUNING} and {c.split for c in held_out} == {HELD_OUT_SEED, HELD_OUT_FAMILY}
    assert not {c.family for c in tuning} & set(HELD_OUT_FAMILIES)
    assert {c.family for c in held_out if c.split == HELD_OUT_FAMILY} == set(HELD_OUT_FAMILIES)
    assert not {c.scene.seed for c in tuning} & {c.scene.seed for c in held_out if c.split == HELD_OUT_SEED}
    assert "film" not in {name for c in tuning for name in c.scene.backgrounds}
    assert set(REAL_CLIPS) <= {name for c in tuning + held_out for name in c.scene.backgrounds}


def test_no_truth_scores_are_zero_when_still_and_grow_with_flicker():
    frames = np.full((6, 24, 32, 3), 90, np.uint8)
    matte = np.zeros((6, 24, 32), np.float32)
    matte[:, 8:16, 10:20] = 1.0
    assert still_flicker(frames, matte) == 0.0 and departure(matte, matte) == 0.0
    noise = np.random.default_rng(0).standard_normal(matte.shape).astype(np.float32)
    scores = [still_flicker(frames, np.clip(matte + amount * noise, 0, 1)) for amount in (0.01, 0.05, 0.2)]
    assert 0 < scores[0] < scores[1] < scores[2]
    assert departure(np.clip(matte + 0.05 * noise, 0, 1), matte) > 0


def test_evaluate_scores_cases_and_off_changes_nothing():
    cases = [Case(SceneSpec(3, ("walkers", "box")), family, TUNING) for family in ("jitter", "gain")]
    clips = list(prepare(cases, (64, 48), 8))
    assert clips[0].images is clips[1].images  # one rendering per scene
    base = evaluate(lambda: make_smoother("off"), clips, (64, 48), 8)
    assert [r.case for r in base] == [c.name for c in cases] and all(r.size == "64x48" for r in base)
    assert all(r.mad_x1e3 > 0 and r.dtssd_x1e2 > 0 for r in base)
    again = evaluate(lambda: make_smoother("off"), cases, (64, 48), 8)  # rendered on the fly: same figures
    assert [r.mad_x1e3 for r in again] == [r.mad_x1e3 for r in base]
    change = mean_change(family_changes(base, base))
    assert (change.dtssd, change.mad, change.fast_mad, change.cases) == (0.0, 0.0, 0.0, 2)
    smoothed = evaluate(lambda: make_smoother("flow", window=1), clips, (64, 48), 8)
    assert all(np.isfinite([r.mad_x1e3, r.dtssd_x1e2, r.fast_mad_x1e3, r.ms_per_frame]).all() for r in smoothed)


@pytest.mark.slow
def test_network_predictions_are_cached_and_repeatable(tmp_path, monkeypatch):
    monkeypatch.setenv("BIREFNET_VIDEO_CACHE", str(tmp_path))
    images = RealScene(SceneSpec(0, (TEXTURE, TEXTURE)), 3, 48, 64).frames()[0]
    first = network_predictions(images, "test-scene")
    files = list((tmp_path / "temporal-eval").glob("*.npy"))
    assert len(files) == 1 and not list((tmp_path / "temporal-eval").glob(".*partial*"))
    assert np.array_equal(network_predictions(images, "test-scene"), first)  # from the cache
    files[0].unlink()
    assert np.array_equal(network_predictions(images, "test-scene"), first)  # computed again: same bytes
    changed = images.copy()
    changed[0, 0, 0, 0] ^= 1
    network_predictions(changed, "test-scene")  # same name, other frames: a new entry, not the stale one
    assert len(list((tmp_path / "temporal-eval").glob("*.npy"))) == 2
    assert first.shape == (3, 48, 64) and 0.0 <= first.min() and first.max() <= 1.0


def test_benchmark_refuses_bad_arguments_in_one_line(capsys):
    assert benchmark_main(["--sizes", "wide"]) == 2
    assert benchmark_main(["--modes", "median"]) == 2
    assert benchmark_main(["--modes", "flow:strength"]) == 2
    errors = capsys.readouterr().err.strip().splitlines()
    assert len(errors) == 3 and all(line.startswith("error: ") for line in errors)


def test_affine_floor_is_zero_for_a_matte_that_moves_by_whole_pixels_and_positive_under_resampling():
    """A translation by whole pixels is followed exactly; a sub-pixel rotation redrawn each frame is not."""
    import cv2

    from pipeline.evaluation.floor import affine_floor, self_error
    from pipeline.temporal.smoother import make_smoother

    disc = np.zeros((64, 64), np.float32)
    cv2.circle(disc, (24, 32), 12, 1.0, -1)
    shifted = np.stack([np.roll(disc, t, axis=1) for t in range(4)])
    assert affine_floor(shifted, []) < 1e-4
    square = np.zeros((64, 64), np.float32)
    square[20:44, 20:44] = 1.0
    turned = np.stack([cv2.warpAffine(square, cv2.getRotationMatrix2D((31.5, 31.5), 0.7 * t, 1.0), (64, 64))
                       for t in range(4)])
    assert affine_floor(turned, []) > affine_floor(shifted, [])
    still = np.repeat(disc[None], 4, axis=0)
    images = np.repeat((still[..., None] * 200).astype(np.uint8), 3, axis=3)
    assert self_error(lambda: make_smoother("off"), images, still) == 0.0


def test_gate_fit_learns_from_tuning_cases_and_repeats_itself():
    """A fit on a small tuning case lowers the blend's error below both fixed choices (all new, all
    carried) on its own records, and the same seed gives the same weights."""
    from pipeline.evaluation.gate_fit import Records, fit, replay
    from pipeline.temporal.config import SmootherConfig

    cases = [Case(SceneSpec(3, ("walkers", "box")), family, TUNING) for family in ("gain", "soft_noise")]
    clips = list(prepare(cases, (160, 96), 10))
    records = Records.join([replay(clip, SmootherConfig(), None, torch.Generator().manual_seed(0)) for clip in clips])
    assert len(records.truth) > 1000

    def error(weight: torch.Tensor) -> float:
        return float((records.alpha + weight * records.difference - records.truth).square().mean())

    gate = fit(records, seed=0, steps=150, batch=4096)
    learned = gate(records.features.T)
    assert error(learned) < 0.95 * min(error(torch.zeros(1)), error(torch.ones(1)))
    again = fit(records, seed=0, steps=150, batch=4096)
    assert all(torch.equal(a, b) for a, b in zip(gate.state_dict().values(), again.state_dict().values(), strict=True))


def test_selection_ceiling_never_worse_with_more_frames_and_exact_on_exact_predictions():
    """At full size each pixel's error can only fall as frames join the candidates (reach 2 over 1, look-ahead
    over causal), and never exceeds the per-frame error; exact predictions give the truth back; the
    thumbnail version keeps the frame count and the [0, 1] range."""
    from dataclasses import replace

    from benchmarks.temporal_ceiling import clip_motion, selection_ceiling

    clip = next(prepare([Case(SceneSpec(3, ("walkers", "box")), "gain", TUNING)], (64, 48), 8))
    motion = clip_motion(clip)
    error = {}
    for reach, look_ahead in ((1, False), (2, False), (2, True)):
        result = selection_ceiling(clip, motion, reach, look_ahead, full_size=True)
        error[reach, look_ahead] = np.abs(result - clip.truth)
    per_frame = np.abs(clip.predictions - clip.truth)
    tolerance = 1e-6
    assert (error[1, False] <= per_frame + tolerance).all()
    assert (error[2, False] <= error[1, False] + tolerance).all()
    assert (error[2, True] <= error[2, False] + tolerance).all()
    assert error[2, True].mean() < per_frame.mean()  # gain flicker: some neighbour is nearer the truth
    assert np.array_equal(error[2, False][0], per_frame[0])  # the first frame has no past ...
    assert error[2, True][0].mean() < per_frame[0].mean()  # ... but a future
    exact = replace(clip, predictions=clip.truth.copy())
    assert np.abs(selection_ceiling(exact, clip_motion(exact), 2, True, full_size=True) - clip.truth).max() < 1e-6
    thumbnails = selection_ceiling(clip, motion, 2, True, full_size=False)
    assert thumbnails.shape == clip.truth.shape and 0.0 <= thumbnails.min() and thumbnails.max() <= 1.0
