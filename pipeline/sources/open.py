"""``open_source``: the reader a spec names."""

from __future__ import annotations

from fractions import Fraction

from pipeline.media import FrameRange, check_frame_range, is_url
from pipeline.sources.containers import ContainerSource
from pipeline.sources.reader import VideoSource, check_bit_depth
from pipeline.sources.sequences import IMAGE2_FPS, ImageSequenceSource, is_image_sequence


def open_source(spec: str, *, frame_range: FrameRange | None = None, bit_depth: int = 8,
                fps: Fraction | float | None = None, loop: bool = False, alpha: bool = False,
                options: dict | None = None) -> VideoSource:
    """Open ``spec`` for streaming reads.

    ``frame_range`` (start, stop) counts frames from 0, stop exclusive or None. ``bit_depth`` 16 returns
    uint16 RGB (10/12-bit sources keep their precision); it can also be set on the open source, after
    looking at ``source.info``. ``fps`` is the rate of an image sequence (default: 25, as FFmpeg reads
    one). ``loop`` repeats the range for background videos. ``alpha`` returns RGBA pictures from
    containers with an alpha channel (reading back an output). ``options`` go to FFmpeg's demuxer
    (e.g. ``{"video_size": "1280x720", "framerate": "30"}`` for a camera).
    Raises InputError / ConfigError with one-line messages.
    """
    check_bit_depth(bit_depth)
    check_frame_range(frame_range)
    if spec.startswith("webcam:") or spec.startswith("/dev/video"):
        return ContainerSource(spec, kind="camera", frame_range=frame_range, bit_depth=bit_depth, loop=False,
                               options=options)
    if is_url(spec):
        return ContainerSource(spec, kind="stream", frame_range=frame_range, bit_depth=bit_depth, loop=loop,
                               alpha=alpha, options=options)
    if is_image_sequence(spec):
        return ImageSequenceSource(spec, fps=Fraction(fps or IMAGE2_FPS), frame_range=frame_range,
                                   bit_depth=bit_depth, loop=loop)
    return ContainerSource(spec, kind="file", frame_range=frame_range, bit_depth=bit_depth, loop=loop,
                           alpha=alpha, options=options)
