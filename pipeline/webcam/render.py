"""What a display shows for one matted frame: the frame over the chosen background, or the matte.

Shared by the OpenCV window and the browser page so both offer the same views. Every view costs a
few milliseconds on a 720p frame (OpenCV's blend, the blur on a downscaled picture), because it runs
once per displayed frame.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import cv2
import numpy as np

from pipeline.composite import NAMED_COLOURS, resize_to

BACKGROUNDS = ("green", "colour", "blur", "image", "checkerboard", "matte")
CHECKER_SQUARE = 16
CHECKER_SHADES = (102, 153)
BLUR_DOWNSCALE = 8  # the background blur runs on a 1/8 picture: same look, a fraction of the cost


@dataclass
class View:
    """A display's current choice; each browser page keeps its own copy."""

    background: str = "green"
    colour: tuple[int, int, int] = (40, 90, 200)
    image: np.ndarray | None = None  # RGB uint8 background for the "image" view; any size
    before_matte: str = "green"

    def copy(self) -> "View":
        return replace(self)

    def cycle(self) -> None:
        self.background = BACKGROUNDS[(BACKGROUNDS.index(self.background) + 1) % len(BACKGROUNDS)]

    def toggle_matte(self) -> None:
        """Show the matte, or go back to the background shown before it."""
        if self.background == "matte":
            self.background = self.before_matte
        else:
            self.before_matte, self.background = self.background, "matte"


def checkerboard(height: int, width: int) -> np.ndarray:
    """The usual grey checkerboard that stands for "transparent", RGB uint8."""
    rows = (np.arange(height) // CHECKER_SQUARE)[:, None]
    cols = (np.arange(width) // CHECKER_SQUARE)[None, :]
    shade = np.where((rows + cols) % 2 == 0, *CHECKER_SHADES).astype(np.uint8)
    return np.repeat(shade[:, :, None], 3, axis=2)


def default_background_image(height: int, width: int) -> np.ndarray:
    """A gradient stand-in for ``--background-image`` when none was given."""
    y = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None]
    x = np.linspace(0.0, 1.0, width, dtype=np.float32)[None, :]
    rgb = np.stack([0.9 - 0.6 * y + 0 * x, 0.5 + 0.3 * x - 0 * y, 0.3 + 0.6 * y * x], axis=2)
    return (np.clip(rgb, 0.0, 1.0) * 255).astype(np.uint8)


def render(image: np.ndarray, alpha: np.ndarray, view: View) -> np.ndarray:
    """RGB uint8 (H, W, 3) of ``image`` (RGB uint8) with ``alpha`` ((H, W) float in [0, 1]) per ``view``."""
    height, width = alpha.shape
    if view.background == "matte":
        grey = (np.clip(alpha, 0.0, 1.0) * 255 + 0.5).astype(np.uint8)
        return np.repeat(grey[:, :, None], 3, axis=2)
    if view.background == "green":
        background = np.broadcast_to(np.array(NAMED_COLOURS["green"], np.uint8), image.shape)
    elif view.background == "colour":
        background = np.broadcast_to(np.array(view.colour, np.uint8), image.shape)
    elif view.background == "blur":
        small = cv2.resize(image, (max(width // BLUR_DOWNSCALE, 1), max(height // BLUR_DOWNSCALE, 1)),
                           interpolation=cv2.INTER_AREA)
        small = cv2.GaussianBlur(small, (0, 0), sigmaX=max(height, width) / (40 * BLUR_DOWNSCALE))
        background = cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR)
    elif view.background == "image":
        source = view.image if view.image is not None else default_background_image(height, width)
        background = resize_to(source, (height, width), "fill")
    elif view.background == "checkerboard":
        background = checkerboard(height, width)
    else:
        raise ValueError(f"unknown background {view.background!r}; choose from {', '.join(BACKGROUNDS)}")
    weight = np.ascontiguousarray(alpha, dtype=np.float32)
    return cv2.blendLinear(np.ascontiguousarray(image), np.ascontiguousarray(background), weight, 1.0 - weight)
