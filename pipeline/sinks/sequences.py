"""Numbered image sequences: PNG, OpenEXR, DPX and TIFF files, ``name.####.ext``, one per frame.

Numbers: a numbered input keeps its own frame numbers; otherwise frame 0 of the input is
``start_number`` (1001 by default, the VFX convention) or the frame count of the input's timecode, and a
``--frames`` range keeps the numbers the frames have in the whole input. Every file stays under its
hidden temporary name until the sequence is complete; the input's audio goes to a WAV file beside them.
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Callable
from pathlib import Path
from typing import cast

import av
import numpy as np

from birefnet.atomic import AtomicPath
from birefnet.errors import ConfigError, OutputError
from pipeline.audio import open_audio
from pipeline.encoders import EncoderPlan
from pipeline.media import (
    DEFAULT_START_NUMBER,
    PRINTF_NUMBER,
    shift_timecode,
    timecode_to_frames,
)
from pipeline.sinks.exr import ExrFrames
from pipeline.sinks.writers import SinkSummary, Writer, sequence_files
from pipeline.sources import SourceInfo

log = logging.getLogger("birefnet_video")

DPX_GENERIC_HEADER = 1664  # file + image + orientation headers: all FFmpeg's encoder writes (SMPTE 268M)
DPX_FILM_HEADER, DPX_TV_HEADER = 256, 128  # the industry headers; the TV one holds the SMPTE timecode
TIFF_EXTRA_SAMPLES = 338  # 1: associated (premultiplied) alpha, 2: unassociated (straight)


def frame_numbering(info: SourceInfo, start_number: int | str | None) -> Callable[[int], int]:
    """Input frame index -> file number (see the module docstring); ``start_number`` 'timecode' takes the
    number from the input's timecode."""
    if start_number is None and info.frame_numbers:
        numbers = info.frame_numbers
        return lambda index: numbers[index]
    if start_number == "timecode":
        if not info.timecode:
            raise ConfigError(f"start_number: {info.path} has no timecode to number the frames from")
        start = timecode_to_frames(info.timecode, info.nominal_fps) - info.start_index
    else:
        start = DEFAULT_START_NUMBER if start_number is None else int(start_number)
    if start + info.start_index < 0:
        raise ConfigError(f"start_number: frame numbers would be negative (first {start + info.start_index})")
    return lambda index: start + index


