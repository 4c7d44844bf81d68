"""``open_sink``: check the destination, choose the encoder, start the writer and its encode thread."""

from __future__ import annotations

import logging
from pathlib import Path

from birefnet.errors import ConfigError
from pipeline.encoders import SEQUENCE_CODECS, CodecSpec, plan_encoder, resolve_codec
from pipeline.media import PRINTF_NUMBER
from pipeline.sinks.destination import check_destination, destination, remove_empty_dirs
from pipeline.sinks.sequences import ImageSequenceWriter
from pipeline.sinks.sink import Sink
from pipeline.sinks.writers import VideoFileWriter, Writer
from pipeline.sources import SourceInfo

log = logging.getLogger("birefnet_video")


def is_still(info: SourceInfo) -> bool:
    """One image file in (not a folder or pattern of them): one image file may come out."""
    return info.kind == "sequence" and info.frame_count == 1 and Path(info.path).is_file()


def numbered_files(spec: CodecSpec, final: Path) -> bool:
    """Whether ``final`` is a pattern of numbered image files (else one file: a video or one still)."""
    return spec.key in SEQUENCE_CODECS and bool(PRINTF_NUMBER.search(final.name))


def open_sink(path: str, info: SourceInfo, *, output: str = "rgba", codec: str | None = None,
              crf: int | None = None, preset: str | None = None, bitrate: str | int | None = None,
              prores_profile: str | int | None = None, bit_depth: int = 8, alpha: str | None = None,
              audio: str = "copy", audio_source: str | None = None, overwrite: bool = False,
              faststart: bool = True, exr_depth: str | None = None, exr_compression: str | None = None,
              start_number: int | str | None = None, model: str | None = None) -> Sink:
    """Start writing ``path`` for frames described by ``info`` (size, rate, colour, timecode, audio).

    ``output``: 'rgba' / 'foreground' (colour + alpha; needs ProRes 4444, VP9, FFV1, QuickTime
    Animation or PNG), 'composite' (colour only), 'matte' (alpha as grayscale). ``codec`` overrides
    the extension's default (.mov ProRes, .webm VP9, .mp4 H.264, .mkv FFV1, folder or %d pattern PNG).
    ``bit_depth`` is that of the arrays you will write (16: uint16, kept where the codec can).
    ``audio`` 'copy' carries the audio of ``audio_source`` (default: the input file) — copied when the
    container takes its codec, else re-encoded; 'drop' writes none. ``faststart``: an MP4's index at
    the front of the file (see ``VideoFileWriter``). ``alpha``: straight or premultiplied colour (None:
    the format's convention, premultiplied for EXR, straight elsewhere). Sequences (PNG, EXR, DPX, TIFF:
    a ``plate.####.exr`` or ``%04d`` pattern) number their files from ``start_number`` (see
    ``sinks.sequences``); a single image input may name one image file instead (``photo_rgba.png``).
    ``model`` is named in the output's metadata.
    Raises ConfigError (bad settings) or OutputError (destination problems) with one-line messages.
    """
    if audio not in ("copy", "drop"):
        raise ConfigError(f"audio must be 'copy' or 'drop', got {audio!r}")
    if bit_depth not in (8, 16):
        raise ConfigError(f"bit depth must be 8 or 16, got {bit_depth}")
    final, extension = destination(path, codec, still=is_still(info))
    spec = resolve_codec(codec, extension, output)
    sequence = spec.key in SEQUENCE_CODECS
    created, claim = check_destination(final, info, overwrite, numbered_files(spec, final))
    writer: Writer
    try:
        plan = plan_encoder(spec, output=output, width=info.width, height=info.height, bit_depth=bit_depth,
                            colour=info.colour, crf=crf, preset=preset, bitrate=bitrate,
                            prores_profile=prores_profile, alpha=alpha, exr_depth=exr_depth,
                            exr_compression=exr_compression)
        if audio == "drop":
            audio_source = None
        elif audio_source is None and info.audio and info.kind == "file":
            audio_source = info.path
        if sequence:
            writer = ImageSequenceWriter(final, info, plan, audio_source, overwrite, start_number=start_number,
                                         model=model)
        else:
            writer = VideoFileWriter(final, info, plan, audio_source, faststart, model)
    except BaseException:
        claim.release()
        remove_empty_dirs(final.parent, created)
        raise
    return Sink(writer, created, claim)
