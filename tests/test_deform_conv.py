"""The pure-PyTorch deformable convolution agrees with a naive reference (and torchvision, if usable)."""

import pytest
import torch

from benchmarks.deform_reference import naive_deform_conv2d
from birefnet.modules import deform_conv as dc
from birefnet.modules.deform_conv import DeformableConv2d, deform_conv2d_torch


def _case(kernel, stride=1, padding=0, dilation=1, height=7, width=9, offset_scale=3.0, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(2, 3, height, width, generator=g, dtype=torch.float64)
    out_h = (height + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1
    out_w = (width + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1
    # large offsets push many samples across and beyond the border
    offset = offset_scale * torch.randn(2, 2 * kernel * kernel, out_h, out_w, generator=g, dtype=torch.float64)
    mask = torch.rand(2, kernel * kernel, out_h, out_w, generator=g, dtype=torch.float64) * 2
    weight = torch.randn(4, 3, kernel, kernel, generator=g, dtype=torch.float64)
    bias = torch.randn(4, generator=g, dtype=torch.float64)
    return x, offset, weight, bias, mask, dict(stride=stride, padding=padding, dilation=dilation)


@pytest.mark.parametrize(
    "kernel,stride,padding,dilation",
    [(1, 1, 0, 1), (3, 1, 1, 1), (7, 1, 3, 1), (3, 2, 1, 1), (3, 1, 2, 2)],
)
def test_matches_naive_reference(kernel, stride, padding, dilation):
    x, offset, weight, bias, mask, geometry = _case(kernel, stride, padding, dilation)
    expected = naive_deform_conv2d(x, offset, weight, bias, mask, **geometry)
    got = deform_conv2d_torch(x, offset, weight, bias, mask, **geometry)
    assert torch.allclose(got, expected, atol=1e-9)


def test_integer_offsets_on_one_pixel_maps_and_no_mask():
    x, offset, weight, bias, _, geometry = _case(3, padding=1, height=1, width=1, offset_scale=0.0)
    offset = offset.round()
    expected = naive_deform_conv2d(x, offset, weight, None, None, **geometry)
    assert torch.allclose(deform_conv2d_torch(x, offset, weight, None, None, **geometry), expected, atol=1e-9)


def test_zero_offsets_and_unit_mask_equal_a_plain_convolution():
    layer = DeformableConv2d(5, 6, kernel_size=3, padding=1).double()
    x = torch.randn(2, 5, 10, 12, dtype=torch.float64)
    # freshly initialised offsets are zero and the modulator is 2*sigmoid(0) = 1
    expected = torch.nn.functional.conv2d(x, layer.regular_conv.weight, padding=1)
    assert torch.allclose(layer(x), expected, atol=1e-10)


def test_tap_chunking_gives_the_same_result(monkeypatch):
    x, offset, weight, bias, mask, geometry = _case(7, padding=3)
    whole = deform_conv2d_torch(x, offset, weight, bias, mask, **geometry)
    monkeypatch.setattr(dc, "_MAX_SAMPLED_ELEMENTS", 1)  # one tap per chunk
    assert torch.allclose(deform_conv2d_torch(x, offset, weight, bias, mask, **geometry), whole, atol=1e-10)


def test_agrees_with_torchvision_when_usable():
    tv = dc._torchvision_deform_conv2d()
    if tv is None:
        pytest.skip("torchvision is not importable here (parity is measured on the GPU machine)")
    x, offset, weight, bias, mask, geometry = _case(3, padding=1)
    expected = tv(x, offset, weight, bias, mask=mask, **geometry)
    assert torch.allclose(deform_conv2d_torch(x, offset, weight, bias, mask, **geometry), expected, atol=1e-9)
