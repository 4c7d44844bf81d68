"""Temporal smoothing: count and order kept, scene cuts reset, bounded state, flicker reduced.

The behaviour tests run on both implementations (the ``kernels`` fixture): OpenCV and compiled passes,
which CPU tensors take, and torch's ops, which a GPU's tensors take, here on CPU tensors (``torch_kernels``).
"""

from contextlib import nullcontext
from pathlib import Path

import numpy as np
import pytest
import torch

from birefnet.train.scenes import SyntheticScene
from pipeline.metrics import evaluate_clip
from pipeline.synthetic import FlickerSimulator
from pipeline.temporal.denormals import denormals_flushed, flushing_denormals_now
from pipeline.temporal.flow import lucas_kanade_flow, warp
from pipeline.temporal.kernels import torch_kernels
from pipeline.temporal.smoother import make_smoother

SMOOTHING = [("ema", 0), ("flow", 0), ("ema", 3), ("flow", 2)]


@pytest.fixture(params=["opencv", "torch"])
def kernels(request):
    with torch_kernels() if request.param == "torch" else nullcontext():
        yield request.param


def run(smoother, frames, alphas, batch_sizes):
    """Feed the clip in the given batch sizes (cycled), then flush; returns the concatenated output."""
    outputs, start, i = [], 0, 0
    while start < len(frames):
        size = batch_sizes[i % len(batch_sizes)]
        out = smoother.smooth(frames[start : start + size], alphas[start : start + size])
        assert out.shape[1:] == alphas.shape[1:]
        outputs.append(out)
        start, i = start + size, i + 1
    rest = smoother.flush()
    if rest is not None:
        outputs.append(rest)
    return np.concatenate(outputs)


def solid_cuts(n, size=(24, 32)):
    """Every frame a different solid colour, i.e. every frame starts a new shot."""
    colours = np.random.default_rng(0).integers(0, 256, (n, 3))
    frames = np.broadcast_to(colours[:, None, None, :], (n, *size, 3)).astype(np.uint8)
    alphas = np.random.default_rng(1).random((n, *size)).astype(np.float32)
    return np.ascontiguousarray(frames), alphas


@pytest.mark.parametrize("mode,window", SMOOTHING + [("off", 0)])
@pytest.mark.usefixtures("kernels")
def test_count_and_order_are_preserved(mode, window):
    frames, alphas = solid_cuts(11)
    smoother = make_smoother(mode, window=window) if mode != "off" else make_smoother("off")
    out = run(smoother, frames, alphas, [1, 3, 2, 5])
    # Every frame is a cut, so nothing may be blended: the output is the input, in order.
    assert out.shape == alphas.shape
    assert np.array_equal(out, alphas)


@pytest.mark.parametrize("mode,window", SMOOTHING)
@pytest.mark.usefixtures("kernels")
def test_scene_cut_resets_the_state(mode, window):
    n = 12
    frames = np.zeros((n, 32, 48, 3), np.uint8)
    frames[:6] = (200, 40, 40)  # shot one: still red frames
    frames[6:] = (30, 60, 220)  # shot two: still blue frames
    alphas = np.ones((n, 32, 48), np.float32)
    alphas[6:] = 0.0
    out = run(make_smoother(mode, window=window), frames, alphas, [4])
    assert np.array_equal(out[6:], alphas[6:])  # never blended with the previous shot
    assert np.array_equal(out[:6], alphas[:6])  # nor the previous shot with the next (look-ahead)


