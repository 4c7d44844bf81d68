"""What a display shows for one matted frame: the frame over the chosen background, or the matte.

Shared by the OpenCV window and the browser page so both offer the same views. The frame goes over
its background through the written output's ``Compositor`` (linear light, its 'blur' background), so
the preview is what ``--output composite`` would write; the checkerboard, which stands for
transparency, is a preview-only image background. It runs once per displayed frame: the blend goes
through 8-bit lookup tables (``pipeline.blend``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from pipeline.composite import NAMED_COLOURS, Background, BlurBackground, ColourBackground, Compositor, ImageBackground

BACKGROUNDS = ("green", "colour", "blur", "image", "checkerboard", "matte")
CHECKER_SQUARE = 16
CHECKER_SHADES = (102, 153)


@dataclass
class View:
    """A display's current choice; each browser page keeps its own copy."""

    background: str = "green"
    colour: tuple[int, int, int] = (40, 90, 200)
    image: np.ndarray | None = None  # RGB uint8 background for the "image" view; any size
    before_matte: str = "green"

    def copy(self) -> View:
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


def background_of(view: View, height: int, width: int) -> Background:
    """The compositor background a (non-matte) view stands for, for frames of this size."""
    if view.background == "green":
        return ColourBackground(NAMED_COLOURS["green"])
    if view.background == "colour":
        return ColourBackground(view.colour)
    if view.background == "blur":
        return BlurBackground(None)
    if view.background == "image":
        source = view.image if view.image is not None else default_background_image(height, width)
        return ImageBackground(source, "fill")
    if view.background == "checkerboard":
        return ImageBackground(checkerboard(height, width), "fill")
    raise ValueError(f"unknown background {view.background!r}; choose from {', '.join(BACKGROUNDS)}")


def render(image: np.ndarray, alpha: np.ndarray, view: View) -> np.ndarray:
    """RGB uint8 (H, W, 3) of ``image`` (RGB uint8) with ``alpha`` ((H, W) float in [0, 1]) per ``view``."""
    height, width = alpha.shape
    if view.background == "matte":
        grey = (np.clip(alpha, 0.0, 1.0) * 255 + 0.5).astype(np.uint8)
        return np.repeat(grey[:, :, None], 3, axis=2)
    compositor = Compositor(background_of(view, height, width))
    return np.asarray(compositor.composite(image[None], np.asarray(alpha, np.float32)[None]))[0]
