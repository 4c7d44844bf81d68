"""The last step before the sink: turn frames and their smoothed alpha into what the output kind writes.

``rgba``: the frame's colours (cleaned of background spill when ``refine_foreground``) and alpha;
``foreground``: always the cleaned colours, and alpha; ``matte``: alpha only; ``composite``: the
cleaned colours over the chosen background, no alpha; ``picture``: the frame as decoded, no alpha.
"""

from __future__ import annotations

import numpy as np
import torch

from pipeline.frames import FrameBatch


class ForegroundRefiner:
    """Blur-fusion foreground estimation (``birefnet.foreground``) for numpy batches, on ``device``.
    Remembers its last result, so outputs of one pass that share it refine each batch once."""

    def __init__(self, device: str = "cpu"):
        self.device = torch.device(device)
        self._last: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None

    @torch.inference_mode()
    def __call__(self, images: np.ndarray, alpha: np.ndarray) -> np.ndarray:
        from birefnet.foreground import estimate_foreground_pixels

        if self._last is not None and self._last[0] is images and self._last[1] is alpha:
            return self._last[2]
        image_t = torch.from_numpy(np.ascontiguousarray(images)).to(self.device)
        alpha_t = torch.from_numpy(np.ascontiguousarray(alpha))
        foreground = estimate_foreground_pixels(image_t, alpha_t).cpu().numpy()
        self._last = (images, alpha, foreground)
        return foreground


class Finisher:
    """Callable ``(batch, alpha) -> (rgb or None, alpha or None)`` for one output kind."""

    def __init__(self, output: str, refine_foreground: bool, compositor=None, device: str = "cpu",
                 refiner: ForegroundRefiner | None = None):
        if output == "composite" and compositor is None:
            raise ValueError("a composite output needs a compositor")
        self.output = output
        self.compositor = compositor
        cleaned = output == "foreground" or (refine_foreground and output not in ("matte", "picture"))
        self.refine = (refiner or ForegroundRefiner(device)) if cleaned else None

    def __call__(self, batch: FrameBatch, alpha: np.ndarray) -> tuple[np.ndarray | None, np.ndarray | None]:
        if self.output == "matte":
            return None, alpha
        if self.output == "picture":
            return batch.images, None
        rgb = self.refine(batch.images, alpha) if self.refine is not None else batch.images
        if self.output == "composite":
            return self.compositor.composite(rgb, alpha, batch.index, original=batch.images), None
        return rgb, alpha

    def close(self) -> None:
        """Release the compositor's background (an open video)."""
        if self.compositor is not None:
            self.compositor.close()
