"""Blur-fusion foreground estimation: the O(1) box filter against the O(r^2) pooling reference."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from birefnet.foreground import estimate_foreground
from birefnet.pixels import box_filter, box_filter_reference


def pooled_box(x: torch.Tensor, size: int) -> torch.Tensor:
    """BiRefNet's GPU mean_blur written out: replicate padding, even sizes reach right/down."""
    if size % 2 == 0:
        padding = (size // 2 - 1, size // 2, size // 2 - 1, size // 2)
    else:
        padding = (size // 2,) * 4
    return F.avg_pool2d(F.pad(x, padding, mode="replicate"), size, stride=1, count_include_pad=False)


def test_reference_box_filter_is_the_published_one():
    x = torch.rand(1, 2, 30, 41, dtype=torch.float64)
    for size in (1, 6, 9):
        assert torch.equal(box_filter_reference(x, size), pooled_box(x, size))


def reference_fusion(image, alpha, radii=(90, 6)):
    fg, bg = image, image
    for r in radii:
        blurred_alpha = pooled_box(alpha, r)
        blurred_fg = pooled_box(fg * alpha, r) / (blurred_alpha + 1e-5)
        blurred_bg = pooled_box(bg * (1 - alpha), r) / ((1 - blurred_alpha) + 1e-5)
        fg = (blurred_fg + alpha * (image - alpha * blurred_fg - (1 - alpha) * blurred_bg)).clamp(0, 1)
        bg = blurred_bg
    return fg


@pytest.mark.parametrize("size", [1, 2, 3, 6, 7, 90])
def test_box_filter_matches_pooling_reference(size):
    x = torch.rand(2, 3, 23, 37, generator=torch.Generator().manual_seed(size), dtype=torch.float64)
    expected = pooled_box(x, size)
    got = box_filter(x.float(), size).double()
    assert got.shape == x.shape
    assert torch.allclose(got, expected, atol=2e-6)


def test_box_filter_keeps_float32_precision_on_long_rows():
    # Running sums over a 4K-wide row of values near 1 would lose ~1e-4 in plain float32.
    x = 0.9 + 0.1 * torch.rand(1, 1, 3, 4096, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    expected = pooled_box(x, 90)
    assert (box_filter(x.float(), 90).double() - expected).abs().max() < 2e-6


def test_box_filter_of_a_constant_is_the_constant():
    x = torch.full((1, 1, 5, 5), 0.3)
    assert torch.allclose(box_filter(x, 90), x, atol=1e-6)


def test_estimate_foreground_matches_reference_two_step_fusion():
    g = torch.Generator().manual_seed(0)
    image = torch.rand(1, 3, 40, 56, generator=g, dtype=torch.float64)
    alpha = torch.rand(1, 1, 40, 56, generator=g, dtype=torch.float64)
    expected = reference_fusion(image, alpha)
    got = estimate_foreground(image.float(), alpha.float())
    assert got.dtype == torch.float32
    assert torch.allclose(got.double(), expected, atol=1e-4)


def test_foreground_removes_background_spill_from_soft_edges():
    """Red hair at alpha 0.2-0.8 over green: the estimate is clearly closer to red than the image."""
    height, width = 64, 96
    alpha = torch.zeros(1, 1, height, width)
    alpha[..., :, :40] = 1.0
    alpha[..., :, 40:60] = torch.linspace(0.9, 0.1, 20)
    red = torch.tensor([0.9, 0.1, 0.1]).view(1, 3, 1, 1)
    green = torch.tensor([0.1, 0.8, 0.2]).view(1, 3, 1, 1)
    image = alpha * red + (1 - alpha) * green
    estimate = estimate_foreground(image, alpha, radii=(30, 6))
    soft = (alpha > 0.2) & (alpha < 0.8)
    error_image = (image - red).abs().mean(dim=1, keepdim=True)[soft].mean()
    error_estimate = (estimate - red).abs().mean(dim=1, keepdim=True)[soft].mean()
    assert error_estimate < 0.6 * error_image


def test_estimate_foreground_checks_shapes_and_keeps_dtype():
    image = torch.rand(2, 3, 16, 16, dtype=torch.float64)
    alpha = torch.rand(2, 1, 16, 16)
    assert estimate_foreground(image, alpha, radii=(5,)).dtype == torch.float64
    with pytest.raises(ValueError):
        estimate_foreground(image[:, :2], alpha)
    with pytest.raises(ValueError):
        estimate_foreground(image, alpha[..., :8])
    with pytest.raises(ValueError):
        box_filter(image, 0)


def test_outputs_sharing_a_refiner_refine_each_batch_once():
    from pipeline.finish import ForegroundRefiner

    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (2, 16, 16, 3), dtype=np.uint8)
    alpha = rng.integers(0, 256, (2, 16, 16), dtype=np.uint8)
    refiner = ForegroundRefiner()
    first = refiner(images, alpha)
    assert refiner(images, alpha) is first  # the second output of the same batch reuses it
    again = refiner(images.copy(), alpha)  # a new batch is computed afresh, to the same values
    assert again is not first and np.array_equal(again, first)
