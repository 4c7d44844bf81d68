"""Synthetic scenes with exact ground-truth alpha: what the demo model is trained on and measured with.

A scene has two shots separated by a hard cut. Shot one: a textured subject with hair-like strands and
a semi-transparent veil, over a textured background, with a camera pan, then a segment of fast subject
motion, then a second object entering and leaving the frame. Shot two: another subject over another
background, static camera. Frames are rendered on demand (one frame costs one frame), every value is
a function of the seed, and motions scale with the resolution. Training renders frames of fresh
scenes (``synthetic_data``); the video side (``pipeline.synthetic``) renders whole clips.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

SUPERSAMPLE = 4  # sprites are drawn at 4x and area-downsampled, so edges and strands get true coverage
SEGMENT_BOUNDS = {"pan": (0.0, 0.3), "fast": (0.3, 0.5), "enter_leave": (0.5, 0.75), "after_cut": (0.75, 1.0)}


@dataclass
class SyntheticFrame:
    """One rendered frame: ``image`` = alpha * foreground + (1 - alpha) * background (+ sensor noise)."""

    image: np.ndarray  # (H, W, 3) uint8 RGB
    alpha: np.ndarray  # (H, W) float32 in [0, 1], exact
    foreground: np.ndarray  # (H, W, 3) float32 in [0, 1], true colour where alpha > 0
    background: np.ndarray  # (H, W, 3) float32 in [0, 1]


@dataclass
class Sprite:
    """A foreground layer: premultiplied colour and its exact coverage."""

    premultiplied: np.ndarray  # (h, w, 3) float32
    alpha: np.ndarray  # (h, w) float32


def texture(rng: np.random.Generator, height: int, width: int, tint: np.ndarray) -> np.ndarray:
    """Multi-octave colour noise with a few hard-edged blocks: structure that optical flow can lock on."""
    texture = np.zeros((height, width, 3), np.float32)
    for octave, amplitude in ((4, 0.5), (16, 0.3), (64, 0.2)):
        cells = rng.random((max(2, height * octave // max(height, width)), octave, 3)).astype(np.float32)
        texture += amplitude * cv2.resize(cells, (width, height), interpolation=cv2.INTER_CUBIC)
    for _ in range(12):
        y, x = int(rng.integers(0, height)), int(rng.integers(0, width))
        size = int(rng.integers(max(2, height // 40), max(3, height // 8)))
        texture[y : y + size, x : x + size] = rng.random(3)
    return np.clip(0.25 + 0.75 * texture * tint, 0.0, 1.0)


def _coverage(canvas: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    return cv2.resize(canvas, size, interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0


def subject_sprite(rng: np.random.Generator, height: int) -> Sprite:
    """A head-and-shoulders figure: opaque body, hair strands of partial coverage, a 45% veil."""
    h, w = max(8, int(0.6 * height)), max(8, int(0.45 * height))
    s = SUPERSAMPLE
    body = np.zeros((h * s, w * s), np.uint8)
    head_c, head_r = (w * s // 2, int(0.3 * h * s)), int(0.16 * h * s)
    cv2.circle(body, head_c, head_r, 255, -1, cv2.LINE_AA)
    cv2.ellipse(body, (w * s // 2, h * s), (int(0.42 * w * s), int(0.5 * h * s)), 0, 180, 360, 255, -1, cv2.LINE_AA)
    cv2.rectangle(body, (int(0.43 * w * s), head_c[1]), (int(0.57 * w * s), int(0.6 * h * s)), 255, -1)
    strands = np.zeros_like(body)
    thickness = max(1, s // 2)
    for _ in range(70):
        angle = rng.uniform(-np.pi * 0.95, -np.pi * 0.05)
        length = rng.uniform(0.15, 0.35) * h * s
        start = np.array(head_c) + 0.9 * head_r * np.array([np.cos(angle), np.sin(angle)])
        bend = rng.uniform(-0.5, 0.5)
        u = np.linspace(0.0, 1.0, 12)[:, None]
        direction = np.array([np.cos(angle + bend * u[:, 0]), np.sin(angle + bend * u[:, 0])]).T
        points = start + np.cumsum(direction * length / 12, axis=0)
        cv2.polylines(strands, [points.astype(np.int32)], False, int(rng.uniform(120, 255)), thickness, cv2.LINE_AA)
    veil = np.zeros_like(body)
    cx, cy = w * s // 2, int(0.72 * h * s)
    veil_pts = np.array([[cx - 0.48 * w * s, cy], [cx + 0.48 * w * s, cy - 0.1 * h * s],
                         [cx + 0.4 * w * s, cy + 0.12 * h * s], [cx - 0.45 * w * s, cy + 0.1 * h * s]], np.int32)
    cv2.fillPoly(veil, [veil_pts], 115, cv2.LINE_AA)
    size = (w, h)
    a_body, a_strands, a_veil = _coverage(body, size), _coverage(strands, size), _coverage(veil, size)
    body_colour = texture(rng, h, w, rng.uniform(0.4, 1.0, 3).astype(np.float32))
    hair_colour = np.broadcast_to(rng.uniform(0.0, 1.0, 3).astype(np.float32), (h, w, 3))
    veil_colour = np.broadcast_to(rng.uniform(0.3, 1.0, 3).astype(np.float32), (h, w, 3))
    # Layers back to front: strands, body, veil in front.
    premultiplied = hair_colour * a_strands[..., None]
    alpha = a_strands
    for colour, a in ((body_colour, a_body), (veil_colour, a_veil)):
        premultiplied = colour * a[..., None] + premultiplied * (1 - a[..., None])
        alpha = a + alpha * (1 - a)
    return Sprite(premultiplied.astype(np.float32), alpha.astype(np.float32))


def ball_sprite(rng: np.random.Generator, height: int) -> Sprite:
    """A textured ball with a soft semi-transparent halo."""
    d = max(6, int(0.25 * height))
    yy, xx = np.mgrid[0:d, 0:d].astype(np.float32) - (d - 1) / 2
    radius = np.sqrt(xx**2 + yy**2) / (d / 2)
    alpha = np.clip((1.0 - radius) / 0.3, 0.0, 1.0) ** 1.5
    colour = texture(rng, d, d, rng.uniform(0.5, 1.0, 3).astype(np.float32))
    return Sprite((colour * alpha[..., None]).astype(np.float32), alpha.astype(np.float32))


def place(canvas: Sprite, sprite: Sprite, centre: tuple[float, float], angle_deg: float, scale: float = 1.0) -> None:
    """Composite ``sprite`` (in front) into ``canvas`` at ``centre``, rotated by ``angle_deg`` and scaled by
    ``scale``, in place."""
    sh, sw = sprite.alpha.shape
    matrix = cv2.getRotationMatrix2D(((sw - 1) / 2, (sh - 1) / 2), angle_deg, scale)
    matrix[:, 2] += np.array(centre) - np.array([(sw - 1) / 2, (sh - 1) / 2])
    corners = np.array([[0, 0, 1], [sw, 0, 1], [0, sh, 1], [sw, sh, 1]], np.float64) @ matrix.T
    height, width = canvas.alpha.shape
    x0, y0 = np.clip(np.floor(corners.min(axis=0)).astype(int) - 1, 0, [width, height])
    x1, y1 = np.clip(np.ceil(corners.max(axis=0)).astype(int) + 2, 0, [width, height])
    if x1 <= x0 or y1 <= y0:
        return
    matrix[:, 2] -= (x0, y0)
    size = (int(x1 - x0), int(y1 - y0))
    warp: dict[str, Any] = dict(flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    alpha = cv2.warpAffine(sprite.alpha, matrix, size, **warp)
    premultiplied = cv2.warpAffine(sprite.premultiplied, matrix, size, **warp)
    roi_alpha = canvas.alpha[y0:y1, x0:x1]
    roi_colour = canvas.premultiplied[y0:y1, x0:x1]
    roi_colour *= 1 - alpha[..., None]
    roi_colour += premultiplied
    roi_alpha *= 1 - alpha
    roi_alpha += alpha


def segment_ranges(bounds: dict[str, tuple[float, float]], n_frames: int) -> dict[str, range]:
    """The frame ranges of segments given as fractions (start, stop) of a clip of ``n_frames``."""
    return {name: range(int(round(lo * n_frames)), int(round(hi * n_frames))) for name, (lo, hi) in bounds.items()}


def segment_progress(segment: range, t: int) -> float | None:
    """Where frame t lies within ``segment`` in [0, 1], or None outside it."""
    if t not in segment:
        return None
    return (t - segment.start + 0.5) / max(len(segment), 1)


class SyntheticScene:
    """A deterministic two-shot clip of ``n_frames`` at ``height`` x ``width``; ``render(t)`` draws frame t.

    ``segments`` maps "pan", "fast", "enter_leave", "after_cut" to their frame ranges; ``cuts`` lists the
    first frame of each shot after the first.
    """

    def __init__(self, seed: int, n_frames: int, height: int, width: int, noise: float = 2.0):
        if n_frames < 1 or height < 16 or width < 16:
            raise ValueError(f"need n_frames >= 1 and a size of at least 16x16, got {n_frames}, {height}x{width}")
        self.seed, self.n_frames, self.height, self.width, self.noise = seed, n_frames, height, width, noise
        self.segments = segment_ranges(SEGMENT_BOUNDS, n_frames)
        self.cuts = [self.segments["after_cut"].start] if 0 < self.segments["after_cut"].start < n_frames else []
        rng = np.random.default_rng(seed)
        self._pan_speed = 0.004 * width  # pixels per frame
        pan_room = int(self._pan_speed * n_frames) + 4
        self._backgrounds = [
            texture(rng, height + 4, width + pan_room, rng.uniform(0.3, 1.0, 3).astype(np.float32)),
            texture(rng, height + 4, width + 4, rng.uniform(0.3, 1.0, 3).astype(np.float32)),
        ]
        self._subjects = [subject_sprite(rng, height), subject_sprite(rng, height)]
        self._ball = ball_sprite(rng, height)

    def _progress(self, name: str, t: int) -> float | None:
        return segment_progress(self.segments[name], t)

    def _camera_offset(self, t: int) -> float:
        fast_end = self.segments["fast"].stop
        return self._pan_speed * min(t, fast_end) + 0.25 * self._pan_speed * max(0, t - fast_end)

    def render(self, t: int) -> SyntheticFrame:
        if not 0 <= t < self.n_frames:
            raise IndexError(f"frame {t} outside clip of {self.n_frames}")
        h, w = self.height, self.width
        shot = 1 if self.cuts and t >= self.cuts[0] else 0
        offset = self._camera_offset(t) if shot == 0 else 0.0
        shift = np.array([[1, 0, -offset - 2], [0, 1, -2]], np.float32)
        background = cv2.warpAffine(self._backgrounds[shot], shift, (w, h), flags=cv2.INTER_LINEAR)
        layer = Sprite(np.zeros((h, w, 3), np.float32), np.zeros((h, w), np.float32))
        ball_progress = self._progress("enter_leave", t)
        if shot == 0 and ball_progress is not None:
            place(layer, self._ball, (-0.15 * w + 1.3 * w * ball_progress, 0.3 * h), 90 * ball_progress)
        fast = self._progress("fast", t) or 0.0
        sway = np.sin(2 * np.pi * t / 45)
        # Outside the fast segment the subject idles like a person in an interview (under ~1 px per
        # frame at 1080p); in it, it sweeps across the frame at up to ~0.05 * width per frame.
        if shot == 0:
            centre = (0.42 * w + 0.006 * w * sway + 0.3 * w * np.sin(np.pi * fast),
                      0.6 * h + 0.1 * h * np.sin(2 * np.pi * fast))
            angle = 1.5 * sway + 20 * np.sin(np.pi * fast)
        else:
            centre, angle = (0.6 * w + 0.004 * w * sway, 0.62 * h), 1.0 * sway
        place(layer, self._subjects[shot], centre, angle)
        alpha = np.clip(layer.alpha, 0.0, 1.0)
        composite = layer.premultiplied + (1 - alpha[..., None]) * background
        noise_rng = np.random.default_rng([self.seed, t])
        noisy = composite * 255 + noise_rng.normal(0.0, self.noise, (h, w, 1)).astype(np.float32)
        image = np.clip(noisy + 0.5, 0, 255).astype(np.uint8)
        foreground = np.where(alpha[..., None] > 0, layer.premultiplied / np.maximum(alpha, 1e-6)[..., None], 0)
        return SyntheticFrame(image, alpha, np.clip(foreground, 0, 1).astype(np.float32), background)

    def frames(self, start: int = 0, stop: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Frames [start, stop) as (images uint8 (N, H, W, 3), alpha float32 (N, H, W))."""
        rendered = [self.render(t) for t in range(start, self.n_frames if stop is None else stop)]
        return np.stack([r.image for r in rendered]), np.stack([r.alpha for r in rendered])