@pytest.mark.parametrize("mode,window", SMOOTHING)
@pytest.mark.usefixtures("kernels")
def test_state_is_bounded_and_reset_forgets(mode, window):
    frames, alphas = SyntheticScene(0, 30, 32, 48).frames()
    smoother = make_smoother(mode, window=window)

    def held_elements():
        stream = smoother._stream
        tensors = [stream.state] + [t for e in stream.pending for t in (e.alpha, e.frame, e.causal)]
        return sum(t.numel() for t in tensors if t is not None), len(stream.pending)

    smoother.smooth(frames[:10], alphas[:10])
    early = held_elements()
    smoother.smooth(frames[10:30], alphas[10:30])
    assert held_elements() == early
    assert early[1] == window
    smoother.reset()
    first = smoother.smooth(frames[:1], alphas[:1])
    assert len(first) == (1 if window == 0 else 0)
    fresh = make_smoother(mode, window=window)  # after reset, the smoother is as a new one: the past is gone
    expected = fresh.smooth(frames[:1], alphas[:1])
    assert np.array_equal(smoother.flush() if window else first, fresh.flush() if window else expected)


@pytest.mark.parametrize("height,width", [(563, 1001), pytest.param(4320, 7680, marks=pytest.mark.slow)])
@pytest.mark.usefixtures("kernels")
def test_large_and_uneven_frames_are_smoothed_on_their_thumbnails(height, width):
    """Frames larger than the thumbnails (uneven: partial cells at the edges; 8K): a steady matte comes
    back exactly, and a still matte blinking as a whole is steadied everywhere, edges included."""
    frames = np.full((4, height, width, 3), 90, np.uint8)
    steady = np.full((4, height, width), 0.25, np.float32)
    assert np.array_equal(run(make_smoother("flow"), frames, steady, [2]), steady)
    blinking = (0.5 + 0.05 * (-1.0) ** np.arange(4))[:, None, None] * np.ones((1, height, width), np.float32)
    out = run(make_smoother("flow"), frames, blinking.astype(np.float32), [4])
    change = np.abs(np.diff(out, axis=0))
    assert change.max() < 0.5 * np.abs(np.diff(blinking, axis=0)).min()
    assert 0.0 <= out.min() and out.max() <= 1.0


@pytest.mark.parametrize("mode", ["ema", "flow"])
@pytest.mark.usefixtures("kernels")
def test_still_noisy_matte_is_steadied(mode):
    frames = np.full((20, 32, 48, 3), 120, np.uint8)
    noise = 0.1 * np.random.default_rng(0).standard_normal((20, 32, 48))
    alphas = np.clip(0.5 + noise, 0, 1).astype(np.float32)
    out = run(make_smoother(mode), frames, alphas, [5])
    assert out[5:].std(axis=0).mean() < 0.5 * alphas[5:].std(axis=0).mean()


def test_synthetic_flicker_is_reduced_without_ghosting():
    scene = SyntheticScene(0, 24, 96, 160)
    frames, truth = scene.frames()
    predictions = FlickerSimulator(0).predict_batch(truth, 0)
    base = evaluate_clip(predictions, truth)
    smoothed = evaluate_clip(run(make_smoother("flow"), frames, predictions, [8]), truth)
    assert smoothed.dtssd_x1e2 < 0.8 * base.dtssd_x1e2
    assert smoothed.mad_x1e3 < 1.1 * base.mad_x1e3
    with torch_kernels():  # the GPU path's Lucas-Kanade flow: a little behind DIS on frames this small
        on_torch = evaluate_clip(run(make_smoother("flow"), frames, predictions, [8]), truth)
    assert on_torch.dtssd_x1e2 < 0.85 * base.dtssd_x1e2
    assert on_torch.mad_x1e3 < 1.0 * base.mad_x1e3


@pytest.mark.usefixtures("kernels")
def test_containers_and_dtypes_are_kept():
    frames, truth = SyntheticScene(1, 4, 32, 48).frames()
    for alphas in (truth, truth.astype(np.float64), (truth * 255).round().astype(np.uint8)):
        out = make_smoother("ema").smooth(frames, alphas)
        assert out.dtype == alphas.dtype and out.shape == alphas.shape
    out = make_smoother("flow", flow_backend="torch").smooth(torch.from_numpy(frames), torch.from_numpy(truth))
    assert isinstance(out, torch.Tensor) and out.dtype == torch.float32 and out.shape == truth.shape


