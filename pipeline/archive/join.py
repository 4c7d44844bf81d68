"""Parts of one video into its deliverable, without re-encoding: packets copied part after part at the
source's timestamps, with the source's audio, timecode and colour tags; PNG frames moved into place.

A video that was one unit is already its deliverable (written as `process` writes it) and is renamed.
The deliverable is written under a temporary name and renamed when complete (``birefnet.atomic``).
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av

from birefnet.atomic import AtomicPath
from birefnet.errors import OutputError
from pipeline.audio import AudioCarrier, open_audio
from pipeline.encoders import MUXERS
from pipeline.sinks import DEFAULT_SEQUENCE_NAME, sequence_files
from pipeline.sinks.destination import destination
from pipeline.sinks.sequences import write_audio_sidecar
from pipeline.sources import open_source

AUDIO_LOOKAHEAD_S = 0.5  # audio muxed this far ahead of the video, as the sink does


@dataclass(frozen=True)
class Part:
    path: str
    pts_offset: int  # in the source's time base


def join_parts(parts: list[Part], output: str, source: str, audio: str, whole: bool) -> int:
    """Writes ``output`` from ``parts`` (in order); returns the frames in it."""
    final, extension = destination(output)
    sequence = extension == ".png"
    target = final.parent if sequence else final
    target.parent.mkdir(parents=True, exist_ok=True)
    if whole:
        return _rename_whole(Path(parts[0].path), target, sequence)
    if sequence:
        return _move_frames(parts, final, source if audio == "copy" else None)
    return _remux(parts, final, source, audio)


def _rename_whole(part: Path, target: Path, sequence: bool) -> int:
    if target.is_dir():
        shutil.rmtree(target)
    os.replace(part, target)
    if sequence:
        return len(sequence_files(target, DEFAULT_SEQUENCE_NAME))
    with av.open(str(target)) as joined:
        return sum(1 for p in joined.demux(joined.streams.video[0]) if p.size)


def _move_frames(parts: list[Part], final: Path, audio_source: str | None) -> int:
    """Frames are numbered by their source index already: each moves into the output folder; the
    source's audio goes beside them as the WAV `process` writes for a sequence."""
    final.parent.mkdir(parents=True, exist_ok=True)
    if audio_source is not None:
        with open_source(audio_source) as reader:
            info = reader.info
        if info.audio and info.kind == "file":
            try:
                write_audio_sidecar(final.parent, DEFAULT_SEQUENCE_NAME, info.path, info.start_s, False, None, True)
            except av.error.FFmpegError as exc:
                raise OutputError(f"writing the audio of {final.parent} failed: {exc.strerror or exc}") from None
    moved = 0
    for part in parts:
        for file in sequence_files(Path(part.path), DEFAULT_SEQUENCE_NAME):
            os.replace(file, final.parent / file.name)
            moved += 1
    return moved


def _remux(parts: list[Part], final: Path, source: str, audio: str) -> int:
    with open_source(source) as reader:
        info = reader.info
    file = AtomicPath(final)
    written = 0
    try:
        with av.open(str(file.temp), "w", format=MUXERS[final.suffix.lower()]) as out:
            with av.open(parts[0].path) as first:
                template = first.streams.video[0]
                stream = out.add_stream_from_template(template)
                stream.codec_context.codec_tag = template.codec_context.codec_tag  # ap4h stays ProRes 4444
            stream.codec_context.framerate = info.nominal_fps  # muxers need the rate to write a timecode track
            stream.time_base = info.time_base
            if info.timecode:
                stream.metadata["timecode"] = info.timecode
            audio_source = info.path if audio == "copy" and info.audio and info.kind == "file" else None
            carrier = open_audio(out, audio_source, start_s=info.start_s, partial=False)
            out.start_encoding()
            for part in parts:
                written += _copy_part(part, out, stream, info.time_base, carrier)
            if carrier is not None:
                carrier.finish(None)
                carrier.close()
    except BaseException as exc:
        file.discard()
        if isinstance(exc, av.error.FFmpegError):
            raise OutputError(f"joining {final} failed: {exc.strerror or exc}") from None
        raise
    file.commit()
    return written


def _copy_part(part: Part, out: av.container.OutputContainer, stream: av.VideoStream, time_base: Fraction,
               carrier: AudioCarrier | None) -> int:
    copied = 0
    with av.open(part.path) as container:
        video = container.streams.video[0]
        scale = Fraction(video.time_base or time_base) / time_base
        for packet in container.demux(video):
            if not packet.size or packet.pts is None:
                continue
            packet.pts = round(packet.pts * scale) + part.pts_offset
            packet.dts = packet.pts if packet.dts is None else round(packet.dts * scale) + part.pts_offset
            packet.duration = round((packet.duration or 0) * scale)
            packet.time_base = time_base
            packet.stream = stream
            out.mux(packet)
            copied += 1
            if carrier is not None:
                carrier.write_until(float(packet.pts * time_base) + AUDIO_LOOKAHEAD_S)
    return copied
