"""Small media facts shared by sources, sinks and the settings, one module per idea.

``opening`` (URLs, opening a container with one-line errors), ``ranges`` (the ``--frames A:B`` range),
``numbering`` (printf-numbered file names such as ``shot_%05d.png``) and ``timecode`` (SMPTE arithmetic).
The names below are the package's public surface.
"""

from pipeline.media.numbering import (
    DEFAULT_START_NUMBER,
    PRINTF_NUMBER,
    file_number,
    is_numbered_name,
    numbered_files,
    printf_name,
)
from pipeline.media.opening import STREAM_SCHEMES, is_url, open_input
from pipeline.media.ranges import FrameRange, check_frame_range, parse_frame_range
from pipeline.media.timecode import frames_to_timecode, shift_timecode, timecode_to_frames

__all__ = ["DEFAULT_START_NUMBER", "PRINTF_NUMBER", "file_number", "is_numbered_name", "numbered_files", "printf_name",
           "STREAM_SCHEMES", "is_url", "open_input", "FrameRange",
           "check_frame_range", "parse_frame_range", "frames_to_timecode", "shift_timecode", "timecode_to_frames"]
