"""Encoding frames into one destination: a video file (with the input's audio) here; numbered image
files in ``sequences``.

Everything is written under the hidden temporary names of ``birefnet.atomic`` and renamed into place
by ``finish``, so a crash or ``discard`` never leaves a half-written file under a final name. All
methods but the constructor run on the sink's encode thread (an image sequence hands its frames on to a
few threads of its own, see ``sequences``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

import av
import numpy as np

from birefnet.atomic import AtomicPath
from birefnet.errors import ConfigError, OutputError
from pipeline.audio import open_audio
from pipeline.encoders import MUXERS, EncoderPlan, make_frame
from pipeline.media import numbered_files
from pipeline.sources import SourceInfo

log = logging.getLogger("birefnet_video")


@dataclass
class SinkSummary:
    path: str
    frames_written: int
    codec: str
    pix_fmt: str
    width: int
    height: int
    audio: list[str] = field(default_factory=list)
    alpha: str | None = None  # straight or premultiplied; None without alpha


def sequence_files(folder: Path, pattern: str) -> list[Path]:
    """Files in ``folder`` whose names fit the printf ``pattern``, by number."""
    return [path for _, path in numbered_files(folder, pattern)]


class Writer:
    """Encodes frames into one destination (``final``)."""

    def __init__(self, final: Path, info: SourceInfo, plan: EncoderPlan, model: str | None = None):
        self.final, self.info, self.plan, self.model = final, info, plan, model
        self.frames_written = 0

    def provenance(self) -> dict[str, str]:
        """What the output says about itself where its format has room: source, timecode, model, alpha."""
        facts = {"software": "birefnet-video", "source": Path(self.info.path).name}
        if self.info.timecode:
            facts["sourceTimecode"] = self.info.timecode
        if self.model:
            facts["model"] = self.model
        if self.plan.alpha_mode:
            facts["alpha"] = self.plan.alpha_mode
        return facts

    def write_frame(self, index: int, pts: int, rgb: np.ndarray | None, alpha: np.ndarray | None) -> None:
        raise NotImplementedError

    def finish(self) -> SinkSummary:
        raise NotImplementedError

    def discard(self) -> None:
        raise NotImplementedError

    def _frame(self, rgb: np.ndarray | None, alpha: np.ndarray | None) -> av.VideoFrame:
        return make_frame(self.plan, rgb, alpha)

    def _summary(self, audio: list[str]) -> SinkSummary:
        return SinkSummary(str(self.final), self.frames_written, self.plan.codec.key, self.plan.pix_fmt,
                           self.info.width + self.plan.pad[0], self.info.height + self.plan.pad[1], audio,
                           self.plan.alpha_mode)


class VideoFileWriter(Writer):
    """One container file: the video stream, plus the audio streams of ``audio_source``.

    ``faststart`` puts an MP4's index at the front (playable while it downloads); without it the
    file is written in one pass with the index at the end.
    """

    def __init__(self, final: Path, info: SourceInfo, plan: EncoderPlan, audio_source: str | None,
                 faststart: bool = True, model: str | None = None):
        super().__init__(final, info, plan, model)
        self.file = AtomicPath(final)
        muxer = MUXERS[final.suffix.lower()]
        options = {"movflags": "+faststart"} if muxer == "mp4" and faststart else {}
        try:
            self.container = av.open(str(self.file.temp), "w", format=muxer, options=options)
        except (av.error.FFmpegError, OSError) as exc:
            raise OutputError(f"cannot create {final}: {getattr(exc, 'strerror', None) or exc}") from None
        try:
            self.stream = self._add_video_stream()
            # no container has a field for straight/premultiplied: the comment says it (QuickTime ©cmt)
            self.container.metadata["comment"] = "; ".join(f"{k} {v}" for k, v in self.provenance().items())
            self.audio = open_audio(self.container, audio_source, start_s=info.start_s, partial=info.partial)
            self.container.start_encoding()
        except BaseException as exc:
            self.discard()
            if isinstance(exc, av.error.FFmpegError):
                raise ConfigError(f"encoder {plan.codec.encoder} refused the settings: {exc.strerror or exc}") from None
            raise
        self._last_pts: int | None = None

    def _add_video_stream(self) -> av.VideoStream:
        info, plan = self.info, self.plan
        stream = cast(av.VideoStream, self.container.add_stream(plan.codec.encoder, rate=info.nominal_fps,
                                                                  options=plan.options))
        ctx = stream.codec_context
        ctx.width, ctx.height = info.width + plan.pad[0], info.height + plan.pad[1]
        ctx.pix_fmt = plan.pix_fmt
        ctx.time_base = info.time_base
        stream.time_base = info.time_base
        ctx.thread_count = 0
        if plan.bit_rate:
            ctx.bit_rate = plan.bit_rate
        if info.sample_aspect_ratio and info.sample_aspect_ratio != 1:
            ctx.sample_aspect_ratio = info.sample_aspect_ratio
        plan.colour.tag(ctx)
        if plan.codec.key == "h265" and self.final.suffix.lower() in (".mp4", ".mov"):
            ctx.codec_tag = "hvc1"  # the tag QuickTime and Apple devices play
        if info.timecode:
            stream.metadata["timecode"] = info.timecode
        return stream

    def write_frame(self, index: int, pts: int, rgb: np.ndarray | None, alpha: np.ndarray | None) -> None:
        frame = self._frame(rgb, alpha)
        out_pts = pts - self.info.start_pts
        if self._last_pts is not None and out_pts <= self._last_pts:
            out_pts = self._last_pts + 1  # encoders refuse repeated timestamps
        self._last_pts = out_pts
        frame.pts = out_pts
        frame.time_base = self.info.time_base
        for packet in self.stream.encode(frame):
            self.container.mux(packet)
        self.frames_written += 1
        if self.audio is not None:  # a partial run's end is only known at close: no lookahead there
            lookahead = 0.0 if self.info.partial else 0.5
            self.audio.write_until(float(out_pts * self.info.time_base) + lookahead)

    def finish(self) -> SinkSummary:
        for packet in self.stream.encode(None):
            self.container.mux(packet)
        described = []
        if self.audio is not None:
            end_s = None
            if self.info.partial and self._last_pts is not None:
                end_s = float((self._last_pts + self.info.start_pts) * self.info.time_base + 1 / self.info.nominal_fps)
            self.audio.finish(end_s)
            described = self.audio.descriptions
            self.audio.close()
        self.container.close()
        self.file.commit()
        return self._summary(described)

    def discard(self) -> None:
        try:
            self.container.close()
        except Exception:  # the file is being thrown away; a failing trailer write changes nothing
            pass
        audio = getattr(self, "audio", None)  # None too when the constructor failed before opening it
        if audio is not None:
            audio.close()
        self.file.discard()