@pytest.mark.parametrize("dtype", [torch.uint8, torch.float32])
def test_strided_torch_inputs_smooth_as_contiguous_ones_do(dtype):
    """Tensors that are views with other strides (here transposes) go through OpenCV on the CPU, which reads
    memory as it lies: they must give what their contiguous copies give."""
    frames, truth = SyntheticScene(2, 12, 48, 64).frames()
    predictions = FlickerSimulator(0).predict_batch(truth, 0)
    alphas = torch.from_numpy(predictions if dtype == torch.float32 else np.round(predictions * 255).astype(np.uint8))
    strided_frames = torch.from_numpy(np.ascontiguousarray(frames.transpose(0, 2, 1, 3))).transpose(1, 2)
    strided_alphas = alphas.transpose(1, 2).contiguous().transpose(1, 2)
    assert not strided_frames.is_contiguous() and not strided_alphas.is_contiguous()
    expected = make_smoother("flow").smooth(torch.from_numpy(frames), alphas)
    got = make_smoother("flow").smooth(strided_frames, strided_alphas)
    assert torch.equal(got, expected) and not torch.equal(expected, alphas)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32, "torch"])
@pytest.mark.parametrize("window", [0, 2])
def test_writing_over_the_input_gives_what_a_new_output_does(dtype, window, kernels):
    """``overwrite_input`` (how the pipeline and the webcam call the smoother) writes the result over the
    alphas it is given where it can (causal mode, OpenCV path): every frame must come out as it does into
    a new array, though frames are written over while later ones of the batch are still to be smoothed.
    Without it, and for read-only arrays, the input is left as it was."""
    frames, truth = SyntheticScene(4, 10, 96, 160).frames()
    predictions = FlickerSimulator(0).predict_batch(truth, 0)
    if dtype in (np.uint8, np.uint16):
        predictions = np.round(predictions * np.iinfo(dtype).max).astype(dtype)

    def smoothed(overwrite, read_only=False):
        smoother, outputs, inputs = make_smoother("flow", window=window), [], []
        for start, stop in ((0, 4), (4, 7), (7, 10)):
            alphas = predictions[start:stop].copy()
            alphas.flags.writeable = not read_only
            inputs.append(alphas)
            given = torch.from_numpy(alphas) if dtype == "torch" else alphas
            outputs.append(np.asarray(smoother.smooth(frames[start:stop], given, overwrite_input=overwrite)))
        rest = smoother.flush()
        return np.concatenate(outputs + ([] if rest is None else [np.asarray(rest)])), np.concatenate(inputs)

    expected, untouched = smoothed(False)
    assert not np.array_equal(expected, predictions) and np.array_equal(untouched, predictions)
    got, written = smoothed(True)
    assert np.array_equal(got, expected)
    assert np.array_equal(written, expected if window == 0 and kernels == "opencv" else predictions)
    if dtype != "torch":
        got, read_only = smoothed(True, read_only=True)
        assert np.array_equal(got, expected) and np.array_equal(read_only, predictions)
    else:  # a Predictor's tensors, which torch will not let anyone write over outside inference mode
        with torch.inference_mode():
            inference = torch.from_numpy(predictions[:4].copy()).clone()
        got = make_smoother("flow", window=window).smooth(frames[:4], inference, overwrite_input=True).numpy()
        assert np.array_equal(got, expected[: len(got)]) and np.array_equal(inference.numpy(), predictions[:4])


@pytest.mark.parametrize("dtype,peak", [(np.uint8, 255), (np.uint16, 65535)])
@pytest.mark.parametrize("mode,window", [("flow", 0), ("flow", 2), ("ema", 0)])
@pytest.mark.usefixtures("kernels")
def test_integer_alphas_smooth_as_their_float_values_do(dtype, peak, mode, window):
    """8/16-bit alphas (what the pipeline hands over) take OpenCV's integer path on the CPU; it must give
    the float path's result to within rounding, sure pixels exactly."""
    frames, truth = SyntheticScene(3, 12, 96, 160).frames()
    predictions = FlickerSimulator(0).predict_batch(truth, 0)
    quantised = np.round(predictions * peak).astype(dtype)
    as_float = run(make_smoother(mode, window=window), frames, quantised.astype(np.float32) / peak, [5, 7])
    as_integers = run(make_smoother(mode, window=window), frames, quantised, [5, 7])
    assert as_integers.dtype == dtype
    difference = np.abs(as_integers.astype(np.float64) - np.round(as_float * peak))
    assert difference.max() <= 1 and (difference > 0).mean() < 0.01
    assert np.abs(as_integers.astype(np.float64) - quantised).max() > 0.05 * peak  # it did smooth
    sure = (quantised == 0) | (quantised == peak)
    assert np.array_equal(as_integers[sure], quantised[sure])


