"""Colour metadata of a video (primaries, transfer, matrix, range) and the YUV <-> RGB conversions
that honour it.

Decoders hand over YUV tagged (or not) with the matrix it was encoded with; converting with the wrong
matrix shifts every colour (BT.601 vs BT.709 differ by up to ~10 code values on saturated colours).
We therefore resolve the input's tags once, fill gaps the way players do (BT.709 for HD, BT.601 for
SD), use the result for decoding, and tag and convert the output with the same values.
Values are FFmpeg's enum numbers (AVColorPrimaries, AVColorTransferCharacteristic, AVColorSpace).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import av
import cv2
import numpy as np
from av.video.reformatter import ColorRange, Colorspace, Interpolation

from pipeline.chroma import from_444, full_chroma_format

UNSPECIFIED = 2  # same number in all three FFmpeg enums

# AVColorSpace -> swscale's matrix choice (swscale knows five matrices; the rest map to their kin)
_SWSCALE_MATRIX = {
    1: Colorspace.ITU709,
    4: Colorspace.FCC,
    5: Colorspace.ITU601,  # BT.470BG
    6: Colorspace.ITU601,  # SMPTE 170M, same coefficients
    7: Colorspace.SMPTE240M,
    9: Colorspace.BT2020,  # BT.2020 non-constant luminance
    10: Colorspace.BT2020,  # constant luminance: nearest swscale has
}

# swscale's default YUV -> RGB path for subsampled chroma (4:2:0, 4:2:2) is a fast approximation that
# lands 1-2 code values low on every colour (a flat 4:2:0 (120, 180, 60) read back as (118, 178, 58);
# 10-bit 4:2:2 read to 8 bits 1.1-1.4 low on average). Accurate rounding with full horizontal chroma
# interpolation is the exact inverse, for 2-12 ms (1080p) to 5-53 ms (4K) more per frame (docs/benchmarks.md,
# "Exact YUV -> RGB").
EXACT = Interpolation.BILINEAR | Interpolation.ACCURATE_RND | Interpolation.FULL_CHR_H_INT

_NAMES = {
    "primaries": {1: "bt709", 2: "unknown", 4: "bt470m", 5: "bt470bg", 6: "smpte170m", 7: "smpte240m",
                  8: "film", 9: "bt2020", 11: "smpte431", 12: "smpte432"},
    "transfer": {1: "bt709", 2: "unknown", 4: "gamma22", 5: "gamma28", 6: "smpte170m", 7: "smpte240m",
                 8: "linear", 13: "iec61966-2-1", 14: "bt2020-10", 15: "bt2020-12", 16: "smpte2084",
                 18: "arib-std-b67"},
    "matrix": {0: "gbr", 1: "bt709", 2: "unknown", 4: "fcc", 5: "bt470bg", 6: "smpte170m",
               7: "smpte240m", 9: "bt2020nc", 10: "bt2020c"},
}


@dataclass(frozen=True)
class ColourInfo:
    """Colour description of a picture; ``full_range`` is JPEG/PC range (0-255) vs limited (16-235)."""

    primaries: int = UNSPECIFIED
    transfer: int = UNSPECIFIED
    matrix: int = UNSPECIFIED
    full_range: bool = False

    @classmethod
    def from_frame(cls, frame: av.VideoFrame) -> ColourInfo:
        """Tags as decoded; full-range 'yuvj' pixel formats count as full range even when untagged."""
        full = frame.color_range == ColorRange.JPEG or frame.format.name.startswith("yuvj")
        return cls(int(frame.color_primaries), int(frame.color_trc), int(frame.colorspace), bool(full))

    def resolved(self, height: int) -> ColourInfo:
        """Fill unspecified fields the way players guess: BT.709 for HD (>= 720 lines), else BT.601."""
        hd = height >= 720
        primaries = self.primaries if self.primaries != UNSPECIFIED else (1 if hd else 6)
        transfer = self.transfer if self.transfer != UNSPECIFIED else (1 if hd else 6)
        matrix = self.matrix if self.matrix in _SWSCALE_MATRIX else (1 if hd else 6)
        return ColourInfo(primaries, transfer, matrix, self.full_range)

    @property
    def swscale_matrix(self) -> Colorspace:
        """The matrix to convert with; an untagged picture converts as FFmpeg converts untagged ones (BT.601)."""
        return _SWSCALE_MATRIX.get(self.matrix, Colorspace.ITU601)

    @property
    def swscale_range(self) -> ColorRange:
        return ColorRange.JPEG if self.full_range else ColorRange.MPEG

    def describe(self) -> str:
        """Short human form, e.g. 'bt709/bt709/bt709 limited'."""
        return "{}/{}/{} {}".format(
            _NAMES["primaries"].get(self.primaries, str(self.primaries)),
            _NAMES["transfer"].get(self.transfer, str(self.transfer)),
            _NAMES["matrix"].get(self.matrix, str(self.matrix)),
            "full" if self.full_range else "limited",
        )

    def tag(self, target) -> None:
        """Write these tags on a VideoFrame or an encoder's codec context."""
        target.color_primaries = self.primaries
        target.color_trc = self.transfer
        target.colorspace = self.matrix
        target.color_range = int(self.swscale_range)


