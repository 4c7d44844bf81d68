"""Composites of the matted foreground over a new background: a colour, an image, a video or a blur.

Blending happens in linear light: sRGB values are decoded to linear, mixed as alpha * F + (1 - alpha) * B,
and encoded back. Mixing encoded sRGB values instead darkens soft edges (hair looks dark-fringed);
``linear_light=False`` restores that plain sRGB blend for matching other tools. Options: light wrap
(background light spilling over the foreground's edges), edge feathering (softening the alpha), and
fit/fill/stretch for image and video backgrounds. Frames come as numpy (computed on the CPU via torch)
or as torch tensors (computed on their device); the result has the foreground's container and dtype.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from birefnet.errors import ConfigError, InputError
from birefnet.pixels import box_filter

NAMED_COLOURS = {"green": (0, 255, 0), "blue": (0, 0, 255), "black": (0, 0, 0), "white": (255, 255, 255)}
FITS = ("fill", "fit", "stretch")
VIDEO_SUFFIXES = {".mp4", ".mov", ".mkv", ".webm", ".avi", ".m4v", ".mxf", ".gif"}


# ------------------------------------------------------------------------------------- helpers


def srgb_to_linear(x: torch.Tensor) -> torch.Tensor:
    """IEC 61966-2-1 sRGB decoding of values in [0, 1]."""
    return torch.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4)


def linear_to_srgb(x: torch.Tensor) -> torch.Tensor:
    """IEC 61966-2-1 sRGB encoding of values in [0, 1]."""
    x = x.clamp(0.0, 1.0)
    return torch.where(x <= 0.0031308, x * 12.92, 1.055 * x.clamp_min(1e-12) ** (1 / 2.4) - 0.055)


def _peak(dtype) -> float:
    if dtype in (np.uint8, torch.uint8):
        return 255.0
    if dtype in (np.uint16, torch.uint16):
        return 65535.0
    return 1.0


def _to_unit_float(x: np.ndarray | torch.Tensor, device: torch.device) -> torch.Tensor:
    """Values scaled to [0, 1] as float32 on ``device``."""
    tensor = x if isinstance(x, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(x))
    peak = _peak(x.dtype)
    if tensor.dtype == torch.uint16:  # few ops support uint16: go through int32
        tensor = tensor.to(torch.int32)
    return tensor.to(device=device, dtype=torch.float32) / peak


def soft_blur(x: torch.Tensor, radius: float) -> torch.Tensor:
    """Near-Gaussian blur of (N, C, H, W): two box passes of ~``radius``, computed at reduced
    resolution when the radius is large (cheap at any size)."""
    if radius < 1:
        return x
    height, width = x.shape[-2:]
    factor = max(1, int(radius // 4))
    small = F.avg_pool2d(x, factor, ceil_mode=True) if factor > 1 else x
    size = max(1, int(round(radius / factor)))
    small = box_filter(box_filter(small, size), size)
    return F.interpolate(small, size=(height, width), mode="bilinear", align_corners=False) if factor > 1 else small


def resize_to(image: np.ndarray, size: tuple[int, int], fit: str) -> np.ndarray:
    """``image`` (h, w, 3) brought to ``size`` (H, W): ``stretch`` distorts, ``fill`` scales to cover
    and crops the centre, ``fit`` scales to fit inside and pads with black."""
    if fit not in FITS:
        raise ConfigError(f"background fit must be one of {', '.join(FITS)}, got {fit!r}")
    height, width = size
    h, w = image.shape[:2]
    if fit == "stretch" or (h, w) == (height, width):
        return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA if h > height else cv2.INTER_LINEAR)
    scale = (max if fit == "fill" else min)(height / h, width / w)
    new_h, new_w = max(1, round(h * scale)), max(1, round(w * scale))
    resized = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    if fit == "fill":
        top, left = (new_h - height) // 2, (new_w - width) // 2
        return np.ascontiguousarray(resized[top : top + height, left : left + width])
    out = np.zeros((height, width, 3), image.dtype)
    top, left = (height - new_h) // 2, (width - new_w) // 2
    out[top : top + new_h, left : left + new_w] = resized
    return out


def parse_colour(spec: str) -> tuple[int, int, int]:
    """'#RRGGBB' or a name in NAMED_COLOURS -> (r, g, b) 0-255."""
    text = spec.strip().lower()
    if text in NAMED_COLOURS:
        return NAMED_COLOURS[text]
    if len(text) == 7 and text.startswith("#"):
        try:
            return tuple(int(text[i : i + 2], 16) for i in (1, 3, 5))  # type: ignore[return-value]
        except ValueError:
            pass
    raise ConfigError(f"not a colour: {spec!r} (expected '#RRGGBB' or one of {', '.join(NAMED_COLOURS)})")


# --------------------------------------------------------------------------------- backgrounds


class ColourBackground:
    def __init__(self, rgb: tuple[int, int, int]):
        self.rgb = rgb

    def frames(self, n: int, size: tuple[int, int], index: int, device: torch.device) -> torch.Tensor:
        colour = torch.tensor(self.rgb, dtype=torch.float32, device=device) / 255.0
        return colour.view(1, 3, 1, 1).expand(n, 3, *size)


class ImageBackground:
    """A still image, fitted to the frame size once per size."""

    def __init__(self, path: str, fit: str):
        image = cv2.imread(path, cv2.IMREAD_COLOR | cv2.IMREAD_ANYDEPTH)
        if image is None:
            raise InputError(f"background image {path} could not be read")
        self.image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
        self.fit = fit
        self._cache: tuple[tuple[int, int], torch.Tensor] | None = None

    def frames(self, n: int, size: tuple[int, int], index: int, device: torch.device) -> torch.Tensor:
        if self._cache is None or self._cache[0] != size or self._cache[1].device != device:
            fitted = resize_to(self.image, size, self.fit)
            self._cache = (size, _to_unit_float(fitted, device).permute(2, 0, 1)[None])
        return self._cache[1].expand(n, -1, -1, -1)


class VideoBackground:
    """Another video, read in step with the foreground: looped when shorter, trimmed when longer."""

    def __init__(self, path: str, fit: str):
        from pipeline.sources import open_source

        self._open = lambda: open_source(path, loop=True)
        self.path, self.fit = path, fit
        self._source = self._open()
        self._frames = self._source.frames()
        self._next_index = 0

    def _read(self) -> np.ndarray:
        try:
            return next(self._frames).image
        except StopIteration:
            raise InputError(f"background video {self.path} has no frames") from None

    def frames(self, n: int, size: tuple[int, int], index: int, device: torch.device) -> torch.Tensor:
        if index < self._next_index:  # the caller went back: start the background again
            self.close()
            self._source, self._next_index = self._open(), 0
            self._frames = self._source.frames()
        while self._next_index < index:
            self._read()
            self._next_index += 1
        images = [resize_to(self._read(), size, self.fit) for _ in range(n)]
        self._next_index += n
        return _to_unit_float(np.stack(images), device).permute(0, 3, 1, 2)

    def close(self) -> None:
        self._source.close()


class BlurBackground:
    """The original frame, blurred with the subject left out (alpha-weighted), so no halo of the
    subject's colours surrounds it. Needs the original frames (``original=`` of ``composite``)."""

    def __init__(self, radius: float | None):
        self.radius = radius