def _bcd(value: int) -> int:
    return (value // 10) << 4 | value % 10


def dpx_with_timecode(data: bytes, timecode: str, fps: float) -> bytes:
    """FFmpeg's DPX with the film and television headers added, the latter holding the frame's SMPTE
    timecode and rate (FFmpeg writes neither); offsets and sizes in the file header move to match."""
    order = ">" if data[:4] == b"SDPX" else "<"
    u32 = struct.Struct(order + "I")
    (image_offset,) = u32.unpack_from(data, 4)
    if image_offset != DPX_GENERIC_HEADER:
        return data  # not the layout we know: leave it as it is
    hh, mm, ss, ff = (int(part) for part in timecode.replace(";", ":").split(":"))
    industry = bytearray(b"\xff" * (DPX_FILM_HEADER + DPX_TV_HEADER))  # all bits set: 'undefined' in DPX
    industry[:36] = bytes(36)  # the film header's text fields, empty
    tv = DPX_FILM_HEADER
    u32.pack_into(industry, tv, _bcd(hh) << 24 | _bcd(mm) << 16 | _bcd(ss) << 8 | _bcd(ff))
    struct.pack_into(order + "f", industry, tv + 20, fps)  # temporal sampling rate
    header = bytearray(data[:DPX_GENERIC_HEADER])
    grown = len(industry)
    u32.pack_into(header, 4, image_offset + grown)
    u32.pack_into(header, 16, len(data) + grown)
    u32.pack_into(header, 28, grown)  # industry header size
    (element_offset,) = u32.unpack_from(header, 808)
    u32.pack_into(header, 808, element_offset + grown)
    return bytes(header) + bytes(industry) + data[DPX_GENERIC_HEADER:]


def tiff_with_alpha_kind(data: bytes, premultiplied: bool) -> bytes:
    """FFmpeg's TIFF with ExtraSamples saying associated (premultiplied) or unassociated (straight) alpha."""
    order = "<" if data[:2] == b"II" else ">"
    (ifd,) = struct.unpack(order + "I", data[4:8])
    (count,) = struct.unpack(order + "H", data[ifd:ifd + 2])
    for entry in range(ifd + 2, ifd + 2 + 12 * count, 12):
        if struct.unpack(order + "H", data[entry:entry + 2])[0] == TIFF_EXTRA_SAMPLES:
            value = struct.pack(order + "H", 1 if premultiplied else 2)
            return data[:entry + 8] + value + data[entry + 10:]
    return data


class FfmpegImageFrames:
    """Frames encoded by one of FFmpeg's image encoders (png, dpx, tiff) into bytes."""

    def __init__(self, plan: EncoderPlan, info: SourceInfo):
        encoder = cast(av.VideoCodecContext, av.CodecContext.create(plan.codec.encoder, "w"))
        encoder.width, encoder.height, encoder.pix_fmt = info.width, info.height, plan.pix_fmt
        encoder.time_base = info.time_base
        encoder.options = dict(plan.options)
        plan.colour.tag(encoder)
        self.encoder, self.plan, self.fps = encoder, plan, info.nominal_fps

    def write(self, path: Path, frame: av.VideoFrame, timecode: str | None) -> None:
        data = b"".join(bytes(p) for p in self.encoder.encode(frame))
        if self.plan.codec.key == "dpx" and timecode:
            data = dpx_with_timecode(data, timecode, float(self.fps))
        if self.plan.codec.key == "tiff" and self.plan.has_alpha:
            data = tiff_with_alpha_kind(data, self.plan.premultiplied)
        path.write_bytes(data)


class ImageSequenceWriter(Writer):
    """Numbered image files, each under its temporary name until the sequence is complete."""

    def __init__(self, final: Path, info: SourceInfo, plan: EncoderPlan, audio_source: str | None,
                 overwrite: bool, *, start_number: int | str | None = None, model: str | None = None):
        super().__init__(final, info, plan, model)
        self.folder, self.pattern = final.parent, final.name
        self.single = not PRINTF_NUMBER.search(final.name)  # one still image: the file name as given
        self.overwrite = overwrite
        self.audio_source = audio_source
        self.files: list[AtomicPath] = []
        self.number = frame_numbering(info, start_number)
        self.exr: ExrFrames | None = None
        self.images: FfmpegImageFrames | None = None
        if plan.codec.key == "exr":
            self.exr = ExrFrames(plan, info.nominal_fps, self.provenance())
        else:
            self.images = FfmpegImageFrames(plan, info)

    def write_frame(self, index: int, pts: int, rgb: np.ndarray | None, alpha: np.ndarray | None) -> None:
        if self.single and self.files:
            raise OutputError(f"{self.final} is one image file, and a second frame came; use a pattern or a folder")
        name = self.pattern if self.single else self.pattern % self.number(index)
        file = AtomicPath(self.folder / name)
        self.files.append(file)
        timecode = shift_timecode(self.info.timecode, index - self.info.start_index, self.info.nominal_fps)
        if self.exr is not None:
            self.exr.write(file.temp, rgb, alpha, timecode)
        elif self.images is not None:
            self.images.write(file.temp, self._frame(rgb, alpha), timecode)
        self.frames_written += 1

    def finish(self) -> SinkSummary:
        if self.overwrite and not self.single:
            ours = {file.final.name for file in self.files}
            for stale in sequence_files(self.folder, self.pattern):
                if stale.name not in ours:
                    stale.unlink()
        described = self._write_audio()
        for file in self.files:
            file.commit()
        return self._summary(described)

    def _write_audio(self) -> list[str]:
        if not self.audio_source:
            return []
        end_s = None
        if self.info.partial and self.files:
            end_s = self.info.start_s + self.frames_written / float(self.info.nominal_fps)
        return write_audio_sidecar(self.folder, self.pattern, self.audio_source, self.info.start_s,
                                   self.info.partial, end_s, self.overwrite)

    def discard(self) -> None:
        for file in self.files:
            file.discard()


def write_audio_sidecar(folder: Path, pattern: str, source: str, start_s: float, partial: bool,
                        end_s: float | None, overwrite: bool) -> list[str]:
    """``source``'s audio from ``start_s`` (to ``end_s``, None: its end) as ``<name>.wav`` beside the frames
    of ``pattern`` in ``folder`` (image sequences hold no sound); what was carried, described."""
    stem = PRINTF_NUMBER.split(pattern)[0].rstrip("_.- ") or "audio"
    file = AtomicPath(folder / f"{stem}.wav")
    if file.final.exists() and not overwrite:
        log.warning("audio not written: %s exists (use overwrite)", file.final)
        return []
    try:
        with av.open(str(file.temp), "w", format="wav") as out:
            carrier = open_audio(out, source, start_s=start_s, partial=partial, reencode=True)
            if carrier is None:
                described = []
            else:
                carrier.finish(end_s)
                described = [f"{d} -> {file.final.name}" for d in carrier.descriptions]
                carrier.close()
    except BaseException:
        file.discard()
        raise
    if described:
        file.commit()
    else:
        file.discard()
    return described