def frame_to_rgb(frame: av.VideoFrame, colour: ColourInfo, bit_depth: int = 8, alpha: bool = False) -> np.ndarray:
    """Decoded frame -> (H, W, 3) full-range RGB (``alpha``: (H, W, 4) RGBA), uint8 or (bit_depth=16)
    uint16, using ``colour``'s matrix and range rather than swscale's BT.601 default for untagged input;
    subsampled chroma is read where the frame's chroma-location tag puts it."""
    if alpha:
        fmt = "rgba" if bit_depth == 8 else "rgba64le"
    else:
        fmt = "rgb24" if bit_depth == 8 else "rgb48le"
    if frame.format.is_rgb:
        return frame.to_ndarray(format=fmt, interpolation=EXACT)
    if bit_depth == 16 and frame.format.chroma_height(frame.height) < frame.height:
        # swscale's accurate path from vertically subsampled chroma (4:2:0, NV12, P010) to 16-bit RGB gets
        # green wrong (a 10-bit near-white pixel read 37109 for 65170); from 4:2:2 and 4:4:4 it is exact, so
        # such frames take their chroma to 4:4:4 first (tests/test_sources.py checks each layout)
        frame = frame.reformat(format="yuva444p16le" if len(frame.format.components) == 4 else "yuv444p16le",
                               interpolation=EXACT)
    rgb = frame.to_ndarray(format=fmt, interpolation=EXACT, **yuv_to_rgb_options(colour))
    gain = _rgb16_gain(frame.format.name, colour) if bit_depth == 16 else 1.0
    return _scaled_colour(rgb, gain)


def rgb_to_frame(rgb: np.ndarray, pix_fmt: str, colour: ColourInfo, cosited_chroma: bool = False) -> av.VideoFrame:
    """(H, W, 3|4) RGB(A) or (H, W) gray array, uint8 or uint16 -> VideoFrame in ``pix_fmt``,
    converted with ``colour``'s matrix/range and tagged with all of ``colour``'s fields; subsampled chroma
    with ``cosited_chroma`` on the even columns, as the codec's decoders will read it (``pipeline.chroma``),
    else where swscale puts untagged chroma, between them.

    The array is wrapped without a copy (16-bit colour into YUV is first scaled, see ``_rgb16_gain``);
    swscale writes the result into a new frame.
    """
    target = av.VideoFormat(pix_fmt)
    plain = target.is_rgb or pix_fmt.startswith("gray")
    full_chroma = full_chroma_format(pix_fmt) if cosited_chroma and not plain else None
    if rgb.dtype == np.uint16 and rgb.ndim == 3 and not plain:
        rgb = _scaled_colour(rgb, 1.0 / _rgb16_gain(full_chroma or pix_fmt, colour))
    if rgb.ndim == 2:
        src_fmt = "gray" if rgb.dtype == np.uint8 else "gray16le"
    elif rgb.shape[2] == 3:
        src_fmt = "rgb24" if rgb.dtype == np.uint8 else "rgb48le"
    else:
        src_fmt = "rgba" if rgb.dtype == np.uint8 else "rgba64le"
    source = av.VideoFrame.from_numpy_buffer(np.ascontiguousarray(rgb), format=src_fmt)
    if plain:
        frame = source.reformat(format=pix_fmt, interpolation=EXACT)
    else:
        frame = source.reformat(format=full_chroma or pix_fmt, dst_colorspace=colour.swscale_matrix,
                                interpolation=EXACT, **_rgb_to_yuv(colour))
        if full_chroma:
            frame = from_444(frame, pix_fmt)
    colour.tag(frame)
    return frame


def yuv_to_rgb_options(colour: ColourInfo) -> dict:
    """swscale's settings for reading YUV tagged ``colour`` as full-range RGB (flags aside: see ``EXACT``)."""
    return {"src_colorspace": colour.swscale_matrix, "src_color_range": colour.swscale_range,
            "dst_color_range": ColorRange.JPEG}


def _rgb_to_yuv(colour: ColourInfo) -> dict:
    return {"src_colorspace": colour.swscale_matrix, "src_color_range": ColorRange.JPEG,
            "dst_color_range": colour.swscale_range}


