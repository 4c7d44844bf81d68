"""Deliverables for VFX and editing: EXR, DPX and TIFF sequences read back by a second reader (OpenEXR,
PyAV), straight or premultiplied alpha checked numerically, metadata, frame numbering, timecode, ProRes
tags, the picture+matte pair, and an EXR sequence read back as input and processed again."""

from __future__ import annotations

import logging
import struct
from fractions import Fraction

import av
import numpy as np
import pytest

import run_pipeline
from birefnet.errors import ConfigError
from pipeline.colour import ColourInfo, to_linear
from pipeline.jobs import matte_path
from pipeline.settings.process import build_config
from pipeline.sinks import open_sink
from pipeline.sources import ArraySource, open_source
from tests.clips import make_clip, make_image_sequence, probe

OpenEXR = pytest.importorskip("OpenEXR")

W, H, FRAMES = 32, 24, 4
RED_ALPHA = 128  # alpha 0.502 over pure red


def red_half_alpha(frames: int = FRAMES) -> tuple[np.ndarray, np.ndarray]:
    """Frames of a red left half / gray ramp right half, and an alpha of 128 on the left, 255 on the right."""
    rgb = np.zeros((frames, H, W, 3), np.uint8)
    rgb[:, :, : W // 2] = (255, 0, 0)
    rgb[:, :, W // 2:] = np.linspace(0, 255, W // 2).round().astype(np.uint8)[None, None, :, None]
    alpha = np.full((frames, H, W), 255, np.uint8)
    alpha[:, :, : W // 2] = RED_ALPHA
    return rgb, alpha


def write(source, path, *, alpha_of=None, **kwargs):
    """Every frame of ``source`` into ``path``; the alpha from ``alpha_of(batch)`` (default: red_half_alpha)."""
    sink = open_sink(str(path), source.info, audio="drop", **kwargs)
    for batch in source.batches(3):
        alpha = alpha_of(batch) if alpha_of else red_half_alpha(len(batch))[1]
        sink.write(batch, batch.images, alpha)
    return sink.close()


def read_exr(path):
    with OpenEXR.File(str(path)) as image:  # both are freed when the file closes: copy them
        return dict(image.header()), {name: np.array(channel.pixels) for name, channel in image.channels().items()}


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return make_clip(tmp_path_factory.mktemp("deliver") / "in.mp4", width=W, height=H, frames=FRAMES,
                     timecode="10:00:00:00")


@pytest.mark.parametrize("alpha,depth", [(None, "half"), ("straight", "float")])
def test_exr_is_linear_premultiplied_half_with_our_header(tmp_path, alpha, depth):
    rgb, _ = red_half_alpha()
    source = ArraySource(rgb, 25)
    source.info.colour = ColourInfo(primaries=1, transfer=1, matrix=1)  # tagged bt709, as an HD file is
    summary = write(source, tmp_path / "shot/plate.####.exr", alpha=alpha, exr_depth=depth)
    files = sorted((tmp_path / "shot").iterdir())
    assert [f.name for f in files] == [f"plate.{1001 + i}.exr" for i in range(FRAMES)]
    assert summary.alpha == (alpha or "premultiplied")
    header, channels = read_exr(files[0])
    pixels = channels["RGBA"]
    assert pixels.dtype == (np.float16 if depth == "half" else np.float32)
    assert list(channels) == ["RGBA"] and pixels.shape == (H, W, 4)
    a = RED_ALPHA / 255
    red = pixels[0, 0].astype(np.float64)
    expected_red = a if alpha is None else 1.0  # linear 1.0 times alpha when premultiplied
    np.testing.assert_allclose(red, [expected_red, 0, 0, a], rtol=1e-3, atol=1e-6)
    ramp = rgb[0, 0, W // 2:, 0] / 255
    np.testing.assert_allclose(pixels[0, W // 2:, 0], to_linear(ramp, 1)[0], rtol=1e-3, atol=1e-4)
    assert np.array_equal(header["dataWindow"][0], header["displayWindow"][0])
    assert np.array_equal(header["dataWindow"][1], [W - 1, H - 1])
    assert header["compression"] == OpenEXR.ZIPS_COMPRESSION
    assert header["birefnet:alpha"] == (alpha or "premultiplied")
    assert header["birefnet:colourSpace"] == "linear bt709" and header["colorInteropID"] == "lin_rec709_scene"
    assert header["birefnet:software"] == "birefnet-video"


def test_exr_carries_source_timecode_per_frame_and_numbers_a_range(clip, tmp_path):
    with open_source(str(clip), frame_range=(1, 4)) as source:
        write(source, tmp_path / "r/plate.%04d.exr", exr_compression="piz", model="hr-matting")
    files = sorted((tmp_path / "r").iterdir())
    assert [f.name for f in files] == ["plate.1002.exr", "plate.1003.exr", "plate.1004.exr"]  # the input's numbers
    header, _ = read_exr(files[1])
    code = header["timeCode"]
    assert (code.hours, code.minutes, code.seconds, code.frame) == (10, 0, 0, 2)
    assert header["birefnet:sourceTimecode"] == "10:00:00:01"  # the range's first frame
    assert header["birefnet:source"] == "in.mp4" and header["birefnet:model"] == "hr-matting"
    assert header["compression"] == OpenEXR.PIZ_COMPRESSION
    assert header["framesPerSecond"] == Fraction(25)


def test_start_number_from_a_value_or_the_timecode(clip, tmp_path):
    with open_source(str(clip)) as source:
        write(source, tmp_path / "one/f.####.png", start_number=1)
    with open_source(str(clip)) as source:
        write(source, tmp_path / "tc/f.%07d.png", start_number="timecode")
    assert sorted(p.name for p in (tmp_path / "one").iterdir()) == [f"f.{i:04d}.png" for i in range(1, 5)]
    first = 10 * 3600 * 25  # 10:00:00:00 at 25 fps
    assert sorted(p.name for p in (tmp_path / "tc").iterdir()) == [f"f.{first + i:07d}.png" for i in range(4)]
    with open_source(str(make_clip(tmp_path / "plain.mp4", frames=2))) as source, pytest.raises(ConfigError):
        write(source, tmp_path / "none/f.####.png", start_number="timecode")


def test_dpx_is_ten_bit_colour_and_sixteen_bit_alpha_with_timecode(clip, tmp_path):
    with open_source(str(clip)) as source:
        write(source, tmp_path / "c/plate.####.dpx", output="composite")
    with open_source(str(clip)) as source:
        images = np.concatenate([b.images for b in source.batches(8)])
    with open_source(str(clip)) as source:
        write(source, tmp_path / "a/plate.####.dpx")
    colour_files = sorted((tmp_path / "c").iterdir())
    assert len(colour_files) == FRAMES and colour_files[0].name == "plate.1001.dpx"
    for index, path in enumerate(colour_files):
        with av.open(str(path)) as container:
            frame = next(container.decode(video=0))
        assert frame.format.name == "gbrp10le"
        ten_bit = frame.to_ndarray(format="rgb48le").astype(int) >> 6
        assert np.abs(ten_bit - ((images[index].astype(int) << 2) | (images[index] >> 6))).max() <= 1
        data = path.read_bytes()
        order = ">" if data[:4] == b"SDPX" else "<"
        (bcd,) = struct.unpack(order + "I", data[1920:1924])
        assert f"{bcd:08x}" == f"100000{index:02d}"  # SMPTE 268M television header: HHMMSSFF in BCD
    with av.open(str(sorted((tmp_path / "a").iterdir())[0])) as container:
        frame = next(container.decode(video=0))
    rgba = frame.to_ndarray(format="rgba64le")
    assert frame.format.name == "rgba64le" and rgba[0, 0, 3] == RED_ALPHA * 257 and rgba[0, -1, 3] == 65535


def every_code(frames: int) -> tuple[np.ndarray, np.ndarray]:
    """16x16 frames holding each 8-bit code once per channel, in another order in every channel and frame."""
    codes = np.arange(256).reshape(16, 16)
    rgb = np.stack([np.stack([np.roll(codes, k * (f + 1)) for k in (1, 3, 7)], axis=-1) for f in range(frames)])
    alpha = np.stack([np.roll(codes, 11 * (f + 1)) for f in range(frames)])
    return rgb.astype(np.uint8), alpha.astype(np.uint8)


def read_planes(path, samples_per_pixel: int) -> tuple[str, list[np.ndarray]]:
    """A 16x16 DPX/TIFF file's decoded 16-bit samples, plane by plane, as stored (no conversion)."""
    with av.open(str(path)) as container:
        frame = next(container.decode(video=0))
    rows = [np.frombuffer(bytes(plane), np.uint16).reshape(plane.height, -1) for plane in frame.planes]
    return frame.format.name, [plane[:, :16 * samples_per_pixel].reshape(16, 16, -1) for plane in rows]


@pytest.mark.parametrize("name,output,pix_fmt", [("plate.####.dpx", "composite", "gbrp10le"),
                                                 ("plate.####.dpx", "rgba", "rgba64le"),
                                                 ("plate.####.tif", "composite", "rgb48le"),
                                                 ("plate.####.tif", "rgba", "rgba64le")])
def test_dpx_and_tiff_widen_every_eight_bit_code_exactly_in_every_frame(tmp_path, name, output, pix_fmt):
    rgb, alpha = every_code(5)  # more frames than the writer encodes at once on this machine's threads
    source = ArraySource(rgb, 24)
    write(source, tmp_path / name, output=output, alpha_of=lambda batch: alpha[batch.index:batch.index + len(batch)])
    files = sorted(tmp_path.iterdir())
    assert len(files) == 5
    for index, path in enumerate(files):
        fmt, planes = read_planes(path, {"gbrp10le": 1, "rgb48le": 3, "rgba64le": 4}[pix_fmt])
        wide = rgb[index].astype(np.uint16) * 257
        assert fmt == pix_fmt
        if pix_fmt == "gbrp10le":  # planes G, B, R; 10 bits by bit replication: (v << 2) | (v >> 6)
            ten = (rgb[index].astype(np.uint16) << 2) | (rgb[index] >> 6)
            for plane, channel in zip(planes, (1, 2, 0)):
                assert np.array_equal(plane[..., 0], ten[..., channel])
        elif pix_fmt == "rgb48le":
            assert np.array_equal(planes[0], wide)
        else:
            expected = np.concatenate([wide, alpha[index, ..., None].astype(np.uint16) * 257], axis=-1)
            assert np.array_equal(planes[0], expected)


@pytest.mark.parametrize("alpha,extra_samples", [("straight", 2), ("premultiplied", 1)])
def test_tiff_is_sixteen_bit_and_says_which_alpha(tmp_path, alpha, extra_samples):
    rgb, _ = red_half_alpha(2)
    write(ArraySource(rgb, 24), tmp_path / "t/plate.####.tif", alpha=alpha)
    path = sorted((tmp_path / "t").iterdir())[0]
    with av.open(str(path)) as container:
        pixels = next(container.decode(video=0)).to_ndarray(format="rgba64le").astype(int)
    red = RED_ALPHA * 257 * 65535 // 65535 if alpha == "premultiplied" else 65535
    assert abs(pixels[0, 0, 0] - red) <= 1 and pixels[0, 0, 1] == 0 and pixels[0, 0, 3] == RED_ALPHA * 257
    data = path.read_bytes()
    (ifd,) = struct.unpack("<I", data[4:8])
    (count,) = struct.unpack("<H", data[ifd:ifd + 2])
    tags = {struct.unpack("<H", data[e:e + 2])[0]: struct.unpack("<H", data[e + 8:e + 10])[0]
            for e in range(ifd + 2, ifd + 2 + 12 * count, 12)}
    assert tags[338] == extra_samples  # ExtraSamples: 1 associated (premultiplied), 2 unassociated


@pytest.mark.parametrize("profile,tag", [(None, "ap4h"), ("4444xq", "ap4x")])
def test_prores_4444_tags_and_metadata(clip, tmp_path, profile, tag):
    with open_source(str(clip)) as source:
        write(source, tmp_path / "p.mov", prores_profile=profile)
    with av.open(str(tmp_path / "p.mov")) as container:
        stream = container.streams.video[0]
        packet = next(p for p in container.demux(stream) if p.size)
        assert stream.codec_context.codec_tag == tag and stream.codec_context.pix_fmt.startswith("yuva444p")
        assert bytes(packet)[4:8] == b"icpf" and bytes(packet)[12:16] == b"apl0"  # Apple's vendor in the frame
        assert "alpha straight" in container.metadata["comment"]
        assert stream.metadata["timecode"] == "10:00:00:00"


def test_webm_alpha_gets_the_browser_note(clip, tmp_path, caplog):
    with caplog.at_level(logging.WARNING), open_source(str(clip), frame_range=(0, 1)) as source:
        write(source, tmp_path / "a.webm")
    assert "for browsers" in caplog.text


def test_sequence_inputs_keep_their_numbers_whatever_the_start(tmp_path):
    folder = make_image_sequence(tmp_path / "in", frames=3, width=W, height=H, name="shot.%04d", first_number=7)
    with open_source(str(folder / "shot.####.png")) as source:
        assert source.info.frame_numbers == (7, 8, 9)
        write(source, tmp_path / "dpx/shot.####.dpx", output="composite")
    with open_source(str(tmp_path / "dpx/shot.####.dpx")) as source:
        assert source.info.frame_numbers == (7, 8, 9) and source.info.frame_count == 3
        write(source, tmp_path / "tif/shot.%04d.tif", output="composite")
    assert sorted(p.name for p in (tmp_path / "tif").iterdir()) == ["shot.0007.tif", "shot.0008.tif", "shot.0009.tif"]


def test_exr_sequence_read_back_as_input_keeps_numbers_and_picture(clip, tmp_path):
    with open_source(str(clip)) as source:
        images = np.concatenate([b.images for b in source.batches(8)])
    with open_source(str(clip)) as source:
        write(source, tmp_path / "e/plate.####.exr")
    with open_source(str(tmp_path / "e/plate.####.exr")) as source:
        assert source.info.frame_numbers == tuple(range(1001, 1005))
        again = np.concatenate([b.images for b in source.batches(8)])
    # premultiplied by the alpha of red_half_alpha: the right half (alpha 1) comes back as it went in
    assert np.abs(again[:, :, W // 2:].astype(int) - images[:, :, W // 2:]).max() <= 1


def test_settings_keys(tmp_path):
    config = build_config({"alpha": "premultiplied", "start_number": "timecode", "exr_depth": "float",
                           "exr_compression": "dwaa", "output": "picture+matte"})
    assert (config.alpha, config.start_number, config.exr_depth, config.output) == \
        ("premultiplied", "timecode", "float", "picture+matte")
    assert build_config({"alpha": "auto", "start_number": "12"}).alpha is None
    with pytest.raises(ConfigError, match="premultiplied"):
        build_config({"premultiplied": True})
    assert matte_path("out/shot.mov") == "out/shot_matte.mov"
    assert matte_path("out/plate.####.exr") == "out/plate_matte.%04d.exr"
    assert matte_path("out/frames/") == "out/frames_matte/"


def cli(*args: str) -> int:
    return run_pipeline.main(["process", *args, "--resolution", "64", "--backend", "local", "--temporal", "off",
                              "--quiet"])


@pytest.mark.slow
def test_picture_plus_matte_and_an_exr_round_trip_through_the_pipeline(clip, checkpoint, tmp_path):
    out = tmp_path / "edit/shot.mov"
    assert cli(str(clip), "-o", str(out), "--model", str(checkpoint), "--output", "picture+matte") == 0
    picture, matte = probe(out), probe(tmp_path / "edit/shot_matte.mov")
    assert picture["frames"] == matte["frames"] == FRAMES and picture["times"] == matte["times"]
    assert picture["metadata"]["timecode"] == matte["metadata"]["timecode"] == "10:00:00:00"
    assert not picture["pix_fmt"].startswith("yuva")
    first = tmp_path / "vfx/plate.####.exr"
    assert cli(str(clip), "-o", str(first), "--model", str(checkpoint), "--start-number", "1001") == 0
    second = tmp_path / "again/plate.####.exr"
    assert cli(str(first), "-o", str(second), "--model", str(checkpoint), "--sequence-fps", "25") == 0
    names = [f"plate.{1001 + i}.exr" for i in range(FRAMES)]
    assert sorted(p.name for p in (tmp_path / "again").iterdir()) == names
    assert read_exr(tmp_path / "again" / names[0])[0]["birefnet:alpha"] == "premultiplied"
