"""Video readers: a file or network stream, an image sequence, a camera, frames made in memory.

``open_source(spec, ...)`` picks the reader from the spec:

* ``webcam:N`` or ``/dev/videoN``: a camera (V4L2 on Linux, AVFoundation on macOS, DirectShow on Windows);
* a folder of images, a glob (``shots/*.png``) or a printf pattern (``shot_%05d.png``), or one
  image file: an image sequence (png, jpg, tiff, 8 or 16 bit);
* anything else: a file or URL PyAV opens (mp4, mov, mkv, webm, avi, mxf, rtsp/http streams).

Modules: ``probe`` (``SourceInfo``: what the input is, learned from the open reader), ``reader`` (the
``VideoSource`` interface: frames, batches, looping), ``timing`` (frame index and timestamp of each
decoded picture), ``containers``, ``sequences`` and ``generated`` (the readers), ``open`` (the choice).

Reading a background video for compositing: ``open_source(path, loop=True)`` and pull ``frames()`` as
needed (it rewinds at the end forever); stop pulling to trim.
"""

from pipeline.sources.containers import ContainerSource
from pipeline.sources.generated import ArraySource
from pipeline.sources.open import open_source
from pipeline.sources.probe import AudioStreamInfo, SourceInfo
from pipeline.sources.reader import DecodedFrame, VideoSource
from pipeline.sources.sequences import ImageSequenceSource, is_image_sequence

__all__ = ["SourceInfo", "AudioStreamInfo", "VideoSource", "DecodedFrame", "ContainerSource",
           "ImageSequenceSource", "ArraySource", "is_image_sequence", "open_source"]
