"""Generated files with the timestamp and frame-count quirks of real-world files, and FFmpeg's own
decode of any input to check a reader against.

Each generator reproduces one class found in real clips (see tests/fixtures/real/README.md):
``bframes_avi`` mpeg4 with B-frames in AVI (one timestamp per packet, so pts come out of the decoder
out of order and a seek lands early); ``pts_equal_dts_mp4`` h264 whose B-frames carry pts equal to
dts, with the audio as stream 0 (as box.mp4); ``vfr_avi`` a variable-rate AVI, whose gaps the muxer
fills with empty index entries, so its header lists more frames than it holds; ``edit_list_mp4`` a
stream copy cut between keyframes, whose header lists the decoded-but-hidden frames before the cut.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import imageio_ffmpeg
import numpy as np

from tests.clips import pattern_frame

WIDTH, HEIGHT = 96, 64


def _video_frame(index: int) -> av.VideoFrame:
    return av.VideoFrame.from_ndarray(pattern_frame(index, WIDTH, HEIGHT), format="rgb24")


def _audio_frames(stream: av.AudioStream, seconds: float):
    """A 440 Hz sine in the stream's frame size, stereo, pts in samples."""
    rate = stream.codec_context.sample_rate
    size = stream.codec_context.frame_size or 1024
    fmt = stream.codec_context.format.name
    for start in range(0, int(seconds * rate), size):
        t = (np.arange(start, start + size) / rate).astype(np.float32)
        wave = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
        samples = np.stack([wave, wave])
        if fmt.startswith("s16"):
            samples = (samples * 32767).astype(np.int16)
        if not fmt.endswith("p"):
            samples = samples.T.reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(samples, format=fmt, layout="stereo")
        frame.sample_rate, frame.pts = rate, start
        yield frame


def _encode(path: Path, *, codec: str, frames: int, fps: int, options: dict, audio_codec: str | None,
            audio_first: bool = False, pts: list[int] | None = None, b_frames: int = 0) -> Path:
    with av.open(str(path), "w") as out:
        audio = out.add_stream(audio_codec, rate=48000) if audio_codec and audio_first else None
        video = out.add_stream(codec, rate=fps, options=options)
        video.width, video.height, video.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        video.codec_context.time_base = Fraction(1, fps)
        if b_frames:
            video.codec_context.max_b_frames = b_frames
        if audio_codec and not audio_first:
            audio = out.add_stream(audio_codec, rate=48000)
        if audio is not None:
            audio.layout = "stereo"
        for i in range(frames):
            frame = _video_frame(i).reformat(format="yuv420p")
            frame.pts = pts[i] if pts else i
            frame.time_base = Fraction(1, fps)
            out.mux(video.encode(frame))
        out.mux(video.encode(None))
        if audio is not None:
            seconds = ((pts[-1] if pts else frames) + 1) / fps
            for frame in _audio_frames(audio, seconds):
                out.mux(audio.encode(frame))
            out.mux(audio.encode(None))
    return path


def bframes_avi(path: Path, frames: int = 48) -> Path:
    """mpeg4 (as Xvid) with two B-frames between references, in AVI, with mp2 audio."""
    return _encode(path, codec="mpeg4", frames=frames, fps=24, b_frames=2, audio_codec="mp2",
                   options={"g": "12", "qscale": "3"})


def pts_equal_dts_mp4(path: Path, frames: int = 48) -> Path:
    """h264 with B-frames, remuxed packet for packet with each packet's pts set to its dts; aac audio
    is stream 0 and video stream 1."""
    source = _encode(path.with_name(path.stem + "_ordered.mp4"), codec="libx264", frames=frames, fps=30,
                     audio_codec="aac", audio_first=True, b_frames=3,
                     options={"g": "15", "bf": "3", "crf": "18", "preset": "veryfast"})
    with av.open(str(source)) as src, av.open(str(path), "w") as out:
        streams = {s.index: out.add_stream_from_template(s) for s in src.streams}
        for packet in src.demux():
            if packet.dts is None:
                continue
            if packet.stream.type == "video":
                packet.pts = packet.dts
            packet.stream = streams[packet.stream.index]
            out.mux(packet)
    source.unlink()
    return path


VFR_PTS = [0, 1, 2, 5, 6, 10, 11, 12, 13, 20, 21, 22, 23, 24, 30, 31, 32, 40, 41, 42]


def vfr_avi(path: Path) -> Path:
    """Variable frame rate in AVI: the muxer fills each gap with empty index entries (no audio)."""
    return _encode(path, codec="mpeg4", frames=len(VFR_PTS), fps=15, pts=VFR_PTS, audio_codec=None,
                   options={"g": "1000", "qscale": "3"})


def edit_list_mp4(path: Path, source: Path, start_s: float) -> Path:
    """A stream copy of ``source`` from ``start_s`` (between keyframes): the MP4 keeps the frames from
    the keyframe before the cut and an edit list hides them, so its header lists more than it shows."""
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-y", "-ss", str(start_s), "-i", str(source),
                    "-c", "copy", "-map", "0", str(path)], check=True)
    return path


@dataclass(frozen=True)
class ReferenceDecode:
    """FFmpeg's decode of a file's first video stream: pictures (N, H, W, 3) uint8 and times (s)."""

    images: np.ndarray
    times: list[float]


def ffmpeg_decode(path: Path, width: int, height: int, *, frames: str | None = None) -> ReferenceDecode:
    """Every frame as FFmpeg decodes it (``-vf showinfo`` for the times, rgb24 for the pictures, with
    accurate rounding and chroma interpolated from MPEG-2/H.264's default siting, co-sited with the left
    sample of each luma pair: FFmpeg's default conversion reads 4:2:0 1-2 code values low);
    ``frames`` 'a:b' keeps FFmpeg's frames a..b-1 (its own numbering, through the select filter)."""
    select = [f"select='between(n\\,{frames.split(':')[0]}\\,{int(frames.split(':')[1]) - 1})'"] if frames else []
    convert = "scale=flags=bilinear+accurate_rnd+full_chroma_int:in_h_chr_pos=0:in_v_chr_pos=128,format=rgb24"
    graph = ",".join([*select, "showinfo", convert])
    run = subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-i", str(path), "-map", "0:v:0",
                          "-vf", graph, "-fps_mode", "passthrough", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
                         capture_output=True, check=True)
    times = [float(t) for t in re.findall(r"pts_time:\s*(-?[\d.e+-]+)", run.stderr.decode())]
    images = np.frombuffer(run.stdout, np.uint8).reshape(-1, height, width, 3)
    assert len(images) == len(times)
    return ReferenceDecode(images, times)


def unmuxable(times: list[float]) -> set[int]:
    """Frames whose FFmpeg timestamp does not lie strictly between every earlier and every later one:
    no muxer takes them as they are, so a reader must repair them and they are not compared."""
    exempt = set()
    for i, t in enumerate(times):
        if any(t <= s for s in times[:i]) or any(t >= s for s in times[i + 1:]):
            exempt.add(i)
    return exempt


def audio_start_s(path: Path) -> float:
    """Time of the first audio packet of a file."""
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        for packet in container.demux(stream):
            if packet.pts is not None:
                return float(packet.pts * packet.time_base)
    raise AssertionError(f"no audio in {path}")
