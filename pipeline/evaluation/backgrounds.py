"""What is behind the evaluation scenes: real video, decoded once, seen through a virtual camera.

The clips are the short cuts in tests/fixtures/real (people walking past a fixed camera, a tree, a
hand-held box, a film scene): real texture, real sensor and compression noise, real motion of their
own. ``Background`` fills any output size with one of them through a camera that pans and zooms; a
clip shorter than the scene plays forwards and backwards, so it never jumps as a cut would. The
background ``texture`` is the synthetic texture the demo model was trained on instead (its own
domain: over real video it mistakes half the background for foreground).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from birefnet.errors import InputError
from birefnet.train.scenes import texture
from pipeline.sources import open_source

CLIP_DIR = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "real"
REAL_CLIPS = {"walkers": "vtest_3s.avi", "tree": "tree_8s.avi", "box": "box_3s.mp4", "film": "megamind_3s.avi"}
TEXTURE = "texture"
BLACK_LEVEL = 2.0  # mean 8-bit level under which a clip's leading frames count as black
COVER_MARGIN = 1.3  # at zoom 1 the clip covers 1.3x the frame, leaving room to pan by 15% of it


def clip_path(name: str) -> Path:
    if name not in REAL_CLIPS:
        raise InputError(f"unknown real clip {name!r}; known: {', '.join(REAL_CLIPS)}")
    path = CLIP_DIR / REAL_CLIPS[name]
    if not path.is_file():
        raise InputError(f"real clip {path} is missing (the evaluation reads the repository's tests/fixtures/real)")
    return path


@lru_cache(maxsize=len(REAL_CLIPS))
def decoded_clip(name: str) -> np.ndarray:
    """Every frame of real clip ``name`` as (N, H, W, 3) uint8 RGB, decoded with PyAV once per process,
    less a black leader (the film clip opens on one black frame: a cut the scene would not report)."""
    with open_source(str(clip_path(name))) as source:
        frames = np.stack([frame.image for frame in source.frames()])
    lit = np.flatnonzero(frames.reshape(len(frames), -1).mean(axis=1) >= BLACK_LEVEL)
    frames = frames[lit[0] if len(lit) else 0 :]
    frames.flags.writeable = False
    return frames


def texture_clip(seed: int, height: int, width: int) -> np.ndarray:
    """A still synthetic texture (``birefnet.train.scenes.texture``) as a one-frame clip of ``height`` x ``width``."""
    rng = np.random.default_rng([seed, 17])
    still = texture(rng, height, width, rng.uniform(0.3, 1.0, 3).astype(np.float32))
    return np.clip(still * 255 + 0.5, 0, 255).astype(np.uint8)[None]


def ping_pong(t: int, length: int) -> int:
    """Frame ``t`` of a clip of ``length`` frames played forwards, backwards, forwards..."""
    if length == 1:
        return 0
    period = 2 * (length - 1)
    phase = t % period
    return phase if phase < length else period - phase


@dataclass(frozen=True)
class Camera:
    """Where the virtual camera looks: ``pan`` (x, y) in output pixels from its start, ``zoom`` >= 1."""

    pan: tuple[float, float] = (0.0, 0.0)
    zoom: float = 1.0

    def to_screen(self, point: tuple[float, float], size: tuple[int, int]) -> tuple[float, float]:
        """Where a point of the scene (output pixels at the start view) lands on the screen of ``size`` (w, h)."""
        cx, cy = (size[0] - 1) / 2, (size[1] - 1) / 2
        return (self.zoom * (point[0] - self.pan[0] - cx) + cx, self.zoom * (point[1] - self.pan[1] - cy) + cy)


class Background:
    """Real clip ``name`` (or ``texture``, drawn from ``seed``) filling ``height`` x ``width``;
    ``render(t, camera)`` is float32 RGB in [0, 1]."""

    def __init__(self, name: str, height: int, width: int, seed: int = 0):
        self.clip = texture_clip(seed, height, width) if name == TEXTURE else decoded_clip(name)
        self.height, self.width = height, width
        clip_h, clip_w = self.clip.shape[1:3]
        self._cover = max(width / clip_w, height / clip_h) * COVER_MARGIN  # output pixels per clip pixel
        self._clip_centre = ((clip_w - 1) / 2, (clip_h - 1) / 2)

    def render(self, t: int, camera: Camera) -> np.ndarray:
        frame = self.clip[ping_pong(t, len(self.clip))]
        scale = self._cover * camera.zoom
        # A clip pixel sits in the scene at (p - clip centre) * cover + output centre; the camera maps the
        # scene to the screen, so the two compose into one scaling and shift.
        origin = camera.to_screen(self._scene_point(0.0, 0.0), (self.width, self.height))
        matrix = np.array([[scale, 0.0, origin[0]], [0.0, scale, origin[1]]], np.float32)
        warped = cv2.warpAffine(frame, matrix, (self.width, self.height), flags=cv2.INTER_LINEAR,
                                borderMode=cv2.BORDER_REFLECT)
        return warped.astype(np.float32) / 255.0

    def _scene_point(self, x: float, y: float) -> tuple[float, float]:
        """The scene position of clip pixel (x, y)."""
        return ((x - self._clip_centre[0]) * self._cover + (self.width - 1) / 2,
                (y - self._clip_centre[1]) * self._cover + (self.height - 1) / 2)
