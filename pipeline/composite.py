"""Composites of the matted foreground over a new background: a colour, an image, a video or a blur.

Blending happens in linear light (``pipeline.blend``: the same maths as the webcam preview). Options:
light wrap (background light spilling over the foreground's edges), fit/fill/stretch for image and
video backgrounds, the radius of the blur background. Frames come as numpy (computed on the CPU via torch)
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
from pipeline.blend import from_linear, mix, srgb_to_linear, to_linear, to_unit_float

NAMED_COLOURS = {"green": (0, 255, 0), "blue": (0, 0, 255), "black": (0, 0, 0), "white": (255, 255, 255)}
FITS = ("fill", "fit", "stretch")
VIDEO_SUFFIXES = {".mp4", ".mov", ".mkv", ".webm", ".avi", ".m4v", ".mxf", ".gif"}

Pixels = np.ndarray | torch.Tensor


# ------------------------------------------------------------------------------------- helpers


def soft_blur(x: torch.Tensor, radius: float) -> torch.Tensor:
    """Near-Gaussian blur of (N, C, H, W): two box passes of ~``radius``, computed at reduced
    resolution when the radius is large (cheap at any size)."""
    if radius < 1:
        return x
    height, width = x.shape[-2:]
    factor = max(1, int(radius // 4))
    small = F.avg_pool2d(x, factor, ceil_mode=True) if factor > 1 else x
    size = max(1, round(radius / factor))
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

    def linear(self, n: int, size: tuple[int, int], index: int, device: torch.device) -> torch.Tensor:
        colour = to_linear(torch.tensor(self.rgb, dtype=torch.uint8), device)
        return colour.view(1, 3, 1, 1).expand(n, 3, *size)


class ImageBackground:
    """A still image (RGB, uint8 or uint16), fitted to the frame size and decoded once per size."""

    def __init__(self, image: np.ndarray, fit: str):
        self.image, self.fit = image, fit
        self._cache: tuple[tuple[int, int], torch.Tensor] | None = None

    @classmethod
    def read(cls, path: str, fit: str) -> ImageBackground:
        image = cv2.imread(path, cv2.IMREAD_COLOR | cv2.IMREAD_ANYDEPTH)
        if image is None:
            raise InputError(f"background image {path} could not be read")
        return cls(cv2.cvtColor(image, cv2.COLOR_BGR2RGB), fit)

    def linear(self, n: int, size: tuple[int, int], index: int, device: torch.device) -> torch.Tensor:
        if self._cache is None or self._cache[0] != size or self._cache[1].device != device:
            fitted = resize_to(self.image, size, self.fit)
            self._cache = (size, to_linear(fitted, device).permute(2, 0, 1)[None])
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

    def linear(self, n: int, size: tuple[int, int], index: int, device: torch.device) -> torch.Tensor:
        if index < self._next_index:  # the caller went back: start the background again
            self.close()
            self._source, self._next_index = self._open(), 0
            self._frames = self._source.frames()
        while self._next_index < index:
            self._read()
            self._next_index += 1
        images = [resize_to(self._read(), size, self.fit) for _ in range(n)]
        self._next_index += n
        return to_linear(np.stack(images), device).permute(0, 3, 1, 2)

    def close(self) -> None:
        self._source.close()


class BlurBackground:
    """The original frame, blurred with the subject left out (alpha-weighted), so no halo of the
    subject's colours surrounds it. ``radius``: in pixels; default 2.5% of the long side."""

    def __init__(self, radius: float | None):
        self.radius = radius

    def linear(self, original: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
        """Of ``original`` (N, 3, H, W) sRGB in [0, 1] with ``alpha`` (N, 1, H, W)."""
        radius = self.radius or max(original.shape[-2:]) / 40
        weight = soft_blur(1.0 - alpha, radius)
        return srgb_to_linear(soft_blur(original * (1.0 - alpha), radius) / weight.clamp_min(1e-4))


Background = ColourBackground | ImageBackground | VideoBackground | BlurBackground


def open_background(spec: str, fit: str = "fill", blur_radius: float | None = None) -> Background:
    """'green' (and other NAMED_COLOURS), '#RRGGBB', 'blur', an image or a video file."""
    if fit not in FITS:
        raise ConfigError(f"background fit must be one of {', '.join(FITS)}, got {fit!r}")
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
    return ImageBackground.read(str(path), fit)


# ----------------------------------------------------------------------------------- compositor


class Compositor:
    """Puts foreground colours (N, H, W, 3) with alpha (N, H, W) over a background, in linear light
    (``pipeline.blend``); the webcam preview composites through it too, so it shows what is written.

    ``background``: a spec for ``open_background`` or a background object. ``fit``: fill, fit or
    stretch, for image and video backgrounds. ``light_wrap``: 0-1 strength of background light over
    the foreground's edges (over 1% of the long side, at least 2 pixels). ``blur_radius``: of the
    'blur' background.
    """

    def __init__(self, background: str | Background = "green", *, fit: str = "fill", light_wrap: float = 0.0,
                 blur_radius: float | None = None):
        if not 0.0 <= light_wrap <= 1.0:
            raise ConfigError(f"light wrap must be in [0, 1], got {light_wrap}")
        self.light_wrap = light_wrap
        self.background = open_background(background, fit, blur_radius) if isinstance(background, str) else background

    def close(self) -> None:
        if isinstance(self.background, VideoBackground):
            self.background.close()

    @torch.inference_mode()
    def composite(self, foreground: Pixels, alpha: Pixels, index: int = 0, original: Pixels | None = None) -> Pixels:
        """The composite (N, H, W, 3) in the foreground's container and dtype.

        ``index``: source index of the first frame (keeps a video background in step).
        ``original``: the unrefined frames, needed for the 'blur' background (defaults to ``foreground``).
        """
        if foreground.ndim != 4 or foreground.shape[-1] != 3 or tuple(alpha.shape) != tuple(foreground.shape[:3]):
            raise ValueError(f"need foreground (N, H, W, 3) and alpha (N, H, W), got "
                             f"{tuple(foreground.shape)} and {tuple(alpha.shape)}")
        device = foreground.device if isinstance(foreground, torch.Tensor) else torch.device("cpu")
        n, height, width = foreground.shape[:3]
        # Blending runs channels last (N, H, W, 3), the pictures' own layout; the blurs take (N, C, H, W).
        a = to_unit_float(alpha, device)[:, None]
        if isinstance(self.background, BlurBackground):
            source = foreground if original is None else original
            bg_lin = self.background.linear(to_unit_float(source, device).permute(0, 3, 1, 2), a)
        else:
            bg_lin = self.background.linear(n, (height, width), index, device)
        out = mix(to_linear(foreground, device), bg_lin.permute(0, 2, 3, 1), a.permute(0, 2, 3, 1))
        if self.light_wrap > 0:
            radius = max(2.0, max(height, width) / 100)
            edge_band = a * soft_blur(1.0 - a, radius)
            spill = soft_blur(bg_lin.expand(n, -1, -1, -1), radius) - out.permute(0, 3, 1, 2)
            out = out + ((self.light_wrap * edge_band) * spill).permute(0, 2, 3, 1)
        result = from_linear(out, foreground.dtype)
        if isinstance(foreground, torch.Tensor):
            return result.to(device=device, dtype=foreground.dtype)
        return result.cpu().numpy().astype(foreground.dtype, copy=False)
