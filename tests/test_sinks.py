"""Writers: every output is decoded again (PyAV directly, libvpx for VP9 alpha) and checked for
alpha, frame count, timestamps, audio, colour, timecode, size, and the temp-name/rename contract."""

from __future__ import annotations

import logging
import os
import time
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from birefnet.atomic import partial_path
from birefnet.errors import ConfigError, OutputError
from pipeline.colour import ColourInfo, rgb_to_frame
from pipeline.sinks import open_sink
from pipeline.sources import open_source
from tests.clips import (
    bar_interiors,
    colour_bars,
    decode_video,
    limited_ycbcr,
    make_clip,
    pattern_frame,
    probe,
    sine_samples,
)
from tests.quirky_clips import ffmpeg_decode

W, H = 64, 48


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    root = tmp_path_factory.mktemp("sinks")
    return make_clip(root / "in.mp4", frames=12, audio=True, timecode="10:00:00:00")


def test_alpha_matte(n: int, width: int = W, height: int = H, bits: int = 8, start: int = 0) -> np.ndarray:
    """Horizontal ramp over all values plus a hard edge that moves with the frame index
    (frames ``start`` .. ``start + n - 1``)."""
    top = 255 if bits == 8 else 65535
    ramp = np.linspace(0, top, width).round().astype(np.uint8 if bits == 8 else np.uint16)
    alpha = np.repeat(np.repeat(ramp[None, None], height, axis=1), n, axis=0)
    for i in range(n):
        alpha[i, : height // 3, (start + i) % width] = top
    return alpha


test_alpha_matte.__test__ = False  # a helper, not a test


def transcode(src, dst, *, source_kwargs=None, matte=None, batch=5, **sink_kwargs):
    """Read ``src`` with our source, write ``dst`` with our sink; returns (summary, source, rgb in)."""
    with open_source(str(src), **(source_kwargs or {})) as source:
        sink = open_sink(str(dst), source.info, **sink_kwargs)
        images = []
        for b in source.batches(batch):
            a = matte(b) if matte else test_alpha_matte(len(b), source.info.width, source.info.height, start=b.index)
            sink.write(b, b.images, a)
            images.append(b.images)
        return sink.close(), source, np.concatenate(images)


@pytest.mark.parametrize("name,codec,tolerance", [
    ("out.mov", None, 1),           # ProRes 4444, 10-bit alpha
    ("out.webm", None, 12),         # VP9 alpha is lossy 4:2:0 video of its own
    ("out.mkv", None, 0),           # FFV1, lossless
    ("anim.mov", "qtrle", 0),       # QuickTime Animation, lossless
    ("seq/f_%04d.png", None, 0),    # PNG sequence
])
def test_alpha_survives_each_alpha_codec(clip, tmp_path, name, codec, tolerance):
    summary, source, rgb = transcode(clip, tmp_path / name, codec=codec)
    assert summary.frames_written == 12
    if name.endswith(".png"):
        files = sorted((tmp_path / "seq").glob("f_*.png"))
        assert [f.name for f in files] == [f"f_{1001 + i:04d}.png" for i in range(12)]  # VFX's first frame
        import cv2
        decoded = np.stack([cv2.imread(str(f), cv2.IMREAD_UNCHANGED)[..., [2, 1, 0, 3]] for f in files])
    else:
        decoded = decode_video(tmp_path / name, format="rgba")[0]
    alpha = test_alpha_matte(12)
    error = np.abs(decoded[..., 3].astype(int) - alpha)
    assert (error.max() if tolerance < 5 else error.mean()) <= tolerance
    if tolerance == 0:
        assert np.array_equal(decoded[..., :3], rgb)  # lossless codecs keep the colour exactly


def test_sixteen_bit_png_and_prores_keep_more_than_eight_bits(tmp_path):
    src = make_clip(tmp_path / "deep.mov", frames=3, codec="prores_ks", pix_fmt="yuv422p10le")
    deep_alpha = lambda b: test_alpha_matte(len(b), bits=16, start=b.index)  # noqa: E731
    transcode(src, tmp_path / "seq/d_%03d.png", source_kwargs={"bit_depth": 16}, bit_depth=16, matte=deep_alpha)
    import cv2
    png = cv2.imread(str(tmp_path / "seq/d_1002.png"), cv2.IMREAD_UNCHANGED)
    assert png.dtype == np.uint16 and np.array_equal(png[..., 3], test_alpha_matte(1, bits=16, start=1)[0])
    summary, _, rgb = transcode(src, tmp_path / "deep_out.mov", source_kwargs={"bit_depth": 16},
                                bit_depth=16, matte=deep_alpha)
    decoded = decode_video(tmp_path / "deep_out.mov", format="rgba64le")[0]
    assert np.abs(decoded[..., :3].astype(int) - rgb).mean() < 64  # 10-bit precision = 64 16-bit steps
    assert np.abs(decoded[..., 3].astype(int) - test_alpha_matte(3, bits=16)).max() <= 64


@pytest.mark.parametrize("name,output", [("c.mp4", "composite"), ("c.mov", "composite"),
                                         ("c.webm", "rgba"), ("c.mkv", "rgba")])
def test_frame_count_timestamps_timecode_and_audio_sync(clip, tmp_path, name, output):
    expected = probe(clip)
    summary, _, _ = transcode(clip, tmp_path / name, output=output)
    got = probe(tmp_path / name)
    assert got["frames"] == expected["frames"] == summary.frames_written == 12
    assert got["times"] == pytest.approx(expected["times"], abs=0.0011)  # matroska stores milliseconds
    assert got["metadata"].get("timecode", got["metadata"].get("TIMECODE")) == "10:00:00:00"
    (audio_in,), (audio_out,) = expected["audio"], got["audio"]
    frame = audio_in["frame_size"] / audio_in["sample_rate"]
    assert abs(audio_out["start"] - audio_in["start"]) <= frame + 0.001
    assert abs(audio_out["end"] - audio_in["end"]) <= frame + 0.001
    if name.endswith((".mp4", ".mov")):
        assert audio_out["codec"] == "aac" and summary.audio == ["#1 aac copied"]
    if name.endswith(".webm"):
        assert audio_out["codec"] == "opus" and "re-encoded to libopus" in summary.audio[0]


def test_partial_run_cuts_audio_and_starts_at_zero(clip, tmp_path):
    summary, _, _ = transcode(clip, tmp_path / "part.mov", source_kwargs={"frame_range": (4, 10)}, output="rgba")
    got = probe(tmp_path / "part.mov")
    assert got["frames"] == 6 and got["times"][0] == 0.0
    assert got["metadata"]["timecode"] == "10:00:00:04"
    (audio,) = got["audio"]
    frame = audio["frame_size"] / audio["sample_rate"]
    assert abs(audio["start"]) <= frame and abs(audio["end"] - 6 / 25) <= frame


def test_variable_frame_rate_output_keeps_input_timestamps(tmp_path):
    pts = [0, 1, 3, 4, 8, 9]
    src = make_clip(tmp_path / "vfr.mp4", frames=6, pts=pts, time_base=Fraction(1, 25))
    for name in ("v.mp4", "v.mov"):
        transcode(src, tmp_path / name, output="composite")
        assert probe(tmp_path / name)["times"] == pytest.approx([p / 25 for p in pts], abs=1e-6)


def test_pcm_audio_is_copied_into_mov_and_made_aac_for_mp4(tmp_path):
    src = make_clip(tmp_path / "pcm.mov", frames=12, audio=True, audio_codec="pcm_s24le")
    summary, _, _ = transcode(src, tmp_path / "edit.mov", output="rgba")
    assert probe(tmp_path / "edit.mov")["audio"][0]["codec"] == "pcm_s24le" and summary.audio == ["#1 pcm_s24le copied"]
    summary, _, _ = transcode(src, tmp_path / "web.mp4", output="composite")  # mp4 takes PCM, browsers do not
    (audio,) = probe(tmp_path / "web.mp4")["audio"]
    assert audio["codec"] == "aac"
    assert summary.audio == ["#1 pcm_s24le re-encoded to aac (mp4 players do not take pcm_s24le)"]
    assert abs(audio["end"] - 12 / 25) < 0.05


def decoded_audio(path) -> tuple[np.ndarray, float]:
    """The first audio stream's samples as float (channels x samples) and its first timestamp (s)."""
    with av.open(str(path)) as container:
        frames = list(container.decode(audio=0))
    planes = [f.to_ndarray() if f.format.is_planar else f.to_ndarray().reshape(-1, len(f.layout.channels)).T
              for f in frames]  # packed samples come interleaved
    samples = np.concatenate(planes, axis=1).astype(np.float64)
    scale = {"s16": 2 ** 15, "s32": 2 ** 31}.get(frames[0].format.name.rstrip("p"), 1)
    return samples / scale, float(frames[0].pts * frames[0].time_base)


@pytest.mark.parametrize("name", ["part.mov", "seq/part_%03d.png"])
def test_partial_run_cuts_pcm_audio_to_the_sample(tmp_path, name):
    """PCM is cut where the range starts and ends, sample for sample (lossless, so nothing forbids it);
    packet by packet it started 4 ms late and ended up to a packet long."""
    src = make_clip(tmp_path / "pcm.mov", frames=12, audio=True, audio_codec="pcm_s24le")
    summary, _, _ = transcode(src, tmp_path / name, source_kwargs={"frame_range": (4, 10)}, output="rgba")
    path = tmp_path / ("part.mov" if name.endswith(".mov") else "seq/part.wav")
    samples, start_s = decoded_audio(path)
    assert start_s == 0.0 and samples.shape == (2, 6 * 48000 // 25)
    expected = sine_samples(4 * 48000 // 25, 6 * 48000 // 25, 48000, 2)
    assert np.abs(samples - expected).max() < 1e-5  # one sample off would be 0.03 at 440 Hz
    if name.endswith(".mov"):
        assert summary.audio == ["#1 pcm_s24le cut to the sample (lossless)"]


def test_sidecar_wav_of_a_range_is_as_long_as_its_frames_despite_jittered_timestamps(tmp_path):
    """The real AVI's AC3 timestamps come from byte offsets and jump 1.6 ms inside this range; its samples
    are written back to back, so the WAV was 78 samples longer than the 30 frames."""
    src = Path(__file__).parent / "fixtures" / "real" / "megamind_3s.avi"
    opaque = lambda b: np.full(b.images.shape[:3], 255, np.uint8)  # noqa: E731
    transcode(src, tmp_path / "seq/f_%03d.png", source_kwargs={"frame_range": (10, 40)}, matte=opaque)
    samples, _ = decoded_audio(tmp_path / "seq/f.wav")
    assert samples.shape[1] == round(30 * 125 / 2997 * 48000)  # 30 frames at 23.976 fps, 48 kHz


def test_audio_drop_and_png_sidecar(clip, tmp_path):
    summary, _, _ = transcode(clip, tmp_path / "quiet.mov", audio="drop")
    assert probe(tmp_path / "quiet.mov")["audio"] == [] and summary.audio == []
    summary, _, _ = transcode(clip, tmp_path / "seq/shot_%03d.png")
    (audio,) = probe(tmp_path / "seq/shot.wav")["audio"]
    assert audio["codec"].startswith("pcm") and abs(audio["end"] - 12 / 25) < 0.03


@pytest.mark.parametrize("offset_s", [0.1, -0.05])
def test_sequence_sidecar_wav_starts_at_the_first_frame(tmp_path, offset_s):
    """A WAV keeps no timestamps, so audio that starts after the first frame is led by silence and audio
    that starts before it is cut: sample n plays at n / rate from the sequence's first frame."""
    import subprocess

    import imageio_ffmpeg

    src = tmp_path / "late.mkv"
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-f", "lavfi", "-i",
                    "testsrc2=size=64x48:rate=25:duration=1", "-itsoffset", str(offset_s), "-f", "lavfi", "-i",
                    "sine=frequency=440:sample_rate=48000:duration=1", "-map", "0:v", "-map", "1:a",
                    "-c:v", "ffv1", "-c:a", "pcm_s16le", str(src)], check=True)
    transcode(src, tmp_path / "seq/shot_%03d.png", matte=lambda b: np.full(b.images.shape[:3], 255, np.uint8))
    with av.open(str(tmp_path / "seq/shot.wav")) as wav:
        samples = np.concatenate([f.to_ndarray() for f in wav.decode(audio=0)], axis=1)[0].astype(float)
    sound = np.flatnonzero(np.abs(samples) > 0.01 * np.abs(samples).max())
    lead = max(offset_s, 0.0) * 48000
    assert abs(sound[0] - lead) <= 48  # 1 ms
    assert abs(len(samples) - (1.0 + offset_s) * 48000) <= 48  # the sound's end, on the sequence's clock


@pytest.mark.parametrize("tag,size,pix_fmt,codec,name", [
    ("bt709", (112, 64), "yuv420p", None, "bars.mov"),
    ("bt709", (112, 64), "yuv420p", None, "bars.mp4"),
    ("bt601", (112, 48), "yuv420p", None, "bars.mp4"),
    ("bt2020", (112, 64), "yuv420p10le", "libx265", "bars.mov"),
])
def test_colour_round_trip_and_tags(tmp_path, tag, size, pix_fmt, codec, name):
    src = make_clip(tmp_path / "src.mp4", width=size[0], height=size[1], frames=3, pattern="bars",
                    colour=tag, pix_fmt=pix_fmt, codec=codec or "libx264", options={"crf": "4"})
    full = lambda b: np.full(b.images.shape[:3], 255, np.uint8)  # noqa: E731
    output = "rgba" if name.endswith(".mov") else "composite"
    transcode(src, tmp_path / name, matte=full, output=output, crf=10)
    before, after = decode_video(src)[0].astype(int), decode_video(tmp_path / name)[0].astype(int)
    inside = bar_interiors(*size, margin=3)  # two generations of chroma interpolation spread an edge further
    assert (np.abs(after - before)[:, inside].mean(axis=(0, 1)) < 1).all()
    assert np.abs(after[0] - colour_bars(*size))[inside].mean() < 2
    assert probe(tmp_path / name)["colour"] == probe(src)["colour"]


@pytest.mark.parametrize("bit_depth", [8, 16])
@pytest.mark.parametrize("pix_fmt", ["yuv420p", "yuv420p10le", "yuv422p10le", "yuva444p10le"])
def test_rgb_is_written_as_the_matrix_says(pix_fmt, bit_depth):
    """Inside flat blocks every Y' and Cb sample is the BT.709 formula's, rounded: swscale's own 16-bit
    input takes 65535 as super-white (10-bit Y' 943 for 940), and its default rounding runs low."""
    peak = 255 if bit_depth == 8 else 65535
    blocks = np.random.default_rng(3).uniform(0.05, 0.95, (6, 8, 3))
    rgb = np.rint(np.kron(blocks, np.ones((8, 8, 1))) * peak).astype(np.uint8 if bit_depth == 8 else np.uint16)
    if pix_fmt.startswith("yuva"):
        rgb = np.dstack([rgb, np.full((48, 64, 1), peak, rgb.dtype)])
    frame = rgb_to_frame(rgb, pix_fmt, ColourInfo(1, 1, 1, False))
    bits = av.VideoFormat(pix_fmt).components[0].bits
    expected = limited_ycbcr(rgb[..., :3] / peak, 1, bits)
    # the input's own rounding carried to the output's codes, plus the output's rounding (which swscale
    # does to within one code, not half of one, from 16-bit input to 8-bit output)
    slack = max(0.55 + (224 << (bits - 8)) / peak, 1.0 if bits == 8 else 0.0)
    for plane, want in zip(frame.planes[:2], expected[:2]):
        dtype = np.uint16 if bits > 8 else np.uint8
        got = np.frombuffer(plane, dtype).reshape(plane.height, -1)[:, :plane.width].astype(float)
        down = 48 // plane.height, 64 // plane.width
        rows, columns = np.ogrid[:plane.height, :plane.width]
        inside = ((rows * down[0]) % 8 >= 2) & ((rows * down[0]) % 8 < 6) & \
                 ((columns * down[1]) % 8 >= 2) & ((columns * down[1]) % 8 < 6)
        error = np.abs(got - want[::down[0], ::down[1]])[inside]
        assert error.max() <= slack, (plane, error.max())


@pytest.mark.parametrize("name, settings", [("ramp.mp4", {"crf": 0}), ("ramp.mov", {})])
def test_subsampled_chroma_is_written_where_decoders_read_it(tmp_path, name, settings):
    """A colour ramp written to H.264 or ProRes 422 decodes (FFmpeg, told the codecs' siting: on the even
    columns) where it was: swscale sites untagged chroma between the columns, which put this one half a
    pixel to the right (B 2 code values low)."""
    columns = np.arange(64)
    rgb = np.stack(np.broadcast_arrays(30 + 3 * columns, 100 + columns, 220 - 3 * columns), axis=-1)
    rgb = np.tile(rgb, (16, 1, 1)).astype(np.uint8)
    (tmp_path / "seq").mkdir()
    cv2.imwrite(str(tmp_path / "seq" / "ramp_0001.png"), rgb[..., ::-1])
    transcode(tmp_path / "seq" / "ramp_%04d.png", tmp_path / name, batch=1, output="composite",
              matte=lambda b: np.full(b.images.shape[:3], 255, np.uint8), **settings)
    error = (ffmpeg_decode(tmp_path / name, 64, 16).images[0].astype(int) - rgb)[:, 2:-2]
    assert np.abs(error.mean(axis=(0, 1))).max() < 0.3, error.mean(axis=(0, 1))
    assert np.abs(error).max() <= 1


@pytest.mark.parametrize("name,codec", [("m.mp4", None), ("m.mov", None), ("m.mkv", "h265"),
                                        ("mseq/m_%02d.png", None)])
def test_matte_outputs_are_grayscale_alpha(clip, tmp_path, name, codec):
    with open_source(str(clip), frame_range=(0, 4)) as source:
        sink = open_sink(str(tmp_path / name), source.info, output="matte", codec=codec, crf=0)
        for b in source.batches(4):
            sink.write(b, None, test_alpha_matte(len(b)))
        sink.close()
    if name.endswith(".png"):
        import cv2
        files = sorted((tmp_path / "mseq").glob("*.png"))
        decoded = np.stack([cv2.imread(str(p), cv2.IMREAD_UNCHANGED) for p in files])
    else:
        decoded = decode_video(tmp_path / name, format="gray")[0]
    assert decoded.shape == (4, H, W)
    assert np.abs(decoded.astype(int) - test_alpha_matte(4)).mean() < 2  # video range has 220 levels


def test_odd_sizes_padded_for_420_encoders_and_kept_elsewhere(tmp_path, caplog):
    src = make_clip(tmp_path / "odd.mkv", width=65, height=49, frames=3, codec="ffv1", pix_fmt="yuv444p")
    with caplog.at_level(logging.WARNING, logger="birefnet_video"):
        summary, _, _ = transcode(src, tmp_path / "odd.mp4", output="composite")
    assert (summary.width, summary.height) == (66, 50) and "padded to 66x50" in caplog.text
    assert (probe(tmp_path / "odd.mp4")["width"], probe(tmp_path / "odd.mp4")["height"]) == (66, 50)
    for name in ("odd.webm", "odd.mov"):
        transcode(src, tmp_path / name)
        assert decode_video(tmp_path / name, format="rgba")[0].shape == (3, 49, 65, 4)


def test_rotation_and_pixel_aspect_carried(tmp_path):
    src = make_clip(tmp_path / "rot.mp4", frames=2, rotation=270, sar=Fraction(2, 1))
    transcode(src, tmp_path / "rot.mov")
    got = probe(tmp_path / "rot.mov")
    assert (got["width"], got["height"], got["rotation"]) == (48, 64, 0)
    assert got["sar"] == Fraction(1, 2)


def test_premultiplied_alpha_is_a_choice(clip, tmp_path):
    transcode(clip, tmp_path / "p/f_%02d.png", alpha="premultiplied", source_kwargs={"frame_range": (0, 1)})
    _, _, rgb = transcode(clip, tmp_path / "s/f_%02d.png", source_kwargs={"frame_range": (0, 1)})
    import cv2
    pre = cv2.imread(str(tmp_path / "p/f_1001.png"), cv2.IMREAD_UNCHANGED)[..., [2, 1, 0]].astype(int)
    alpha = test_alpha_matte(1)[0].astype(int)
    assert np.abs(pre - (rgb[0].astype(int) * alpha[..., None] + 127) // 255).max() <= 1
    straight = cv2.imread(str(tmp_path / "s/f_1001.png"), cv2.IMREAD_UNCHANGED)[..., [2, 1, 0]]
    assert np.array_equal(straight, rgb[0])


def test_output_is_written_under_a_temp_name_and_abort_leaves_nothing(clip, tmp_path):
    final = tmp_path / "out" / "a.mov"
    with open_source(str(clip)) as source:
        sink = open_sink(str(final), source.info)
        batch = next(source.batches(4))
        sink.write(batch, batch.images, test_alpha_matte(4))
        assert not final.exists()
        sink.abort()
    assert not (tmp_path / "out").exists()  # the folder the sink created goes too
    with open_source(str(clip)) as source:
        with pytest.raises(RuntimeError):
            with open_sink(str(tmp_path / "seq/x_%02d.png"), source.info) as sink:
                batch = next(source.batches(4))
                sink.write(batch, batch.images, test_alpha_matte(4))
                raise RuntimeError("inference failed")
    assert not (tmp_path / "seq").exists()


def test_output_errors(clip, tmp_path):
    with open_source(str(clip)) as source:
        info = source.info
        with pytest.raises(OutputError, match="output is the input"):
            open_sink(str(clip), info, output="composite", overwrite=True)
        (tmp_path / "exists.mov").write_bytes(b"x")
        with pytest.raises(OutputError, match="exists"):
            open_sink(str(tmp_path / "exists.mov"), info)
        (tmp_path / "file").write_bytes(b"x")
        with pytest.raises(OutputError, match="cannot create output directory"):
            open_sink(str(tmp_path / "file" / "sub" / "a.mov"), info)
        with pytest.raises(ConfigError, match="cannot carry alpha"):
            open_sink(str(tmp_path / "a.mp4"), info, output="rgba")
        with pytest.raises(ConfigError, match="no alpha channel"):
            open_sink(str(tmp_path / "a.mov"), info, prores_profile="hq")
        with pytest.raises(ConfigError, match="cannot tell the output format"):
            open_sink(str(tmp_path / "a.xyz"), info)
        sink = open_sink(str(tmp_path / "new" / "dir" / "ok.mov"), info)
        batch = next(source.batches(4))
        with pytest.raises(ValueError):
            sink.write(batch, batch.images[:, :10], test_alpha_matte(4))
        sink.write(batch, batch.images, test_alpha_matte(4))
        assert sink.close().frames_written == 4 and (tmp_path / "new" / "dir" / "ok.mov").exists()
    assert sorted(os.listdir(tmp_path / "new" / "dir")) == ["ok.mov"]


def test_encoder_settings_are_used(clip, tmp_path):
    small = transcode(clip, tmp_path / "small.mp4", output="composite", crf=45, preset="ultrafast")[0]
    big = transcode(clip, tmp_path / "big.mp4", output="composite", crf=5, preset="ultrafast")[0]
    assert Path(small.path).stat().st_size < Path(big.path).stat().st_size
    lt = transcode(clip, tmp_path / "lt.mov", output="composite", prores_profile="lt")[0]
    hq = transcode(clip, tmp_path / "hq.mov", output="composite")[0]
    assert Path(lt.path).stat().st_size < Path(hq.path).stat().st_size
    assert np.abs(decode_video(lt.path)[0][0].astype(int) - pattern_frame(0, W, H)).mean() < 4


def test_outputs_read_back_with_their_alpha(clip, tmp_path):
    _, _, rgb = transcode(clip, tmp_path / "out.mkv")  # FFV1: lossless, so the read-back is exact
    with open_source(str(tmp_path / "out.mkv"), alpha=True) as source:
        rgba = np.stack([f.image for f in source.frames()])
    assert rgba.shape == (12, H, W, 4)
    assert np.array_equal(rgba[..., :3], rgb) and np.array_equal(rgba[..., 3], test_alpha_matte(12))


def test_generated_frames_are_written_untagged_at_their_rate(tmp_path):
    from pipeline.sources import ArraySource

    frames = np.stack([pattern_frame(i, W, H) for i in range(5)])
    source = ArraySource(frames, 24)
    with open_sink(str(tmp_path / "gen.mp4"), source.info, output="composite", crf=1, audio="drop",
                   faststart=False) as sink:
        for batch in source.batches(2):
            sink.write(batch, batch.images, None)
    got = probe(tmp_path / "gen.mp4")
    assert got["frames"] == 5 and got["times"] == pytest.approx([i / 24 for i in range(5)], abs=1e-6)
    assert got["colour"] == (2, 2, 2)  # untagged, like a camera file without a colour description
    decoded = decode_video(tmp_path / "gen.mp4")[0].astype(int)
    assert np.abs(decoded - frames).mean() < 2  # untagged is read back as BT.601, as it was written


def test_png_frames_stay_under_hidden_names_until_the_sequence_is_complete(clip, tmp_path):
    folder = tmp_path / "seq"
    with open_source(str(clip)) as source:
        sink = open_sink(str(folder / "x_%02d.png"), source.info, audio="drop")
        for batch in source.batches(4):
            sink.write(batch, batch.images, test_alpha_matte(len(batch), start=batch.index))
        deadline = time.monotonic() + 30
        names = [".x_%02d.png.lock"]  # the run's claim on the output name, beside the frames
        while len(names) < 13 and time.monotonic() < deadline:  # let the encode thread catch up
            time.sleep(0.05)
            names = sorted(p.name for p in folder.iterdir())
        sink.close()
    assert ".x_%02d.png.lock" in names
    partial_names = [name for name in names if name != ".x_%02d.png.lock"]
    assert len(partial_names) == 12
    assert all(name.startswith(".x_") and f".partial-{os.getpid()}" in name for name in partial_names)
    assert sorted(p.name for p in folder.iterdir()) == [f"x_{1001 + i}.png" for i in range(12)]


def test_a_frame_that_cannot_be_written_fails_the_sequence_in_one_line_and_leaves_nothing(clip, tmp_path):
    folder = tmp_path / "seq"
    folder.mkdir()
    partial_path(folder / "x_1006.dpx").mkdir()  # the sixth frame's temporary name is taken by a folder
    with open_source(str(clip)) as source:
        sink = open_sink(str(folder / "x_%04d.dpx"), source.info, audio="drop")
        with pytest.raises(OutputError, match=r"encoding .*x_%04d\.dpx failed"):
            for batch in source.batches(4):
                sink.write(batch, batch.images, test_alpha_matte(len(batch), start=batch.index))
            sink.close()
    assert list(folder.iterdir()) == []  # no frame, no temporary file, no claim left behind
