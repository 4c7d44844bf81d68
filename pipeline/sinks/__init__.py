"""Video writers: an encoded video file (alpha, matte or composite, with the input's audio) or a PNG
sequence, fed from a background encode thread.

``open_sink(path, info, ...)`` checks the destination (``destination``: exists, same as input,
directory missing or unwritable), picks the codec from the extension or ``codec``, and starts a
``Sink`` (``sink``: the encode thread behind a bounded channel) around a writer (``writers``). The
file is written under a hidden temporary name and renamed when complete, so a crash or ``abort()``
never leaves a half-written file under the final name.

Alpha is straight (unpremultiplied) by default, which is what ProRes 4444, VP9, PNG and TIFF readers
expect, and premultiplied for OpenEXR (its convention); ``alpha='premultiplied'|'straight'`` chooses.
Image sequences (PNG, EXR, DPX, TIFF) live in ``sequences`` (EXR frames in ``exr``).
"""

from pipeline.sinks.destination import DEFAULT_SEQUENCE_NAME
from pipeline.sinks.open import open_sink
from pipeline.sinks.sequences import ImageSequenceWriter
from pipeline.sinks.sink import Sink
from pipeline.sinks.writers import SinkSummary, VideoFileWriter, sequence_files

__all__ = ["Sink", "SinkSummary", "open_sink", "VideoFileWriter", "ImageSequenceWriter", "DEFAULT_SEQUENCE_NAME",
           "sequence_files"]
