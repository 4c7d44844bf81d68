"""Small generated media for tests, and independent decoders to check what was written.

Every clip is produced here with PyAV (no binary fixtures): a known picture per frame
(``pattern_frame``), optional sine audio, any codec / pixel format / size / frame rate, VFR
timestamps, display rotation, colour tags, sample aspect ratio, timecode; plus damaged copies
(truncated, corrupt packets) and image sequences. The ``decode_*`` readers use PyAV directly with
explicit colour handling, so tests of our sources and sinks do not check our code with itself.
"""

from __future__ import annotations

import functools
import shutil
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from av.video.reformatter import ColorRange, Colorspace, Interpolation

# colour presets: (primaries, transfer, matrix) as FFmpeg enum numbers, and swscale's matrix
COLOURS = {
    "bt709": ((1, 1, 1), Colorspace.ITU709),
    "bt601": ((6, 6, 6), Colorspace.ITU601),
    "bt2020": ((9, 14, 9), Colorspace.BT2020),
}

DEFAULT_AUDIO_CODEC = {".webm": "libopus", ".wav": "pcm_s16le", ".mkv": "aac", ".mov": "aac", ".mp4": "aac"}


def colour_bars(width: int, height: int) -> np.ndarray:
    """75% colour bars (white, yellow, cyan, green, magenta, red, blue) over a grey ramp, uint8 RGB."""
    levels = np.array([[191, 191, 191], [191, 191, 0], [0, 191, 191], [0, 191, 0],
                       [191, 0, 191], [191, 0, 0], [0, 0, 191]], np.uint8)
    columns = (np.arange(width) * len(levels)) // width
    image = np.repeat(levels[columns][None], height, axis=0)
    ramp_rows = height // 4
    if ramp_rows:
        ramp = np.linspace(16, 235, width).astype(np.uint8)
        image[-ramp_rows:] = ramp[None, :, None]
    return image


KR_KB = {1: (0.2126, 0.0722), 6: (0.299, 0.114)}  # luma weights of R and B: BT.709, BT.601 (SMPTE 170M)


def limited_ycbcr(rgb: np.ndarray, matrix: int, bits: int) -> np.ndarray:
    """(..., 3) RGB in [0, 1] -> (3, ...) limited-range ``bits``-bit Y', Cb, Cr codes (not rounded), by the
    formula of ``matrix`` (an AVColorSpace number)."""
    kr, kb = KR_KB[matrix]
    r, g, b = np.moveaxis(rgb, -1, 0)
    y = kr * r + (1 - kr - kb) * g + kb * b
    scale = 1 << (bits - 8)
    return np.stack([16 + 219 * y, 128 + 224 * (b - y) / (2 * (1 - kb)), 128 + 224 * (r - y) / (2 * (1 - kr))]) * scale


def bar_interiors(width: int, height: int, margin: int = 2) -> np.ndarray:
    """(H, W) mask of ``colour_bars`` pixels more than ``margin`` pixels from an edge between bars or
    between the bars and the ramp: 4:2:0 chroma is interpolated across an edge, so colour is judged inside
    the bars and the ramp (which is smooth along its rows)."""
    columns = (np.arange(width) * 7) // width
    edges = np.flatnonzero(np.diff(columns)) + 0.5
    far = np.abs(np.arange(width)[:, None] - edges[None, :]).min(axis=1) > margin
    ramp = height - height // 4
    mask = np.repeat(far[None], height, axis=0)
    mask[ramp:] = True
    mask[max(0, ramp - margin):ramp + margin] = False
    return mask