# ----------------------------------------------------------------------------------- compositor


class Compositor:
    """Puts foreground colours (N, H, W, 3) with alpha (N, H, W) over a background.

    ``background``: 'green' (and other NAMED_COLOURS), '#RRGGBB', 'blur', an image or a video file.
    ``info``: the foreground's SourceInfo, accepted for the pipeline's call; sizes come from the frames.
    ``fit``: fill, fit or stretch. ``light_wrap``: 0-1 strength of background light over
    the foreground's edges, over ``wrap_radius`` pixels (default 1% of the long side, at least 2).
    ``feather``: alpha softening radius in pixels. ``blur_radius``: of the 'blur' background (default
    2.5% of the long side). ``premultiplied``: the
    foreground colours are already multiplied by alpha.
    """

    def __init__(self, background: str = "green", info=None, *, fit: str = "fill", light_wrap: float = 0.0,
                 feather: float = 0.0, linear_light: bool = True, blur_radius: float | None = None,
                 wrap_radius: float | None = None, premultiplied: bool = False):
        if fit not in FITS:
            raise ConfigError(f"background fit must be one of {', '.join(FITS)}, got {fit!r}")
        if not 0.0 <= light_wrap <= 1.0 or feather < 0:
            raise ConfigError("light wrap must be in [0, 1] and feather >= 0")
        self.info = info
        self.light_wrap, self.feather, self.linear_light = light_wrap, feather, linear_light
        self.premultiplied, self.wrap_radius = premultiplied, wrap_radius
        self.background = self._open_background(background, fit, blur_radius)

    @staticmethod
    def _open_background(spec: str, fit: str, blur_radius: float | None):
        text = spec.strip()
        if text.lower() == "blur":
            return BlurBackground(blur_radius)
        if text.lower() in NAMED_COLOURS or text.startswith("#"):
            return ColourBackground(parse_colour(text))
        path = Path(text)
        if not path.is_file():
            raise InputError(f"background {text!r} is not a colour, 'blur', or an existing file")
        if path.suffix.lower() in VIDEO_SUFFIXES:
            return VideoBackground(str(path), fit)
        return ImageBackground(str(path), fit)

    def close(self) -> None:
        if isinstance(self.background, VideoBackground):
            self.background.close()

    def _background(self, n, size, index, device, original: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
        if not isinstance(self.background, BlurBackground):
            return self.background.frames(n, size, index, device)
        radius = self.background.radius or max(size) / 40
        weight = soft_blur(1.0 - alpha, radius)
        return soft_blur(original * (1.0 - alpha), radius) / weight.clamp_min(1e-4)

    @torch.inference_mode()
    def composite(self, foreground, alpha, index: int = 0, original=None):
        """The composite (N, H, W, 3) in the foreground's container and dtype.

        ``index``: source index of the first frame (keeps a video background in step).
        ``original``: the unrefined frames, needed for the 'blur' background (defaults to ``foreground``).
        """
        if foreground.ndim != 4 or foreground.shape[-1] != 3 or tuple(alpha.shape) != tuple(foreground.shape[:3]):
            raise ValueError(f"need foreground (N, H, W, 3) and alpha (N, H, W), got "
                             f"{tuple(foreground.shape)} and {tuple(alpha.shape)}")
        device = foreground.device if isinstance(foreground, torch.Tensor) else torch.device("cpu")
        n, height, width = foreground.shape[:3]
        fg = _to_unit_float(foreground, device).permute(0, 3, 1, 2)
        a = _to_unit_float(alpha, device)[:, None]
        if self.feather > 0:
            a = soft_blur(a, self.feather)
        source = fg if original is None else _to_unit_float(original, device).permute(0, 3, 1, 2)
        bg = self._background(n, (height, width), index, device, source, a)
        decode = srgb_to_linear if self.linear_light else (lambda x: x)
        fg_lin, bg_lin = decode(fg), decode(bg)
        if self.premultiplied:  # un-premultiply first so feathering and linearisation stay correct
            fg_lin = decode((fg / _to_unit_float(alpha, device)[:, None].clamp_min(1e-4)).clamp_(0, 1))
        out = bg_lin + a * (fg_lin - bg_lin)
        if self.light_wrap > 0:
            radius = self.wrap_radius or max(2.0, max(height, width) / 100)
            edge_band = a * soft_blur(1.0 - a, radius)
            out = out + (self.light_wrap * edge_band) * (soft_blur(bg_lin, radius) - out)
        out = linear_to_srgb(out) if self.linear_light else out.clamp(0.0, 1.0)
        peak = _peak(foreground.dtype)
        result = out.permute(0, 2, 3, 1)
        if peak > 1.0:
            result = torch.round(result * peak).to(torch.int32)
        if isinstance(foreground, torch.Tensor):
            return result.to(foreground.dtype)
        return result.cpu().numpy().astype(foreground.dtype)
