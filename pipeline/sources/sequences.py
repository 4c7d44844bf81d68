"""Reading an image sequence: a folder of images, a glob (``shots/*.png``), a printf or hash pattern
(``shot_%05d.png``, ``plate.####.exr``) or one image file; png, jpg, tiff, dpx, exr..., 8 or 16 bit.

The n-th file in frame order is frame n, shown at the rate the caller gives (image files carry none);
the numbers in the file names (any start) are kept in ``SourceInfo.frame_numbers`` for the outputs.
DPX is decoded by FFmpeg, EXR by OpenEXR (linear light re-encoded with the transfer its header names).
"""

from __future__ import annotations

import glob
import logging
import re
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import numpy as np

from birefnet.errors import InputError
from birefnet.pixels import to_uint8
from pipeline.colour import TRANSFER_CODES, ColourInfo, from_linear
from pipeline.media import FrameRange, file_number, is_numbered_name, numbered_files, printf_name
from pipeline.sources.probe import SourceInfo
from pipeline.sources.reader import DecodedFrame, VideoSource

log = logging.getLogger("birefnet_video")

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".exr", ".webp", ".dpx")
IMAGE2_FPS = Fraction(25)  # the rate FFmpeg's image2 reader gives a sequence when none is set


def is_image_sequence(spec: str) -> bool:
    path = Path(spec)
    if path.is_dir() or is_numbered_name(path.name) or any(ch in spec for ch in "*?["):
        return True
    return path.suffix.lower() in IMAGE_EXTENSIONS


def sequence_files(spec: str) -> list[Path]:
    """The images a folder, glob or printf pattern names, in frame order."""
    path = Path(spec)
    if path.is_dir():
        files = [p for p in path.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith(".")]
        if files:
            common = max({p.suffix.lower() for p in files}, key=lambda s: sum(p.suffix.lower() == s for p in files))
            files = [p for p in files if p.suffix.lower() == common]
        return sorted(files, key=_natural_key)
    if is_numbered_name(path.name):
        return [p for _, p in numbered_files(path.parent, printf_name(path.name))]
    return sorted((Path(p) for p in glob.glob(spec)), key=_natural_key)


def _natural_key(path: Path) -> list[int | str]:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", path.name)]


def frame_numbers(files: list[Path]) -> tuple[int, ...]:
    """The number each file's name carries, when all carry one in increasing order (else ())."""
    numbers = [file_number(p.stem) for p in files]
    if None in numbers or any(b <= a for a, b in zip(numbers, numbers[1:], strict=False)):  # type: ignore[operator]
        return ()
    return tuple(numbers)  # type: ignore[arg-type]


def _load(path: Path) -> np.ndarray | None:
    """An image file as stored (any channel count and sample type, BGR order as OpenCV gives it);
    None when it cannot be read."""
    suffix = path.suffix.lower()
    if suffix == ".exr":
        return _load_exr(path)
    if suffix == ".dpx":
        import av

        try:
            with av.open(str(path)) as container:
                return next(container.decode(video=0)).to_ndarray(format="bgr48le")
        except (av.error.FFmpegError, StopIteration):
            return None
    import cv2

    return cv2.imread(str(path), cv2.IMREAD_UNCHANGED)


def _load_exr(path: Path) -> np.ndarray | None:
    """An EXR's RGB as float in [0, 1] (BGR order), encoded with the transfer our header names (else sRGB,
    what a viewer shows linear light with)."""
    try:
        import OpenEXR

        with OpenEXR.File(str(path)) as image:  # header and pixels are freed when the file closes
            header, channels = dict(image.header()), image.channels()
            name = next((n for n in ("RGBA", "RGB") if n in channels), next(iter(channels)))
            planes = np.array(channels[name].pixels)
    except (ImportError, OSError, RuntimeError, KeyError, StopIteration):
        return None
    rgb = np.atleast_3d(planes)[..., :3].astype(np.float32)
    transfer = TRANSFER_CODES.get(str(header.get("birefnet:sourceTransfer", "iec61966-2-1")), 13)
    if str(header.get("birefnet:colourSpace", "linear")).startswith("linear"):
        rgb = from_linear(rgb, transfer)
    return np.ascontiguousarray(rgb[..., ::-1])