def pattern_frame(index: int, width: int, height: int, pattern: str = "moving", bit_depth: int = 8) -> np.ndarray:
    """The RGB picture a generated clip holds at frame ``index``.

    'moving': smooth gradients with a white block whose position encodes the frame index (large,
    soft features, so lossy codecs keep them); 'bars': static colour bars; 'noise': seeded noise.
    """
    if pattern == "bars":
        image = colour_bars(width, height)
    elif pattern == "noise":
        image = np.random.default_rng(index).integers(0, 256, (height, width, 3), dtype=np.uint8)
    else:
        y, x = np.mgrid[0:height, 0:width]
        image = np.stack([
            (x * 255 // max(width - 1, 1)),
            (y * 255 // max(height - 1, 1)),
            np.full_like(x, (index * 37) % 256),
        ], axis=-1).astype(np.uint8)
        block = max(4, min(width, height) // 4)
        cols = max(1, width // block)
        bx, by = (index % cols) * block, ((index // cols) * block) % max(block, height - block)
        image[by:by + block, bx:bx + block] = 255
    if bit_depth == 16:
        return image.astype(np.uint16) * 257
    return image


def make_clip(path, *, width: int = 64, height: int = 48, frames: int = 10, fps=25,
              codec: str = "libx264", pix_fmt: str = "yuv420p", pattern: str = "moving",
              audio: bool = False, audio_codec: str | None = None, sample_rate: int = 48000,
              audio_channels: int = 2, audio_seconds: float | None = None,
              pts: list[int] | None = None, time_base: Fraction | None = None,
              rotation: int = 0, colour: str | None = "bt709", full_range: bool = False,
              sar: Fraction | None = None, timecode: str | None = None,
              options: dict | None = None, faststart: bool = False) -> Path:
    """Encode a clip of ``pattern_frame`` pictures (and a 440 Hz sine when ``audio``).

    ``pts`` (in ``time_base``, default 1/fps) gives VFR timestamps; ``rotation`` sets the display
    matrix (degrees counter-clockwise); ``colour`` tags and converts with that preset (None leaves
    the stream untagged and converts with BT.601, as FFmpeg does by default).
    """
    path = Path(path)
    fps = Fraction(fps).limit_denominator(1001)
    time_base = time_base or 1 / fps
    container_options = {"movflags": "+faststart"} if faststart else {}
    with av.open(str(path), "w", options=container_options) as out:
        stream = out.add_stream(codec, rate=fps, options=dict(options or {}))
        stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
        stream.codec_context.time_base = time_base
        if codec == "libx265":
            stream.codec_context.options = {"x265-params": "log-level=error", **(options or {})}
        if sar is not None:
            stream.codec_context.sample_aspect_ratio = sar
        tags, matrix = COLOURS[colour] if colour else ((2, 2, 2), Colorspace.ITU601)
        ctx = stream.codec_context
        ctx.color_primaries, ctx.color_trc, ctx.colorspace = tags
        ctx.color_range = ColorRange.JPEG if full_range else ColorRange.MPEG
        if rotation:
            stream.set_display_rotation(rotation)
        if timecode:
            stream.metadata["timecode"] = timecode
        audio_stream = None
        if audio:
            audio_stream = out.add_stream(audio_codec or DEFAULT_AUDIO_CODEC.get(path.suffix, "aac"),
                                          rate=sample_rate)
            audio_stream.layout = "stereo" if audio_channels == 2 else "mono"
        deep = any(c.bits > 8 for c in av.VideoFormat(pix_fmt).components)
        for i in range(frames):
            rgb = pattern_frame(i, width, height, pattern, bit_depth=16 if deep else 8)
            src = av.VideoFrame.from_ndarray(rgb, format="rgb48le" if deep else "rgb24")
            frame = src.reformat(format=pix_fmt, dst_colorspace=matrix,
                                 dst_color_range=ColorRange.JPEG if full_range else ColorRange.MPEG)
            frame.pts = pts[i] if pts is not None else round(i / fps / time_base)
            frame.time_base = time_base
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
        if audio_stream is not None:
            if audio_seconds is None:
                last = pts[-1] * time_base + 1 / fps if pts else Fraction(frames) / fps
                audio_seconds = float(last)
            _write_sine(out, audio_stream, audio_seconds, sample_rate, audio_channels)
    return path


def sine_samples(start: int, count: int, sample_rate: int, channels: int) -> np.ndarray:
    t = (np.arange(start, start + count) / sample_rate).astype(np.float64)
    wave = (0.5 * np.sin(2 * np.pi * 440.0 * t)).astype(np.float32)
    return np.repeat(wave[None], channels, axis=0)


def _write_sine(out, stream, seconds: float, sample_rate: int, channels: int) -> None:
    total = int(round(seconds * sample_rate))
    chunk = 1024
    for start in range(0, total, chunk):
        count = min(chunk, total - start)
        frame = av.AudioFrame.from_ndarray(sine_samples(start, count, sample_rate, channels),
                                           format="fltp", layout=stream.layout.name)
        frame.sample_rate = sample_rate
        frame.pts = start
        frame.time_base = Fraction(1, sample_rate)
        for packet in stream.encode(frame):
            out.mux(packet)
    for packet in stream.encode():
        out.mux(packet)


def make_image_sequence(folder, *, frames: int = 5, width: int = 64, height: int = 48,
                        ext: str = "png", bit_depth: int = 8, name: str = "frame_%05d",
                        first_number: int = 1) -> Path:
    """Write ``pattern_frame`` pictures as numbered images; returns the folder."""
    import cv2

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(frames):
        rgb = pattern_frame(i, width, height, bit_depth=bit_depth)
        cv2.imwrite(str(folder / f"{name % (first_number + i)}.{ext}"), rgb[..., ::-1])
    return folder


def truncated_copy(src, dst, fraction: float = 0.6) -> Path:
    """Copy the first ``fraction`` of the file's bytes (a download or a write cut off mid-stream)."""
    data = Path(src).read_bytes()
    Path(dst).write_bytes(data[: int(len(data) * fraction)])
    return Path(dst)


def corrupt_copy(src, dst, *, packets: list[int]) -> Path:
    """Copy with the payload of the given video packets (by demux order) overwritten by garbage."""
    shutil.copyfile(src, dst)
    with av.open(str(src)) as container:
        spans = [(p.pos, p.size) for p in container.demux(video=0) if p.size]
    rng = np.random.default_rng(0)
    with open(dst, "r+b") as fh:
        for k in packets:
            pos, size = spans[k]
            fh.seek(pos + min(8, size // 4))
            fh.write(rng.integers(0, 256, max(1, size - 16), dtype=np.uint8).tobytes())
    return Path(dst)


# ------------------------------------------------------------------------- independent readers

def _decoder_frames(path):
    """Decoded video frames; VP9 with alpha goes through libvpx, the decoder that reads alpha."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        if stream.codec_context.name == "vp9" and stream.metadata.get("alpha_mode") == "1":
            decoder = av.CodecContext.create("libvpx-vp9", "r")
            for packet in container.demux(stream):
                for frame in decoder.decode(packet if packet.size else None):
                    yield frame, packet.time_base
        else:
            for frame in container.decode(stream):
                yield frame, frame.time_base


def decode_video(path, *, format: str = "rgb24", colourspace: str | None = None):
    """(frames (N,H,W,C) array, times in seconds, first frame) of the first video stream.

    YUV frames are converted with their tagged matrix and range (``colourspace`` overrides the
    matrix), with swscale's accurate rounding and chroma interpolation (its default path reads 4:2:0
    1-2 code values low), and 16-bit RGB is rescaled so that white reads 65535 (swscale's reads 65283);
    'gray' returns the luma expanded to full range (how a matte is read back), taken from the red
    channel of the RGB conversion because swscale's YUV -> gray path ignores the range.
    """
    images, times, first = [], [], None
    for frame, tb in _decoder_frames(path):
        first = first or frame
        kwargs: dict = {"interpolation": ACCURATE}
        yuv = not frame.format.is_rgb and not frame.format.name.startswith("gray")
        if yuv:
            matrix = {1: Colorspace.ITU709, 9: Colorspace.BT2020, 5: Colorspace.ITU601,
                      6: Colorspace.ITU601}.get(int(frame.colorspace), Colorspace.ITU601)
            full = frame.color_range == ColorRange.JPEG or frame.format.name.startswith("yuvj")
            kwargs.update(src_colorspace=colourspace or matrix,
                          src_color_range=ColorRange.JPEG if full else ColorRange.MPEG,
                          dst_color_range=ColorRange.JPEG)
        if format == "gray" and yuv:
            images.append(frame.to_ndarray(format="rgb24", **kwargs)[..., 0])
        elif yuv and format in ("rgb48le", "rgba64le"):
            if frame.format.chroma_height(frame.height) < frame.height:  # swscale's 4:2:0 -> 16-bit misreads green
                frame = frame.reformat(format="yuva444p16le" if len(frame.format.components) == 4 else "yuv444p16le",
                                       interpolation=ACCURATE)
            image = frame.to_ndarray(format=format, **kwargs).astype(np.float64)
            image[..., :3] *= 65535 / _white_level(frame.format.name, full, kwargs["src_colorspace"])
            images.append(np.clip(np.rint(image), 0, 65535).astype(np.uint16))
        else:
            images.append(frame.to_ndarray(format=format, **kwargs))
        times.append(float(frame.pts * tb) if frame.pts is not None else None)
    return np.stack(images) if images else np.zeros((0,)), times, first


ACCURATE = Interpolation.BILINEAR | Interpolation.ACCURATE_RND | Interpolation.FULL_CHR_H_INT


@functools.cache
def _white_level(pix_fmt: str, full_range: bool, matrix) -> float:
    """What swscale's 16-bit RGB reads for nominal white of ``pix_fmt``: Y at 235 (or the top code) scaled
    to its bits, chroma neutral."""
    layout = av.VideoFormat(pix_fmt)
    bits = layout.components[0].bits
    frame = av.VideoFrame(16, 16, pix_fmt)
    for index, plane in enumerate(frame.planes):
        top = (1 << bits) - 1
        value = (top if full_range else 235 << (bits - 8)) if index == 0 else top if index == 3 else 1 << (bits - 1)
        dtype = np.uint16 if bits > 8 else np.uint8
        plane.update(np.full(plane.buffer_size // np.dtype(dtype).itemsize, value, dtype).tobytes())
    return float(frame.to_ndarray(format="rgb48le", interpolation=ACCURATE, src_colorspace=matrix,
                                  src_color_range=ColorRange.JPEG if full_range else ColorRange.MPEG,
                                  dst_color_range=ColorRange.JPEG).mean())


def probe(path) -> dict:
    """Facts about a file: video frames/times, codec, pixel format, colour tags, audio streams."""
    with av.open(str(path)) as container:
        info = {"format": container.format.name, "streams": [s.type for s in container.streams]}
        video = container.streams.video[0] if container.streams.video else None
        if video is not None:
            info.update(codec=video.codec_context.name, pix_fmt=video.codec_context.pix_fmt,
                        width=video.codec_context.width, height=video.codec_context.height,
                        time_base=video.time_base, metadata=dict(video.metadata),
                        sar=video.sample_aspect_ratio)
            times, first = [], None
            for frame in container.decode(video):
                first = first or frame
                times.append(float(frame.pts * frame.time_base))
            info["times"] = times
            info["frames"] = len(times)
            if first is not None:
                info.update(colour=(int(first.color_primaries), int(first.color_trc),
                                    int(first.colorspace)),
                            full_range=first.color_range == ColorRange.JPEG, rotation=first.rotation)
    info["audio"] = audio_extent(path)
    return info


def audio_extent(path) -> list[dict]:
    """Per audio stream: codec, start and end time (s) from its packets, sample rate, frame size."""
    result = []
    with av.open(str(path)) as container:
        count = len(container.streams.audio)
    for k in range(count):
        with av.open(str(path)) as container:  # a fresh demuxer per stream: no seek, no lost packets
            stream = container.streams.audio[k]
            spans = [(float(p.pts * p.time_base), float(((p.pts or 0) + (p.duration or 0)) * p.time_base))
                     for p in container.demux(stream) if p.pts is not None and p.size]
            result.append({"codec": stream.codec_context.name, "sample_rate": stream.codec_context.sample_rate,
                           "frame_size": stream.codec_context.frame_size or 1024,
                           "start": min(s for s, _ in spans) if spans else None,
                           "end": max(e for _, e in spans) if spans else None})
    return result