@functools.cache
def _rgb16_gain(pix_fmt: str, colour: ColourInfo) -> float:
    """What swscale's 16-bit RGB from YUV ``pix_fmt`` must be multiplied by for white to read 65535.

    swscale takes 16-bit RGB as 8.8 fixed point: YUV white reads as about 65283 (0.39% dark) and 65535
    writes as super-white (10-bit Y 943 for 940), so EXR and DPX from a 10-bit plate would lose 0.4% and
    a composite's own colours would come out bright. Measured once per format on a white frame, so a
    swscale that maps white to 65535 gets a gain of 1 and no extra pass."""
    layout = av.VideoFormat(pix_fmt)
    bits = layout.components[0].bits
    white = (1 << bits) - 1 if colour.full_range else 235 << (bits - 8)
    frame = av.VideoFrame(16, 16, pix_fmt)
    for index, plane in enumerate(frame.planes):  # Y white, chroma neutral, alpha opaque
        value = white if index == 0 else (1 << bits) - 1 if index == 3 else 128 << (bits - 8)
        plane.update(np.full(plane.buffer_size // (2 if bits > 8 else 1), value,
                             np.uint16 if bits > 8 else np.uint8).tobytes())
    read = frame.to_ndarray(format="rgb48le", interpolation=EXACT, **yuv_to_rgb_options(colour))
    gain = 65535.0 / float(read.mean())
    return 1.0 if abs(gain - 1.0) < 1e-4 else gain


def _scaled_colour(rgb: np.ndarray, gain: float) -> np.ndarray:
    """``rgb`` (H, W, 3|4) with its colour channels times ``gain``, rounded and saturated; alpha as it is."""
    if gain == 1.0:
        return rgb
    return cv2.multiply(rgb, (gain, gain, gain, 1.0), dtype=cv2.CV_16U)


# ---------------------------------------------------------------------------- linear light (EXR)

def _bt709_to_linear(v: np.ndarray) -> np.ndarray:
    return np.where(v < 0.081, v / 4.5, ((v + 0.099) / 1.099) ** (1 / 0.45))


def _bt709_from_linear(light: np.ndarray) -> np.ndarray:
    return np.where(light < 0.018, light * 4.5, 1.099 * np.maximum(light, 0.018) ** 0.45 - 0.099)


def _srgb_to_linear(v: np.ndarray) -> np.ndarray:
    return np.where(v <= 0.04045, v / 12.92, ((v + 0.055) / 1.055) ** 2.4)


def _srgb_from_linear(light: np.ndarray) -> np.ndarray:
    return np.where(light <= 0.0031308, light * 12.92, 1.055 * np.maximum(light, 0.0031308) ** (1 / 2.4) - 0.055)


def _smpte240m_to_linear(v: np.ndarray) -> np.ndarray:
    return np.where(v < 0.0913, v / 4.0, ((v + 0.1115) / 1.1115) ** (1 / 0.45))


def _smpte240m_from_linear(light: np.ndarray) -> np.ndarray:
    return np.where(light < 0.0228, light * 4.0, 1.1115 * np.maximum(light, 0.0228) ** 0.45 - 0.1115)


def _power(exponent: float):
    return lambda v: np.maximum(v, 0.0) ** exponent


def _identity(v: np.ndarray) -> np.ndarray:
    return v


# AVColorTransferCharacteristic -> (encoded -> linear, linear -> encoded). BT.709-family curves are undone
# with the inverse camera OETF (scene light), as Nuke's 'rec709' colourspace does; PQ and HLG are absent.
TRANSFER_CURVES = {
    1: (_bt709_to_linear, _bt709_from_linear), 6: (_bt709_to_linear, _bt709_from_linear),
    14: (_bt709_to_linear, _bt709_from_linear), 15: (_bt709_to_linear, _bt709_from_linear),
    7: (_smpte240m_to_linear, _smpte240m_from_linear),
    13: (_srgb_to_linear, _srgb_from_linear),
    4: (_power(2.2), _power(1 / 2.2)), 5: (_power(2.8), _power(1 / 2.8)),
    8: (_identity, _identity),
}
TRANSFER_CODES = {name: code for code, name in _NAMES["transfer"].items()}

# AVColorPrimaries -> OpenEXR colorInteropID of linear light in those primaries (Color Interop Forum names)
LINEAR_INTEROP_IDS = {1: "lin_rec709_scene", 9: "lin_rec2020_scene", 12: "lin_p3d65_scene"}


def transfer_name(code: int) -> str:
    return _NAMES["transfer"].get(code, str(code))


def primaries_name(code: int) -> str:
    return _NAMES["primaries"].get(code, str(code))


def to_linear(values: np.ndarray, transfer: int) -> tuple[np.ndarray, bool]:
    """Encoded [0, 1] samples -> linear light (float32), and whether the curve was known (else unchanged)."""
    curves = TRANSFER_CURVES.get(transfer)
    if curves is None:
        return values.astype(np.float32, copy=False), False
    return curves[0](values.astype(np.float32, copy=False)).astype(np.float32, copy=False), True


def from_linear(values: np.ndarray, transfer: int) -> np.ndarray:
    """Linear light -> samples encoded with ``transfer`` (float32); an unknown curve leaves them as they are."""
    curves = TRANSFER_CURVES.get(transfer)
    values = values.astype(np.float32, copy=False)
    return values if curves is None else curves[1](values).astype(np.float32, copy=False)
