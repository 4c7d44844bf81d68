"""Subsampled chroma (4:2:0, 4:2:2) for codecs whose chroma stands on the even luma columns (co-sited:
MPEG-2, H.264, HEVC, ProRes, DNxHD; 4:2:0 between the rows), from 4:4:4.

swscale places chroma where the frame's tag says and, untagged, between the luma columns (JPEG's
convention). Reading is a matter of tags: H.264, HEVC and MPEG-2 decoders tag their frames, and the
ProRes and DNxHD decoders, which do not, are told the siting (``pipeline.sources.containers``); untold,
a ProRes 422 plate's chroma stood half a pixel to the right. The frames we encode cannot be tagged
through PyAV, so an H.264 or ProRes 422 output would get chroma sited for JPEG, which its decoders then
read half a pixel off (a colour ramp came back 2 code values off). Such frames are converted to 4:4:4
by swscale, where no chroma is resampled, and subsampled here.

The weights are those of linear interpolation from the co-sited samples: [1, 2, 1] / 4 around each even
column and, for 4:2:0, the mean of each pair of rows, as FFmpeg's scaler uses when told the siting.
OpenCV filters at the plane's own depth and rounds to nearest; at 1080p that costs a few ms a plane.
"""

from __future__ import annotations

import re

import av
import cv2
import numpy as np

_PLANAR = re.compile(r"(yuva?|yuvj)(420|422)p(\d+le)?$")


def full_chroma_format(pix_fmt: str) -> str | None:
    """The 4:4:4 twin (same depth, range and alpha) of a planar 4:2:0 / 4:2:2 format; None for other layouts."""
    match = _PLANAR.match(pix_fmt)
    return None if match is None else f"{match.group(1)}444p{match.group(3) or ''}"


def from_444(frame: av.VideoFrame, pix_fmt: str) -> av.VideoFrame:
    """``frame``, in the 4:4:4 twin of the planar 4:2:0 / 4:2:2 ``pix_fmt``, in ``pix_fmt``: its chroma
    averaged onto the co-sited samples' places (on smooth chroma, what linear interpolation from them gives
    back)."""
    out = av.VideoFrame(frame.width, frame.height, pix_fmt)
    bits = out.format.components[0].bits
    for index, plane in enumerate(out.planes):
        samples = plane_samples(frame.planes[index], bits)
        if index in (1, 2):
            samples = _downsampled(samples, vertical=plane.height < frame.height)
        plane_samples(plane, bits)[:] = samples
    return out


def plane_samples(plane: av.video.plane.VideoPlane, bits: int) -> np.ndarray:
    """The (height, width) samples of a planar frame's ``plane`` of ``bits``-bit components (uint8, or
    uint16 above 8 bits), a writable view of the frame's memory."""
    dtype = np.uint16 if bits > 8 else np.uint8
    stride = plane.line_size // np.dtype(dtype).itemsize
    return np.frombuffer(memoryview(plane), dtype).reshape(plane.height, stride)[:, :plane.width]


def _downsampled(samples: np.ndarray, vertical: bool) -> np.ndarray:
    """4:4:4 chroma ``samples`` halved across (and with ``vertical`` down), rounded to nearest:
    [1, 2, 1] / 4 around each even column, the mean of each pair of rows; mirrored at the edges."""
    across = np.array([0.25, 0.5, 0.25], np.float32)
    down = np.array([0.5, 0.5] if vertical else [1.0], np.float32)
    out = cv2.sepFilter2D(samples, -1, across, down, anchor=(1, 0), borderType=cv2.BORDER_REFLECT_101)
    return out[0::2, 0::2] if vertical else out[:, 0::2]