def _to_rgb(image: np.ndarray, bit_depth: int) -> np.ndarray:
    """A loaded image as (H, W, 3) RGB at ``bit_depth``."""
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    rgb = image[..., 2::-1] if image.shape[2] >= 3 else np.repeat(image[..., :1], 3, axis=2)
    if rgb.dtype == np.uint8:
        return np.ascontiguousarray(rgb) if bit_depth == 8 else rgb.astype(np.uint16) * 257
    if rgb.dtype == np.uint16:
        return np.ascontiguousarray(rgb) if bit_depth == 16 else to_uint8(rgb)
    scale = 255.0 if bit_depth == 8 else 65535.0  # float EXR/TIFF: [0, 1] linear-as-given
    return (np.clip(rgb, 0.0, 1.0) * scale + 0.5).astype(np.uint8 if bit_depth == 8 else np.uint16)


class ImageSequenceSource(VideoSource):
    """Numbered images read with OpenCV; the n-th file (in frame order) is frame n, at ``fps``.

    An unreadable image, or one whose size differs from the first, is counted in ``frames_bad``
    and skipped. Each file is read once per pass (the first readable one serves the probe too).
    """

    def __init__(self, spec: str, *, fps: Fraction, frame_range: FrameRange | None = None, bit_depth: int = 8,
                 loop: bool = False):
        super().__init__(loop=loop, bit_depth=bit_depth)
        self.spec = spec
        files = sequence_files(spec)
        if not files:
            raise InputError(f"no images found for {spec}")
        fps = Fraction(fps).limit_denominator(1001)
        start, stop = 0, len(files)
        if frame_range:
            start, stop = frame_range[0], min(stop, frame_range[1] if frame_range[1] is not None else stop)
        if start >= stop:
            raise InputError(f"no frames in the requested range of {spec} ({len(files)} images)")
        self._files, self._start, self._stop = files, start, stop
        numbers = frame_numbers(files)
        first_index, first = self._first_readable()
        self._loaded: tuple[int, np.ndarray] | None = (first_index, first)
        height, width = first.shape[:2]
        deep = first.dtype != np.uint8
        partial = bool(frame_range)
        self.info = SourceInfo(
            path=spec, kind="sequence", container="image2", codec=files[start].suffix.lower().lstrip("."),
            pix_fmt="rgb48le" if deep else "rgb24", width=width, height=height, fps=fps, nominal_fps=fps,
            time_base=1 / fps, frame_count=stop - start, frame_count_exact=True,
            duration_s=len(files) / float(fps),
            colour=ColourInfo(primaries=1, transfer=13, full_range=False).resolved(height),
            bit_depth=16 if deep else 8, start_pts=start if partial else 0, start_index=start,
            stop_index=stop, partial=partial, frame_numbers=numbers,
        )

    def _first_readable(self) -> tuple[int, np.ndarray]:
        for index in range(self._start, self._stop):
            image = _load(self._files[index])
            if image is not None:
                return index, image
        raise InputError(f"none of the images of {self.spec} could be read")

    def _frames_once(self) -> Iterator[DecodedFrame]:
        shape = (self.info.height, self.info.width, 3)
        loaded, self._loaded = self._loaded, None
        for index in range(self._start, self._stop):
            path = self._files[index]
            image = loaded[1] if loaded is not None and loaded[0] == index else _load(path)
            rgb = None if image is None else _to_rgb(image, self.bit_depth)
            if rgb is None or rgb.shape != shape:
                self.frames_bad += 1
                why = "unreadable" if rgb is None else f"size {rgb.shape[1]}x{rgb.shape[0]} differs"
                log.warning("%s: %s, skipped", path, why)
                continue
            yield DecodedFrame(index, index, rgb)

    def _rewind(self) -> bool:
        return True
