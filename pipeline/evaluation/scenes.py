"""Evaluation scenes: synthetic foregrounds with exact alpha composited over real video, through a moving camera.

The foreground sprites are those the demo model is trained on (``birefnet.train.scenes``: a figure
with hair strands and a 45% veil, a ball with a soft halo); the backgrounds are real clips, or the
demo model's training texture (``backgrounds``). Shot one: the camera pans, following the subject
(the background slides under it at 0.2-0.4% of the width per frame while the subject idles, under a
pixel per frame at 1080p), then zooms in (0.4-0.8% per frame), then holds while the subject sweeps
across the frame (fast motion), then a ball enters and leaves; a hard cut; shot two: another subject
over another clip, hand-held camera shake (the whole picture moves, about 1-2 px per frame at 1080p).
Pans, zooms and shake move at those rates whatever the clip's length; the sweep and the ball cross in
their segment's time, so fewer frames make them faster. Every choice (directions, amounts, sprites)
is a function of the seed, and motions scale with the size, so a scene renders at any size from
16x16 up.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from birefnet.train.scenes import (
    Sprite,
    SyntheticFrame,
    ball_sprite,
    place,
    segment_progress,
    segment_ranges,
    subject_sprite,
)
from pipeline.evaluation.backgrounds import Background, Camera

SEGMENT_BOUNDS = {"pan": (0.0, 0.25), "zoom": (0.25, 0.4), "fast": (0.4, 0.6), "enter_leave": (0.6, 0.8),
                  "after_cut": (0.8, 1.0)}
FAST_SEGMENTS = ("fast", "enter_leave")  # the subject's sweep (up to ~5% of the width per frame), the ball's crossing


@dataclass(frozen=True)
class SceneSpec:
    """Which scene: its ``seed`` and the real clips behind shot one and shot two."""

    seed: int
    backgrounds: tuple[str, str]

    @property
    def name(self) -> str:
        return f"{self.backgrounds[0]}+{self.backgrounds[1]}#{self.seed}"


class RealScene:
    """Scene ``spec`` as ``n_frames`` of ``height`` x ``width``; ``render(t)`` draws frame t.

    ``segments`` maps the names of ``SEGMENT_BOUNDS`` to frame ranges, ``cuts`` lists the first frame of
    shot two (empty when the clip is too short to have one), ``fast_frames`` the frames of fast motion.
    """

    def __init__(self, spec: SceneSpec, n_frames: int, height: int, width: int):
        if n_frames < 1 or height < 16 or width < 16:
            raise ValueError(f"need n_frames >= 1 and a size of at least 16x16, got {n_frames}, {height}x{width}")
        self.spec, self.n_frames, self.height, self.width = spec, n_frames, height, width
        self.segments = segment_ranges(SEGMENT_BOUNDS, n_frames)
        self.cuts = [self.segments["after_cut"].start] if 0 < self.segments["after_cut"].start < n_frames else []
        self.fast_frames = range(self.segments[FAST_SEGMENTS[0]].start, self.segments[FAST_SEGMENTS[-1]].stop)
        rng = np.random.default_rng([spec.seed, 16])
        self._backgrounds = [Background(name, height, width, int(rng.integers(2**31))) for name in spec.backgrounds]
        self._subjects = [subject_sprite(rng, height), subject_sprite(rng, height)]
        self._ball = ball_sprite(rng, height)
        self._pan_velocity = (float(rng.choice([-1, 1]) * rng.uniform(0.002, 0.004) * width),
                              float(rng.uniform(-0.001, 0.001) * height))
        self._zoom_rate = float(rng.uniform(0.004, 0.008))
        self._sweep = float(rng.choice([-1, 1]))
        self._ball_row = float(rng.uniform(0.2, 0.4))
        self._ball_direction = float(rng.choice([-1, 1]))
        self._shake_phases = rng.uniform(0, 2 * np.pi, 4)

    def _progress(self, name: str, t: int) -> float | None:
        return segment_progress(self.segments[name], t)

    def camera(self, t: int) -> Camera:
        """The virtual camera of frame t."""
        if self.cuts and t >= self.cuts[0]:
            a, b, c, d = self._shake_phases  # hand-held: about a tenth of a percent of the width, never still
            amount = 0.001 * self.width
            return Camera((amount * (np.sin(0.9 * t + a) + 0.5 * np.sin(2.3 * t + b)),
                           amount * (np.sin(0.7 * t + c) + 0.5 * np.sin(1.9 * t + d))))
        panned, zoomed = (min(max(t + 1 - self.segments[name].start, 0), len(self.segments[name]))
                          for name in ("pan", "zoom"))
        return Camera((panned * self._pan_velocity[0], panned * self._pan_velocity[1]),
                      (1.0 + self._zoom_rate) ** zoomed)

    def render(self, t: int) -> SyntheticFrame:
        if not 0 <= t < self.n_frames:
            raise IndexError(f"frame {t} outside clip of {self.n_frames}")
        h, w = self.height, self.width
        shot = 1 if self.cuts and t >= self.cuts[0] else 0
        camera = self.camera(t)
        background = self._backgrounds[shot].render(t, camera)
        layer = Sprite(np.zeros((h, w, 3), np.float32), np.zeros((h, w), np.float32))
        tracking = Camera(zoom=camera.zoom)  # in shot one the camera follows the subject: only the zoom shows
        ball = self._progress("enter_leave", t)
        if shot == 0 and ball is not None:
            x = 0.5 * w + self._ball_direction * (1.3 * ball - 0.65) * w
            place(layer, self._ball, tracking.to_screen((x, self._ball_row * h), (w, h)), 90 * ball, camera.zoom)
        sway = np.sin(2 * np.pi * t / 45)
        if shot == 0:
            fast = self._progress("fast", t) or 0.0
            centre = (0.5 * w + 0.006 * w * sway + self._sweep * (0.3 * w * np.sin(np.pi * fast) - 0.08 * w),
                      0.6 * h + 0.1 * h * np.sin(2 * np.pi * fast))
            angle = 1.5 * sway + 20 * self._sweep * np.sin(np.pi * fast)
        else:
            centre, angle = (0.6 * w + 0.004 * w * sway, 0.62 * h), 1.0 * sway
        place(layer, self._subjects[shot], (tracking if shot == 0 else camera).to_screen(centre, (w, h)), angle,
              camera.zoom)
        alpha = np.clip(layer.alpha, 0.0, 1.0)
        composite = layer.premultiplied + (1 - alpha[..., None]) * background
        image = np.clip(composite * 255 + 0.5, 0, 255).astype(np.uint8)
        foreground = np.where(alpha[..., None] > 0, layer.premultiplied / np.maximum(alpha, 1e-6)[..., None], 0)
        return SyntheticFrame(image, alpha, np.clip(foreground, 0, 1).astype(np.float32), background)

    def frames(self) -> tuple[np.ndarray, np.ndarray]:
        """The whole clip as (images uint8 (N, H, W, 3), alpha float32 (N, H, W))."""
        rendered = [self.render(t) for t in range(self.n_frames)]
        return np.stack([r.image for r in rendered]), np.stack([r.alpha for r in rendered])
