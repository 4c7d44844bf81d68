"""Everything about a job that can be checked in a second, checked before Ray or the model start.

Starting the workers takes 15-30 s, so a missing input or an unwritable output found only after that
wastes the user's time. ``check_job`` opens (probes) the input and checks each output the job writes
as the sink will, without creating, claiming or removing anything; the sink checks again when it
opens, since the disk can change in between.
"""

from __future__ import annotations

from collections.abc import Sequence

from pipeline.settings.process import ProcessConfig
from pipeline.sources import SourceInfo


def is_live_input(spec: str) -> bool:
    """A camera or network stream: probing it would open it twice (and a camera may refuse)."""
    from pipeline.media import is_url

    return spec.startswith("webcam:") or spec.startswith("/dev/video") or is_url(spec)


def probe_input(spec: str, config: ProcessConfig) -> SourceInfo | None:
    """The input's ``SourceInfo`` (None for a live input); ``InputError`` for a missing, unreadable or
    undecodable one, ``ConfigError`` for a frame range it does not have."""
    from pipeline.media import parse_frame_range
    from pipeline.sources import open_source

    if is_live_input(spec):
        return None
    frame_range = parse_frame_range(config.frames) if config.frames else None
    source = open_source(spec, frame_range=frame_range, fps=config.sequence_fps)
    try:
        return source.info
    finally:
        source.close()


def check_job(spec: str, outputs: Sequence[tuple[str, ProcessConfig]], config: ProcessConfig) -> SourceInfo | None:
    """Probe the input ``spec`` and check each (output path, its settings) it is written to; returns the
    input's info (None: live input). Raises the ``InputError`` / ``OutputError`` / ``ConfigError`` the
    run would meet later."""
    from pipeline.encoders import resolve_codec
    from pipeline.sinks.destination import check_before_start, destination
    from pipeline.sinks.open import is_still, numbered_files

    info = probe_input(spec, config)
    for path, settings in outputs:
        final, extension = destination(path, settings.codec, still=info is not None and is_still(info))
        codec = resolve_codec(settings.codec, extension, settings.output)
        check_before_start(final, info, settings.overwrite, numbered_files(codec, final))
    return info
