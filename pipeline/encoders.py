"""Which encoder, pixel format and settings an output gets, and how RGB + alpha arrays become the
encoder's frames.

One table (``CODECS``) describes every codec we write; the output's extension picks the default
and ``--codec`` overrides it. Output kinds: ``rgba`` and ``foreground`` carry an alpha channel and
need an alpha-capable codec; ``composite`` is plain colour; ``picture`` is the input's own colours
untouched (the picture half of ``--output picture+matte``); ``matte`` is the alpha alone as gray.
PNG, EXR, DPX, TIFF and JPEG (no alpha) are numbered image sequences, or one image file for a still
input (``SEQUENCE_CODECS``); EXR is written with the OpenEXR library (``pipeline.sinks.exr``), the rest
with FFmpeg's encoders.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import av
import numpy as np

from birefnet.errors import ConfigError
from pipeline.chroma import plane_samples
from pipeline.colour import ColourInfo, rgb_to_frame

log = logging.getLogger("birefnet_video")
notes = logging.getLogger("birefnet_video.notes")  # remarks on the settings; --quiet mutes these only

OUTPUT_KINDS = ("rgba", "matte", "composite", "foreground", "picture")
ALPHA_KINDS = ("rgba", "foreground")
ALPHA_MODES = ("straight", "premultiplied")
EXR_DEPTHS = ("half", "float")
# OpenEXR compressions we offer, by the name users type; zips (zlib, one scanline per block) is what
# Nuke's Write node defaults to and reads fastest, lossless like zip (16 lines) and piz (wavelet, best on
# grain); dwaa is lossy (DCT) and small
EXR_COMPRESSIONS = ("zips", "zip", "piz", "dwaa", "rle", "none")

PRORES_PROFILES = {"proxy": 0, "lt": 1, "standard": 2, "hq": 3, "4444": 4, "4444xq": 5, "xq": 5}


@dataclass(frozen=True)
class CodecSpec:
    """A codec we write. Pixel formats are keyed by bit depth (8, 16) of the arrays handed in;
    ``alpha`` is None for codecs without an alpha channel."""

    key: str
    encoder: str
    extensions: tuple[str, ...]
    colour: dict
    matte: dict
    alpha: dict | None = None
    even_size: bool = False  # 4:2:0 encoder that rejects odd widths/heights
    cosited_chroma: bool = False  # its decoders read subsampled chroma as standing on the even columns
    defaults: dict = field(default_factory=dict)


CODECS = {
    "prores": CodecSpec("prores", "prores_ks", (".mov", ".mkv"),
                        colour={8: "yuv422p10le", 16: "yuv422p10le"}, matte={8: "yuv422p10le", 16: "yuv422p10le"},
                        alpha={8: "yuva444p10le", 16: "yuva444p10le"}, cosited_chroma=True,
                        defaults={"vendor": "apl0"}),
    "vp9": CodecSpec("vp9", "libvpx-vp9", (".webm", ".mkv"),
                     colour={8: "yuv420p", 16: "yuv420p10le"}, matte={8: "yuv420p", 16: "yuv420p10le"},
                     alpha={8: "yuva420p", 16: "yuva420p"},
                     defaults={"crf": "30", "b": "0", "row-mt": "1", "cpu-used": "4", "deadline": "good"}),
    "h264": CodecSpec("h264", "libx264", (".mp4", ".mov", ".mkv"),
                      colour={8: "yuv420p", 16: "yuv420p10le"}, matte={8: "yuv420p", 16: "yuv420p10le"},
                      even_size=True, cosited_chroma=True, defaults={"crf": "18", "preset": "medium"}),
    "h265": CodecSpec("h265", "libx265", (".mp4", ".mov", ".mkv"),
                      colour={8: "yuv420p", 16: "yuv420p10le"}, matte={8: "yuv420p", 16: "yuv420p10le"},
                      even_size=True, cosited_chroma=True,
                      defaults={"crf": "20", "preset": "medium", "x265-params": "log-level=error"}),
    "ffv1": CodecSpec("ffv1", "ffv1", (".mkv", ".avi"),
                      colour={8: "bgr0", 16: "gbrp16le"}, matte={8: "gray", 16: "gray16le"},
                      alpha={8: "bgra", 16: "gbrap16le"}, defaults={"level": "3", "slicecrc": "1", "g": "1"}),
    "qtrle": CodecSpec("qtrle", "qtrle", (".mov",),
                       colour={8: "rgb24", 16: "rgb24"}, matte={8: "gray", 16: "gray"},
                       alpha={8: "argb", 16: "argb"}),
    "png": CodecSpec("png", "png", (".png",),
                     colour={8: "rgb24", 16: "rgb48be"}, matte={8: "gray", 16: "gray16be"},
                     alpha={8: "rgba", 16: "rgba64be"}),
    # float RGB(A) in linear light; the pixel formats only name the layout, the writer stores half or float
    "exr": CodecSpec("exr", "openexr", (".exr",),
                     colour={8: "gbrpf32le", 16: "gbrpf32le"}, matte={8: "grayf32le", 16: "grayf32le"},
                     alpha={8: "gbrapf32le", 16: "gbrapf32le"}, defaults={"depth": "half", "compression": "zips"}),
    # 10-bit RGB for colour (the DPX film standard); FFmpeg's 10-bit layout has no alpha, so RGBA is 16-bit
    "dpx": CodecSpec("dpx", "dpx", (".dpx",),
                     colour={8: "gbrp10le", 16: "gbrp10le"}, matte={8: "gray16le", 16: "gray16le"},
                     alpha={8: "rgba64le", 16: "rgba64le"}),
    "tiff": CodecSpec("tiff", "tiff", (".tif", ".tiff"),
                      colour={8: "rgb48le", 16: "rgb48le"}, matte={8: "gray16le", 16: "gray16le"},
                      alpha={8: "rgba64le", 16: "rgba64le"}),
    # baseline JPEG for colour pictures and mattes (no alpha); full-range 4:4:4, as stills are
    "jpeg": CodecSpec("jpeg", "mjpeg", (".jpg", ".jpeg"), colour={8: "yuvj444p", 16: "yuvj444p"},
                      matte={8: "yuvj444p", 16: "yuvj444p"},
                      defaults={"flags": "+qscale", "global_quality": "236"}),  # qscale 2 (x FF_QP2LAMBDA 118)
}
SEQUENCE_CODECS = ("png", "exr", "dpx", "tiff", "jpeg")
CODEC_ALIASES = {"prores_ks": "prores", "prores4444": "prores", "libvpx-vp9": "vp9", "libx264": "h264",
                 "avc": "h264", "libx265": "h265", "hevc": "h265", "animation": "qtrle"}
DEFAULT_CODEC = {".mov": "prores", ".webm": "vp9", ".mp4": "h264", ".mkv": "ffv1", ".avi": "ffv1", ".png": "png",
                 ".exr": "exr", ".dpx": "dpx", ".tif": "tiff", ".tiff": "tiff", ".jpg": "jpeg", ".jpeg": "jpeg"}
# what editors make of an alpha output in each codec (Premiere reads neither VP9 alpha nor Animation)
EDITOR_NOTES = {"vp9": "VP9 alpha (.webm) is for browsers; editors (Premiere, Resolve, Final Cut) want ProRes 4444 "
                       "(.mov)",
                "qtrle": "QuickTime Animation alpha is not read by Premiere; ProRes 4444 (.mov) is the editor-safe "
                         "choice"}
MUXERS = {".mov": "mov", ".mp4": "mp4", ".webm": "webm", ".mkv": "matroska", ".avi": "avi"}

# libvpx speed for x264-style preset names (cpu-used: higher is faster)
VP9_PRESETS = {"ultrafast": 8, "superfast": 7, "veryfast": 6, "faster": 5, "fast": 4, "medium": 3,
               "slow": 2, "slower": 1, "veryslow": 0}


@dataclass
class EncoderPlan:
    """Everything the writer needs to set up an encoder."""

    codec: CodecSpec
    output: str
    pix_fmt: str
    options: dict
    bit_rate: int | None
    colour: ColourInfo
    pad: tuple[int, int] = (0, 0)  # extra columns, rows (odd size into an even-only encoder)
    has_alpha: bool = False
    alpha_mode: str | None = None  # straight or premultiplied (None without alpha)

    @property
    def premultiplied(self) -> bool:
        return self.alpha_mode == "premultiplied"


def resolve_codec(name: str | None, extension: str, output: str) -> CodecSpec:
    """The codec for ``--codec`` (or the extension's default), checked against the output kind."""
    if output not in OUTPUT_KINDS:
        raise ConfigError(f"unknown output kind {output!r}; choose from {', '.join(OUTPUT_KINDS)}")
    if name:
        key = CODEC_ALIASES.get(name.lower(), name.lower())
        if key not in CODECS:
            raise ConfigError(f"unknown codec {name!r}; choose from {', '.join(CODECS)}")
    else:
        default = DEFAULT_CODEC.get(extension)
        if default is None:
            raise ConfigError(f"cannot tell the output format from {extension or 'no extension'!r}; use "
                              f"{', '.join(DEFAULT_CODEC)} or a sequence pattern such as plate.####.exr")
        key = default
    spec = CODECS[key]
    if extension not in spec.extensions:
        raise ConfigError(f"codec {spec.key} cannot be written to a {extension or 'folder'} output; "
                          f"use {' or '.join(spec.extensions)}")
    if output in ALPHA_KINDS and spec.alpha is None:
        raise ConfigError(f"codec {spec.key} cannot carry alpha (output {output!r}); use ProRes 4444 (.mov), "
                          "VP9 (.webm), FFV1 (.mkv), QuickTime Animation, or a PNG, EXR, DPX or TIFF sequence")
    return spec


def plan_encoder(spec: CodecSpec, *, output: str, width: int, height: int, bit_depth: int,
                 colour: ColourInfo, crf=None, preset=None, bitrate=None, prores_profile=None,
                 alpha: str | None = None, exr_depth: str | None = None,
                 exr_compression: str | None = None) -> EncoderPlan:
    """Pick pixel format, colour tags and encoder options; warn about what had to change.

    ``alpha``: straight or premultiplied colour (None: premultiplied for EXR, the OpenEXR convention,
    straight for everything else)."""
    has_alpha = output in ALPHA_KINDS
    table = spec.alpha if has_alpha else (spec.matte if output == "matte" else spec.colour)
    if table is None:  # resolve_codec refuses these combinations
        raise ConfigError(f"codec {spec.key} cannot write a {output} output")
    pix_fmt = table[bit_depth]
    options = dict(spec.defaults)
    alpha_mode = _alpha_mode(spec, has_alpha, output, alpha)
    if spec.key == "exr":
        options["depth"] = _choice("EXR depth", exr_depth or options["depth"], EXR_DEPTHS)
        options["compression"] = _choice("EXR compression", exr_compression or options["compression"],
                                         EXR_COMPRESSIONS)
    elif exr_depth is not None or exr_compression is not None:
        notes.warning("EXR depth and compression have no effect on %s", spec.key)
    if has_alpha and spec.key in EDITOR_NOTES:
        notes.warning("note: %s", EDITOR_NOTES[spec.key])
    if spec.key == "prores":
        profile = _prores_profile(prores_profile, has_alpha)
        if profile >= 4 and not has_alpha:
            pix_fmt = "yuv444p10le"
        options["profile"] = str(profile)
    elif prores_profile is not None:
        raise ConfigError(f"a ProRes profile was given but the codec is {spec.key}")
    if crf is not None:
        if spec.key not in ("h264", "h265", "vp9"):
            notes.warning("--crf has no effect on %s", spec.key)
        else:
            options["crf"] = str(crf)
    if preset is not None:
        if spec.key in ("h264", "h265"):
            options["preset"] = str(preset)
        elif spec.key == "vp9":
            options["cpu-used"] = str(VP9_PRESETS.get(str(preset), preset))
        else:
            notes.warning("--preset has no effect on %s", spec.key)
    bit_rate = _parse_bitrate(bitrate) if bitrate is not None else None
    if bit_rate is not None:
        options.pop("crf", None)
        options.pop("b", None)
    fmt = av.VideoFormat(pix_fmt)
    if fmt.is_rgb or pix_fmt.startswith("gray"):
        colour = ColourInfo(colour.primaries, colour.transfer, 0, True)  # RGB / gray: no matrix, full
    elif spec.key == "jpeg":
        colour = ColourInfo(colour.primaries, colour.transfer, colour.matrix, True)  # JFIF is full range
    elif spec.key == "prores" and colour.full_range:
        colour = ColourInfo(colour.primaries, colour.transfer, colour.matrix, False)  # ProRes is video range
    if bit_depth == 16 and max(c.bits for c in fmt.components) <= 8:
        log.warning("%s stores 8 bits per channel; the 16-bit picture is rounded to 8 bits", spec.key)
    pad = (0, 0)
    if spec.even_size and (width % 2 or height % 2):
        pad = (width % 2, height % 2)
        log.warning("%s %s cannot take the odd size %dx%d; padded to %dx%d by repeating the edge "
                    "(ProRes, FFV1 or PNG keep the exact size)", spec.key, pix_fmt, width, height,
                    width + pad[0], height + pad[1])
    return EncoderPlan(spec, output, pix_fmt, options, bit_rate, colour, pad, has_alpha, alpha_mode)


def _choice(what: str, value: str, allowed: tuple[str, ...]) -> str:
    spelled = str(value).lower()
    if spelled not in allowed:
        raise ConfigError(f"unknown {what} {value!r}; choose from {', '.join(allowed)}")
    return spelled


def _alpha_mode(spec: CodecSpec, has_alpha: bool, output: str, alpha: str | None) -> str | None:
    if not has_alpha:
        if alpha is not None:
            notes.warning("--alpha %s has no effect on a %s output", alpha, output)
        return None
    if alpha is None:
        return "premultiplied" if spec.key == "exr" else "straight"
    mode = _choice("alpha mode", alpha, ALPHA_MODES)
    if mode == "premultiplied" and spec.key == "png":
        log.warning("PNG alpha is straight by definition; readers will show this premultiplied PNG too dark at edges")
    return mode


def _prores_profile(value, has_alpha: bool) -> int:
    if value is None:
        return 4 if has_alpha else 3
    key = str(value).lower().replace(" ", "")
    profile = PRORES_PROFILES.get(key, int(key) if key.isdigit() else -1)
    if profile not in range(6):
        raise ConfigError(f"unknown ProRes profile {value!r}; use {', '.join(PRORES_PROFILES)} or 0-5")
    if has_alpha and profile < 4:
        raise ConfigError(f"ProRes profile {value!r} has no alpha channel; use 4444 or 4444xq")
    return profile


def _parse_bitrate(value) -> int:
    text = str(value).strip().lower()
    scale = {"k": 1_000, "m": 1_000_000, "g": 1_000_000_000}.get(text[-1:], 1)
    try:
        rate = int(float(text.rstrip("kmg")) * scale)
    except ValueError:
        raise ConfigError(f"not a bitrate: {value!r} (e.g. 8M, 2500k)") from None
    if rate <= 0:
        raise ConfigError(f"bitrate must be positive: {value!r}")
    return rate


# ---------------------------------------------------------------------------- frame preparation

def scale_bits(values: np.ndarray, bits: int) -> np.ndarray:
    """uint8/uint16 (or float in [0, 1]) samples -> integers of ``bits`` bits, rounded."""
    if values.dtype.kind == "f":
        top = (1 << bits) - 1
        return (np.clip(values, 0.0, 1.0) * top + 0.5).astype(np.uint16 if bits > 8 else np.uint8)
    src_bits = 8 if values.dtype == np.uint8 else 16
    if src_bits == bits:
        return values
    if src_bits == 8 and bits == 10:  # bit replication: exact inverse of the usual 10 -> 8 shift
        wide = values.astype(np.uint16)
        return (wide << 2) | (wide >> 6)
    if src_bits == 8 and bits == 16:
        return values.astype(np.uint16) * 257
    top_src, top = (1 << src_bits) - 1, (1 << bits) - 1
    scaled = (values.astype(np.uint32) * top + top_src // 2) // top_src
    return scaled.astype(np.uint16 if bits > 8 else np.uint8)


def premultiply(rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Colour times alpha (rounded), in the colour's own integer type."""
    top = np.iinfo(rgb.dtype).max
    a = scale_bits(alpha, 8 if rgb.dtype == np.uint8 else 16).astype(np.uint32)
    return ((rgb.astype(np.uint32) * a[..., None] + top // 2) // top).astype(rgb.dtype)


def pad_edges(image: np.ndarray, pad: tuple[int, int]) -> np.ndarray:
    if pad == (0, 0):
        return image
    widths = [(0, pad[1]), (0, pad[0])] + [(0, 0)] * (image.ndim - 2)
    return np.pad(image, widths, mode="edge")


def matte_frame(alpha: np.ndarray, pix_fmt: str, colour: ColourInfo) -> av.VideoFrame:
    """Alpha (H, W) as a grayscale picture: the luma plane carries alpha (scaled into the video
    range for limited-range YUV), chroma planes sit at neutral grey. Written directly, because
    swscale's gray <-> YUV path truncates instead of rounding."""
    fmt = av.VideoFormat(pix_fmt)
    if fmt.is_rgb or pix_fmt.startswith("gray"):
        gray = scale_bits(alpha, 16) if alpha.dtype.kind == "f" else alpha
        return rgb_to_frame(gray, pix_fmt, colour)
    bits = fmt.components[0].bits
    frame = av.VideoFrame(alpha.shape[1], alpha.shape[0], pix_fmt)
    if colour.full_range:
        luma = scale_bits(alpha, bits)
    else:  # Y' = 16..235 (scaled to the bit depth)
        unit = 1 << (bits - 8)
        luma = (scale_bits(alpha, 16).astype(np.uint32) * (219 * unit) + 32767) // 65535 + 16 * unit
    for index, plane in enumerate(frame.planes):
        plane_samples(plane, bits)[...] = luma if index == 0 else (1 << (bits - 1))
    colour.tag(frame)
    return frame


def make_frame(plan: EncoderPlan, rgb: np.ndarray | None, alpha: np.ndarray | None) -> av.VideoFrame:
    """One picture (rgb (H, W, 3), alpha (H, W)) -> a VideoFrame in the plan's pixel format.

    Planar alpha formats (yuva*, gbrap*) get the alpha written straight into their alpha plane after
    the colour conversion; packed ones (argb, bgra, rgba64) are assembled as RGBA first.
    """
    if plan.output == "matte":
        assert alpha is not None, "a matte output is written from alpha"
        return matte_frame(pad_edges(alpha, plan.pad), plan.pix_fmt, plan.colour)
    assert rgb is not None, f"a {plan.output} output is written from colour"
    fmt = av.VideoFormat(plan.pix_fmt)
    if fmt.is_rgb and rgb.dtype == np.uint8 and fmt.components[0].bits > 8:
        rgb = scale_bits(rgb, 16)  # exact x257; swscale's 8 -> 10/16-bit RGB shifts instead (255 -> 1020)
    cosited = plan.codec.cosited_chroma
    if not plan.has_alpha:
        return rgb_to_frame(pad_edges(rgb, plan.pad), plan.pix_fmt, plan.colour, cosited)
    assert alpha is not None, f"a {plan.output} output carries alpha"
    if plan.premultiplied:
        rgb = premultiply(rgb, alpha)
    alpha_component = fmt.components[-1]
    if fmt.is_planar:
        frame = rgb_to_frame(rgb, plan.pix_fmt, plan.colour, cosited)
        plane = frame.planes[alpha_component.plane]
        plane_samples(plane, alpha_component.bits)[...] = scale_bits(alpha, alpha_component.bits)
        return frame
    rgba = np.empty(rgb.shape[:2] + (4,), rgb.dtype)
    rgba[..., :3] = rgb
    rgba[..., 3] = scale_bits(alpha, 8 if rgb.dtype == np.uint8 else 16)
    return rgb_to_frame(rgba, plan.pix_fmt, plan.colour, cosited)