@pytest.mark.parametrize("dtype,peak", [(np.uint8, 255), (np.uint16, 65535), (np.float32, None)])
@pytest.mark.parametrize("full_size", [(96, 160), (97, 161)])  # whole cells per thumbnail cell, and not
def test_correction_over_its_window_equals_the_whole_frame(dtype, peak, full_size):
    """The CPU path adds the upsampled correction only over the window it can change; every pixel must
    come out as adding it over the whole frame would (OpenCV's bilinear resize; for integers its rounding
    sum, for floats the sum clipped to [0, 1]), on the soft pixels only."""
    import cv2

    from pipeline.temporal.analysis import FrameContext
    from pipeline.temporal.carry import with_correction

    rng = np.random.default_rng(7)
    height, width = full_size
    top = 1.0 if peak is None else peak
    plane = (rng.random(full_size) * top if peak is None else rng.integers(0, peak + 1, full_size)).astype(dtype)
    plane[rng.random(full_size) < 0.3] = 0
    plane[rng.random(full_size) < 0.3] = top
    thumbnail = torch.from_numpy(rng.random((1, 1, 24, 40), dtype=np.float32))
    correction = np.zeros((24, 40), np.float32)
    correction[9:14, 20:31] = rng.normal(0, 0.05, (5, 11))
    correction[2, 3] = 0.4 / top  # under half a quantum: moves no integer, but floats (the window holds it)
    smoothed = thumbnail + torch.from_numpy(correction)[None, None]
    context = FrameContext(torch.zeros_like(thumbnail), thumbnail, torch.zeros(48), full_size,
                           torch.zeros(1, 3, 24, 40))
    result = with_correction(torch.from_numpy(plane)[None, None], smoothed, context)[0, 0].numpy()

    change = cv2.resize((smoothed - thumbnail)[0, 0].numpy() * np.float32(top), (width, height),
                        interpolation=cv2.INTER_LINEAR)
    expected = plane.copy()
    if peak is None:
        soft = cv2.inRange(plane, 1.0 / 255, 1.0 - 1.0 / 255)
        summed = np.clip(plane + change, 0.0, 1.0)
    else:
        soft = cv2.inRange(plane, -(-peak // 255), peak * 254 // 255)
        summed = cv2.addWeighted(plane, 1.0, change, 1.0, 0.0, dtype=cv2.CV_8U if peak == 255 else cv2.CV_16U)
    cv2.copyTo(summed, soft, expected)
    assert (expected != plane).sum() > 100  # the correction does change the frame
    np.testing.assert_array_equal(result, expected)


@pytest.mark.parametrize("hidden", [None, 4])  # the shipped gate, and a gate of another width
def test_the_cpu_paths_compiled_passes_compute_what_the_torch_ops_do(hidden):
    """On the CPU the flow model's confidence maps and the learned blend are compiled passes
    (``pipeline.temporal.fused``); they must agree with the torch ops (the GPU path) to float rounding, and
    every pixel the blend skips (state equal to the new alpha, or the ghost and fill gates shut) must come
    out exactly the new alpha. The 3x3 means differ at the border only: OpenCV's replicate it, torch's
    average the pixels inside."""
    from pipeline.temporal.analysis import frame_contexts
    from pipeline.temporal.carry import blend, carried, envelope, hand_gates
    from pipeline.temporal.confidence import Transition, flow_confidence
    from pipeline.temporal.config import SmootherConfig
    from pipeline.temporal.flow import FlowEstimator
    from pipeline.temporal.gate import WEIGHTS_FILE, LearnedGate

    frames, truth = SyntheticScene(3, 2, 96, 160).frames()
    rng = np.random.default_rng(5)
    alphas = np.clip(truth + rng.normal(0, 0.08, truth.shape) * ((truth > 0) & (truth < 1)), 0, 1).astype(np.float32)
    source, target = frame_contexts(torch.from_numpy(frames), torch.from_numpy(alphas), 480)
    config = SmootherConfig()
    flow = FlowEstimator("dis")(target.luma * target.alpha, source.luma * source.alpha)
    warped_luma, warped_alpha = warp(torch.cat((source.luma, source.alpha), dim=1), flow).split(1, dim=1)
    compiled = flow_confidence(source, target, flow, warped_luma, warped_alpha, config)
    with torch_kernels():
        ops = flow_confidence(source, target, flow, warped_luma, warped_alpha, config)
    for ours, theirs in zip(compiled, ops, strict=True):
        np.testing.assert_allclose(ours[..., 2:-2, 2:-2], theirs[..., 2:-2, 2:-2], rtol=0, atol=2e-6)
    assert float(compiled[0].std()) > 0.05  # the maps are not trivially constant

    gate = LearnedGate.load(WEIGHTS_FILE) if hidden is None else LearnedGate(hidden).requires_grad_(False)
    transition = Transition(compiled[0], flow, compiled[1], compiled[2])
    state = carried(source.alpha, transition)
    state[..., :, :40] = target.alpha[..., :, :40]  # a region with nothing to blend
    fast = blend(state, target, transition, config, gate)
    with torch_kernels():
        slow = blend(state, target, transition, config, gate)
    np.testing.assert_allclose(fast, slow, rtol=0, atol=1e-6)
    peak, trough = envelope(target, config)
    skipped = (state == target.alpha) | (hand_gates(state.clone(), peak, trough, config) == 0)
    assert int((~skipped).sum()) > 1000 and int(skipped.sum()) > 1000
    assert torch.equal(fast[skipped], target.alpha[skipped])
    assert float((fast - target.alpha).abs().max()) > 0.01  # the gate did lean on the state somewhere


def test_flow_leans_on_the_shipped_learned_gate_and_ema_on_the_hand_built_ones():
    from pipeline.temporal.gate import FEATURES, WEIGHTS_FILE, LearnedGate

    gate = LearnedGate.load(WEIGHTS_FILE)  # strict: every weight present, of the right shape
    weights = gate(torch.linspace(0, 1, len(FEATURES) * 6).reshape(len(FEATURES), 6))
    assert weights.shape == (6,) and bool(((weights >= 0) & (weights <= 1)).all())
    assert make_smoother("flow").gate is not None and make_smoother("ema").gate is None
    assert make_smoother("flow", gate="hand").gate is None
    with pytest.raises(ValueError, match="gate"):
        make_smoother("flow", gate="median")
    with pytest.raises(ValueError, match="cannot be loaded: no weight 'hidden.weight'"):
        make_smoother("flow", gate=str(Path(__file__).parents[1] / "birefnet" / "bundled" / "demo.safetensors"))


def test_a_refitted_gate_file_is_used_and_a_broken_one_refused_in_one_line(tmp_path):
    from pipeline.temporal.gate import LearnedGate

    gate = LearnedGate()
    torch.nn.init.constant_(gate.output.bias, -20.0)  # a gate that never leans on the past
    torch.nn.init.zeros_(gate.output.weight)
    gate.save(tmp_path / "closed.safetensors")
    frames = np.full((6, 32, 48, 3), 120, np.uint8)
    alphas = np.clip(0.5 + 0.1 * np.random.default_rng(1).standard_normal((6, 32, 48)), 0, 1).astype(np.float32)
    closed = run(make_smoother("flow", gate=str(tmp_path / "closed.safetensors")), frames, alphas, [6])
    assert np.abs(closed - alphas).max() < 1e-6  # the file's gate, not the shipped one, decided
    assert np.abs(run(make_smoother("flow"), frames, alphas, [6]) - alphas).max() > 0.01
    (tmp_path / "broken.safetensors").write_bytes(b"not weights")
    with pytest.raises(ValueError, match="broken.safetensors cannot be loaded"):
        make_smoother("flow", gate=str(tmp_path / "broken.safetensors"))


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError):
        make_smoother("median")
    with pytest.raises(ValueError):
        make_smoother("ema", window=-1)
    with pytest.raises(ValueError):
        make_smoother("flow").smooth(np.zeros((2, 8, 8, 3), np.uint8), np.zeros((3, 8, 8), np.float32))


def test_torch_flow_recovers_a_translation_and_warp_undoes_it():
    g = torch.Generator().manual_seed(0)
    texture = torch.nn.functional.avg_pool2d(torch.rand(1, 1, 80, 112, generator=g) * 255, 5, stride=1)
    previous = texture[..., 10:60, 10:90]
    current = texture[..., 10:60, 8:88]  # current(x) = previous(x - 2)
    flow = lucas_kanade_flow(current, previous)
    inner = (..., slice(8, -8), slice(8, -8))
    assert flow[:, 0][inner].mean().item() == pytest.approx(-2.0, abs=0.2)
    assert abs(flow[:, 1][inner].mean().item()) < 0.2
    assert (warp(previous, flow) - current)[inner].abs().mean() < 0.4 * (previous - current)[inner].abs().mean()


def test_cpu_warp_samples_where_the_flow_points_with_borders_replicated():
    """The CPU path (OpenCV remap) against bilinear sampling written out here, at sub-pixel offsets and
    past the border."""
    g = torch.Generator().manual_seed(1)
    image = torch.rand(2, 3, 9, 13, generator=g)
    flow = torch.randn(2, 2, 9, 13, generator=g) * 3
    ys, xs = torch.meshgrid(torch.arange(9.0), torch.arange(13.0), indexing="ij")
    x = (xs + flow[:, 0]).clamp(0, 12)
    y = (ys + flow[:, 1]).clamp(0, 8)
    x0, y0 = x.floor().long().clamp(max=11), y.floor().long().clamp(max=7)
    fx, fy = (x - x0)[:, None], (y - y0)[:, None]

    def at(yy: torch.Tensor, xx: torch.Tensor) -> torch.Tensor:
        return torch.stack([image[n][:, yy[n], xx[n]] for n in range(2)])

    expected = ((1 - fy) * ((1 - fx) * at(y0, x0) + fx * at(y0, x0 + 1))
                + fy * ((1 - fx) * at(y0 + 1, x0) + fx * at(y0 + 1, x0 + 1)))
    assert (warp(image, flow) - expected).abs().max() < 1e-4


@pytest.mark.parametrize("mode", ["ema", "flow"])
@pytest.mark.usefixtures("kernels")
def test_a_faint_strand_that_moves_away_leaves_no_ghost(mode):
    """A one-pixel strand over a veil (soft everywhere, so smoothing may change any pixel), too faint and
    thin for the luma thumbnails to show it moving, jumps 40 px: the ghost gate must clear most of its
    old place at once. (The smoother's change to a frame is a thumbnail's, spread over a cell: without
    the gate the ghost is about a third of the strand's excess over the veil.)"""
    alphas = np.full((6, 270, 960), 0.3, np.float32)
    alphas[:5, :, 301] = 0.8
    alphas[5, :, 341] = 0.8
    frames = np.repeat((100 + 12 * alphas[..., None]).astype(np.uint8), 3, axis=-1)
    gated = run(make_smoother(mode), frames, alphas, [6])
    ungated = run(make_smoother(mode, ghost_scale=1e6), frames, alphas, [6])
    assert gated[4, :, 301].mean() > 0.75  # steady while it stays
    ghost, ungated_ghost = gated[5, :, 301].max() - 0.3, ungated[5, :, 301].max() - 0.3
    assert ungated_ghost > 0.1  # without the gate a ghost stays behind
    assert ghost < 0.4 * ungated_ghost


@pytest.mark.parametrize("mode", ["flow", "ema"])
@pytest.mark.usefixtures("kernels")
def test_a_drop_out_is_not_carried_into_the_frames_after_it(mode):
    """A veil that drops out for one frame (the image does not change) is back whole in the next: the past,
    which holds the drop-out, stands below everything the new alpha holds there, and the gate lets the new
    alpha through. (Before that gate the frame after the drop-out came back at 0.41-0.44, and the next ones
    stayed below 0.46.)"""
    alphas = np.zeros((8, 270, 480), np.float32)
    alphas[:, 60:200, 100:380] = 0.5
    alphas[4, 60:200, 100:380] = 0.1
    frames = np.full((8, 270, 480, 3), 110, np.uint8)
    frames[:, 60:200, 100:380] = 160
    out = run(make_smoother(mode), frames, alphas, [8])
    inner = (slice(80, 180), slice(120, 360))
    assert np.abs(out[5][inner] - 0.5).max() < 0.02
    ungated = run(make_smoother(mode, gate="hand", ghost_scale=1e6), frames, alphas, [8])
    assert ungated[5:, 80:180, 120:360].mean() < 0.46  # the hand-built confidence without the gates lags


@pytest.mark.usefixtures("kernels")
def test_look_ahead_fills_a_one_frame_drop_out_that_causal_smoothing_must_follow():
    """Looking one way a drop-out is a part leaving; with the frames after it in view, the frame that departs
    from both its past and its future is the odd one out, and the median of the three fills it."""
    alphas = np.zeros((10, 270, 480), np.float32)
    alphas[:, 60:200, 100:380] = 0.5
    alphas[4, 60:200, 100:380] = 0.1
    frames = np.full((10, 270, 480, 3), 110, np.uint8)
    frames[:, 60:200, 100:380] = 160
    inner = (4, slice(80, 180), slice(120, 360))
    causal = run(make_smoother("flow"), frames, alphas, [10])
    ahead = run(make_smoother("flow", window=2), frames, alphas, [10])
    assert causal[inner].mean() < 0.15  # causal: indistinguishable from the veil leaving
    assert np.abs(ahead[inner] - 0.5).max() < 0.1
    assert np.abs(ahead[5:, 80:180, 120:360] - 0.5).max() < 0.02  # and nothing lags after it


@pytest.mark.usefixtures("kernels")
def test_smoothing_changes_only_the_frames_soft_pixels():
    """Where a frame's alpha is 0 or 1 (to 8 bits) the smoother keeps it, even beside an edge whose
    soft side it does change."""
    frames = np.full((6, 270, 960, 3), 120, np.uint8)
    rng = np.random.default_rng(0)
    alphas = np.zeros((6, 270, 960), np.float32)
    alphas[:, :, 400:] = 1.0
    alphas[:, :, 396:400] = 0.5 + 0.1 * rng.standard_normal((6, 1, 1))  # a soft edge that flickers
    out = run(make_smoother("flow"), frames, alphas, [6])
    sure = (alphas < 1 / 255) | (alphas > 1 - 1 / 255)
    assert np.array_equal(out[sure], alphas[sure])
    edge = (slice(None), slice(None), slice(396, 400))
    assert np.abs(np.diff(out[edge], axis=0)).mean() < 0.6 * np.abs(np.diff(alphas[edge], axis=0)).mean()


def test_smoothing_flushes_subnormals_only_while_it_runs():
    """The smoother's arithmetic flushes subnormal floats (a decaying state would slow ~100x), and the
    thread's own setting is the same after each call as before it."""
    frames, alphas = SyntheticScene(2, 4, 32, 48).frames()
    smoother = make_smoother("flow", window=1)
    assert not flushing_denormals_now()
    smoother.smooth(frames, alphas)
    smoother.flush()
    assert not flushing_denormals_now()
    with denormals_flushed():
        smoother.smooth(frames, alphas)
        assert flushing_denormals_now()
    assert not flushing_denormals_now()
    tiny = np.full((1, 32, 48), np.finfo(np.float32).tiny, np.float32)
    smoother = make_smoother("ema", strength=0.5)
    smoother.smooth(frames[:1], tiny)
    out = smoother.smooth(frames[:1], np.zeros_like(tiny))  # half the smallest normal: flushed to zero
    assert np.array_equal(out, np.zeros_like(tiny))


def test_frames_must_be_8_bit():
    frames, alphas = SyntheticScene(1, 2, 32, 48).frames()
    with pytest.raises(ValueError, match="uint8"):
        make_smoother("ema").smooth(frames.astype(np.uint16) * 257, alphas)


def _jittered_disc(frames_count=8, height=270, width=960, shift=0.5):
    """A soft-edged disc composited over a two-colour background with its exact alpha, and per-frame
    alphas that are the truth moved by +-``shift`` px in turn (the image does not move). At 960 px wide the
    thumbnail cells are 2x2 pixels."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)

    def disc(dx):
        return np.clip(80.0 - np.hypot(xx - 480 - dx, yy - 135), 0.0, 1.0).astype(np.float32)

    truth = disc(0.0)
    background = np.where(xx[..., None] < 450, (30, 90, 160), (150, 60, 40)).astype(np.float32)
    image = (truth[..., None] * np.float32((230, 210, 60)) + (1 - truth[..., None]) * background).round()
    frames = np.repeat(image.astype(np.uint8)[None], frames_count, axis=0)
    alphas = np.stack([disc(shift if i % 2 else -shift) for i in range(frames_count)])
    return frames, alphas, truth


@pytest.mark.usefixtures("kernels")
def test_a_matte_jittering_against_a_still_image_is_held_on_the_images_edge():
    """The per-frame edge hops by a pixel from frame to frame; the thumbnail state cannot hold it still
    within a cell, the rebuild along the image's own edges does (and lands nearer the true edge)."""
    frames, alphas, truth = _jittered_disc()
    guided = run(make_smoother("flow"), frames, alphas, [3])
    cells = run(make_smoother("flow", edges="cells"), frames, alphas, [3])

    def flicker(out):
        return np.abs(np.diff(out[2:], axis=0)).mean()

    assert flicker(guided) < 0.5 * flicker(cells)  # measured 0.40x
    assert np.abs(guided[2:] - truth).mean() < 0.6 * np.abs(cells[2:] - truth).mean()  # measured 0.40x
    sure = (alphas == 0) | (alphas == 1)
    assert np.array_equal(guided[sure], alphas[sure])  # sure pixels are the frame's own


def test_the_rebuild_on_the_cpu_computes_what_the_torch_path_does():
    """OpenCV's windowed rebuild against the torch ops (the GPU path) on the whole frame, float alphas. They
    agree to float rounding but where a window's colours barely vary, whose fit divides by that variance:
    measured 3.4e-3 at one pixel of the disc's edge, 7e-7 on average."""
    from pipeline.temporal.analysis import frame_contexts
    from pipeline.temporal.edges import along_edges

    frames, alphas, _ = _jittered_disc(2)
    context = frame_contexts(torch.from_numpy(frames), torch.from_numpy(alphas), 480)[1]
    smoothed = context.alpha + 0.05 * torch.rand(context.alpha.shape, generator=torch.Generator().manual_seed(0))
    opencv = along_edges(torch.from_numpy(alphas[1].copy())[None, None], smoothed, context, torch.from_numpy(frames[1]))
    with torch_kernels():
        torch_path = along_edges(torch.from_numpy(alphas[1].copy())[None, None], smoothed, context,
                                 torch.from_numpy(frames[1]))
    assert (opencv[0, 0] - torch.from_numpy(alphas[1])).abs().max() > 0.05  # it rebuilt something
    difference = (opencv - torch_path).abs()
    assert difference.max() < 1e-2 and difference.mean() < 1e-5
