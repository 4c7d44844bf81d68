"""Composites: exact blends over colours, linear-light maths, backgrounds from images, videos, blur."""

import av
import cv2
import numpy as np
import pytest
import torch

from birefnet.errors import ConfigError, InputError
from pipeline.blend import _Encoder, from_linear, linear_to_srgb, srgb_to_linear, to_linear
from pipeline.composite import Compositor, resize_to


def test_blend_over_colour_in_linear_light():
    fg = np.full((1, 4, 4, 3), 255, np.uint8)
    alpha = np.array([[[0.0, 1.0, 0.5, 0.5]] * 4], np.float32)
    linear = Compositor("#000000").composite(fg, alpha)
    assert np.array_equal(linear[0, 0, 0], [0, 0, 0]) and np.array_equal(linear[0, 0, 1], [255, 255, 255])
    # Half of white's light over black is linear 0.5, which sRGB encodes as 0.7354 -> 188 (not 128).
    assert np.array_equal(linear[0, 0, 2], [188, 188, 188])


def test_lookup_tables_give_what_the_formulas_give():
    """8-bit decoding and encoding go through tables; they must equal the formulas float for float."""
    codes = torch.arange(256, dtype=torch.uint8)
    decoded = to_linear(codes, torch.device("cpu"))
    assert torch.equal(decoded, srgb_to_linear(codes.float() / 255.0))
    assert torch.equal(from_linear(decoded, torch.uint8), codes)  # every code survives the round trip
    # Around every step of the encoding (+-3 floats) and on a sweep of [0, 1], in blocks of 256 floats.
    encoder = _Encoder()
    steps = torch.from_numpy(encoder.threshold[encoder.threshold <= encoder.ONE].astype(np.int64))
    near = (steps[:, None] + torch.arange(-3, 4)).flatten().clamp(0, encoder.ONE)
    sweep = torch.linspace(0, encoder.ONE, 256 * 2000).long()
    for bits in (near, sweep):
        bits = torch.cat([bits, bits[: -len(bits) % 256]]).to(torch.int32)
        floats = bits.view(torch.float32)
        assert torch.equal(from_linear(floats, torch.uint8).to(torch.int32), _Encoder.reference(bits))
    outside = torch.tensor([-1.0, -0.0, 1.5, float("inf")])
    assert from_linear(outside, torch.uint8).tolist() == [0, 0, 255, 255]


def test_transfer_functions_round_trip():
    x = torch.linspace(0, 1, 101)
    assert torch.allclose(linear_to_srgb(srgb_to_linear(x)), x, atol=1e-5)
    assert srgb_to_linear(torch.tensor(0.5)).item() == pytest.approx(0.2140, abs=1e-4)


def test_named_and_hex_colours_and_errors(tmp_path):
    fg = np.zeros((1, 2, 2, 3), np.uint8)
    alpha = np.zeros((1, 2, 2), np.float32)
    assert np.array_equal(Compositor("green").composite(fg, alpha)[0, 0, 0], [0, 255, 0])
    assert np.array_equal(Compositor("#12ab9F").composite(fg, alpha)[0, 0, 0], [0x12, 0xAB, 0x9F])
    with pytest.raises(ConfigError):
        Compositor("#12ab9")
    with pytest.raises(InputError):
        Compositor(str(tmp_path / "missing.png"))
    with pytest.raises(ConfigError):
        Compositor("green", fit="zoom")
    with pytest.raises(ConfigError):
        Compositor("green", light_wrap=1.5)


def test_resize_fit_fill_stretch():
    image = np.zeros((10, 40, 3), np.uint8)
    image[:, :20] = 255  # left half white
    assert resize_to(image, (20, 20), "stretch").shape == (20, 20, 3)
    fill = resize_to(image, (20, 20), "fill")  # scaled x2 to 20x80, centre 20 columns cropped
    assert fill.shape == (20, 20, 3) and fill[:, :8].min() == 255 and fill[:, 12:].max() == 0
    fit = resize_to(image, (20, 20), "fit")  # scaled to 5x20, padded top and bottom with black
    assert fit.shape == (20, 20, 3) and fit[:6].max() == 0 and fit[8:12, :8].min() > 200


