"""Guided upsampling: the matte's edges follow the frame's own edges at the frame's resolution."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from birefnet import ConfigError, Predictor
from birefnet.upsampling import guided_upsample

SCALE = 4


def two_colour_frame(height: int, width: int, edge_x: float, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 NCHW frame, one colour left of a slanted edge and another right of it, with sensor noise; and
    the exact matte (1 left of the edge), area-weighted at the edge's pixels."""
    columns = np.arange(width)[None, :] + 0.5
    edge = edge_x + 0.15 * (np.arange(height)[:, None] - height / 2)
    alpha = np.clip(edge - columns + 0.5, 0.0, 1.0)
    left, right = np.array([200.0, 60.0, 40.0]), np.array([30.0, 90.0, 200.0])
    image = alpha[..., None] * left + (1 - alpha[..., None]) * right
    image += np.random.default_rng(seed).normal(0, 2.0, image.shape)
    pixels = torch.from_numpy(np.clip(image + 0.5, 0, 255).astype(np.uint8)).permute(2, 0, 1)[None]
    return pixels, torch.from_numpy(alpha.astype(np.float32))[None]


def test_the_edge_comes_back_sharp_where_bilinear_blurs_it():
    """A perfect matte at a quarter of the frame's size (the area mean of the truth), brought back: the
    guided one is within a small error of the exact edge, several times closer than bilinear."""
    pixels, truth = two_colour_frame(96, 128, 53.3)
    small = F.interpolate(truth[:, None], scale_factor=1 / SCALE, mode="area")
    bilinear = F.interpolate(small, size=truth.shape[-2:], mode="bilinear", align_corners=False)[:, 0]
    guided = guided_upsample(small, pixels)
    bilinear_error = (bilinear - truth).abs().mean().item()
    guided_error = (guided - truth).abs().mean().item()
    assert guided_error < bilinear_error / 10
    band = (truth > 0) & (truth < 1)
    assert (guided[band] - truth[band]).abs().max().item() < 0.1  # the edge's own soft pixels kept soft


def test_an_edge_the_image_does_not_show_is_only_resized():
    """A subject the colour of what is behind it: the colours explain nothing of the matte's edge, so the
    model's matte comes back as bilinear brings it (a guided fit there smeared it five times as wide)."""
    pixels, truth = two_colour_frame(96, 128, 53.3)
    flat = torch.full_like(pixels, 120)
    flat = (flat + torch.randint(-2, 3, flat.shape, generator=torch.Generator().manual_seed(3))).to(torch.uint8)
    small = F.interpolate(truth[:, None], scale_factor=1 / SCALE, mode="area")
    bilinear = F.interpolate(small, size=truth.shape[-2:], mode="bilinear", align_corners=False)[:, 0]
    guided = guided_upsample(small, flat)
    assert (guided - bilinear).abs().mean().item() < 0.1 * (bilinear - truth).abs().mean().item()


@pytest.mark.parametrize("level", [0.0, 0.4, 1.0])
def test_a_constant_matte_stays_constant_over_any_texture(level):
    pixels = torch.randint(0, 256, (2, 3, 40, 60), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    small = torch.full((2, 1, 10, 15), level)
    out = guided_upsample(small, pixels)
    assert out.shape == (2, 40, 60)
    assert torch.allclose(out, torch.full_like(out, level), atol=1e-5)


def test_any_sizes_and_aspect_ratios_give_alpha_in_range():
    for (height, width), (h, w) in [((9, 7), (1, 1)), ((33, 17), (8, 16)), ((5, 300), (2, 64))]:
        pixels = torch.randint(0, 256, (1, 3, height, width), dtype=torch.uint8)
        out = guided_upsample(torch.rand(1, 1, h, w), pixels)
        assert out.shape == (1, height, width) and out.min() >= 0 and out.max() <= 1


def test_the_predictor_guides_only_frames_larger_than_its_working_size(checkpoint):
    guided = Predictor(checkpoint, device="cpu", resolution=64)
    bilinear = Predictor(checkpoint, device="cpu", resolution=64, upsample="bilinear")
    rng = np.random.default_rng(0)
    small = rng.integers(0, 256, size=(2, 50, 70, 3), dtype=np.uint8)  # 3500 pixels, fewer than 64x64
    np.testing.assert_array_equal(guided.predict(small), bilinear.predict(small))
    large = rng.integers(0, 256, size=(2, 160, 200, 3), dtype=np.uint8)
    assert not np.array_equal(guided.predict(large), bilinear.predict(large))
    np.testing.assert_array_equal(guided.predict(large, upsample="bilinear"), bilinear.predict(large))  # a coarse pass
    with pytest.raises(ValueError, match="upsample must be one of guided, bilinear"):
        guided.predict(large, upsample="nearest")
    with pytest.raises(ConfigError, match="upsample must be one of guided, bilinear"):
        Predictor(checkpoint, device="cpu", resolution=64, upsample="nearest")
