"""Predictor: frames in, alpha out, at the frames' own size, batched, in the requested dtype."""

import numpy as np
import pytest
import torch

from birefnet import ConfigError, InputError, Predictor
from birefnet.predictor import dynamic_size, parse_resolution


@pytest.fixture(scope="module")
def predictor(checkpoint):
    return Predictor(checkpoint, device="cpu", resolution=64)


@pytest.fixture(scope="module")
def frames():
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, size=(3, 50, 70, 3), dtype=np.uint8)


def test_float_alpha_at_frame_size(predictor, frames):
    alpha = predictor.predict(frames)
    assert isinstance(alpha, np.ndarray) and alpha.dtype == np.float32
    assert alpha.shape == (3, 50, 70)
    assert alpha.min() >= 0.0 and alpha.max() <= 1.0


def test_integer_outputs_are_rounded_float(predictor, frames):
    alpha = predictor.predict(frames)
    a8 = predictor.predict(frames, dtype="uint8")
    a16 = predictor.predict(frames, dtype="uint16")
    assert a8.dtype == np.uint8 and a16.dtype == np.uint16
    assert np.array_equal(a8, np.round(alpha * 255).astype(np.uint8))
    assert np.abs(a16.astype(np.float64) / 65535 - alpha).max() <= 0.5 / 65535 + 1e-7


def test_torch_in_torch_out(predictor, frames):
    alpha = predictor.predict(torch.from_numpy(frames))
    assert isinstance(alpha, torch.Tensor) and alpha.device == predictor.device
    assert np.allclose(alpha.numpy(), predictor.predict(frames), atol=1e-6)


def test_batch_equals_frame_by_frame(predictor, frames):
    batched = predictor.predict(frames)
    for i in range(len(frames)):
        assert np.allclose(batched[i], predictor.predict(frames[i]), atol=1e-5)


def test_mixed_sizes_are_a_clear_error(predictor, frames):
    with pytest.raises(InputError, match="mixes frame sizes"):
        predictor.predict([frames[0], frames[0, :40]])


def test_wrong_dtype_or_shape(predictor, frames):
    with pytest.raises(InputError, match=r"uint8 RGB of shape \(N, H, W, 3\)"):
        predictor.predict(frames.astype(np.float32))
    with pytest.raises(InputError):
        predictor.predict(frames[..., :2])


def test_resolution_forms():
    assert parse_resolution(None, (1024, 1024)) == (1024, 1024)
    assert parse_resolution(2048, (1024, 1024)) == (2048, 2048)
    assert parse_resolution("2560x1440", (1024, 1024)) == (2560, 1440)
    assert parse_resolution("dynamic", (1024, 1024)) == "dynamic"
    for bad in ("1000", "abc", "64x50", 0):
        with pytest.raises(ConfigError):
            parse_resolution(bad, (1024, 1024))


def test_dynamic_follows_aspect_ratio(checkpoint, frames):
    assert dynamic_size(1080, 1920, 1024) == (1376, 768)
    predictor = Predictor(checkpoint, device="cpu", resolution="dynamic")
    predictor.dynamic_base = 64
    assert predictor.working_size(50, 70) == (64, 64)
    assert predictor.working_size(64, 256) == (128, 32)
    assert predictor.predict(frames).shape == (3, 50, 70)


def test_variant_source_defaults(checkpoint):
    predictor = Predictor(checkpoint, device="cpu")
    assert predictor.resolution == (1024, 1024)
    assert predictor.dtype == torch.float32  # auto precision on CPU


def test_foreground_estimate_shape_and_opaque_identity(predictor, frames):
    opaque = np.ones(frames.shape[:3], dtype=np.float32)
    foreground = predictor.estimate_foreground(frames, opaque)
    assert foreground.shape == frames.shape and foreground.dtype == np.uint8
    assert np.abs(foreground.astype(int) - frames.astype(int)).max() <= 1