def test_image_background(tmp_path):
    path = tmp_path / "bg.png"
    cv2.imwrite(str(path), np.full((8, 8, 3), (255, 0, 0), np.uint8))  # BGR blue
    out = Compositor(str(path)).composite(np.zeros((2, 4, 6, 3), np.uint8), np.zeros((2, 4, 6), np.float32))
    assert out.shape == (2, 4, 6, 3) and np.array_equal(out[1, 2, 3], [0, 0, 255])


def write_video(path, colours, size=(32, 48)):
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = size[1], size[0], "yuv444p"
        stream.options = {"qp": "0"}
        for colour in colours:
            frame = av.VideoFrame.from_ndarray(np.full((*size, 3), colour, np.uint8), format="rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode())


def test_video_background_loops_to_the_foreground_length(tmp_path):
    colours = [(250, 0, 0), (0, 250, 0), (0, 0, 250)]
    path = tmp_path / "bg.mp4"
    write_video(path, colours)
    compositor = Compositor(str(path))
    fg = np.zeros((2, 16, 24, 3), np.uint8)
    alpha = np.zeros((2, 16, 24), np.float32)
    got = [compositor.composite(fg, alpha, index)[:, 8, 12] for index in (0, 2, 4)]
    compositor.close()
    centres = np.concatenate(got).astype(int)
    expected = np.array([colours[i % 3] for i in range(6)])
    assert np.abs(centres - expected).max() <= 12


def test_blur_background_leaves_the_subject_out():
    original = np.zeros((1, 40, 40, 3), np.uint8)
    original[...] = (0, 0, 255)
    original[:, 10:30, 10:30] = (255, 0, 0)  # red subject on blue
    alpha = np.zeros((1, 40, 40), np.float32)
    alpha[:, 10:30, 10:30] = 1.0
    out = Compositor("blur", blur_radius=8).composite(original, alpha, original=original)
    assert np.array_equal(out[0, 20, 20], [255, 0, 0])
    just_outside = out[0, 20, 32].astype(int)
    assert just_outside[0] < 20 and just_outside[2] > 235  # no red halo from the subject


def test_light_wrap_touches_only_the_edges():
    fg = np.full((1, 40, 40, 3), 200, np.uint8)
    alpha = np.zeros((1, 40, 40), np.float32)
    alpha[:, :, :20] = 1.0
    plain = Compositor("#0000ff").composite(fg, alpha).astype(int)
    wrapped = Compositor("#0000ff", light_wrap=1.0).composite(fg, alpha).astype(int)
    assert np.array_equal(wrapped[0, :, :10], plain[0, :, :10])  # interior unchanged
    assert np.array_equal(wrapped[0, :, 20:], plain[0, :, 20:])  # background unchanged
    assert wrapped[0, 20, 19, 2] > plain[0, 20, 19, 2]  # blue light spills over the edge


def test_torch_path_matches_numpy_and_uint16_works():
    rng = np.random.default_rng(0)
    fg = rng.integers(0, 256, (2, 8, 8, 3), dtype=np.uint8)
    alpha = rng.random((2, 8, 8)).astype(np.float32)
    compositor = Compositor("#336699", light_wrap=0.5)
    expected = compositor.composite(fg, alpha)
    got = compositor.composite(torch.from_numpy(fg), torch.from_numpy(alpha))
    assert isinstance(got, torch.Tensor) and np.array_equal(got.numpy(), expected)
    deep = compositor.composite(fg.astype(np.uint16) * 257, (alpha * 65535).astype(np.uint16))
    assert deep.dtype == np.uint16 and np.abs(deep.astype(int) // 257 - expected).max() <= 1
