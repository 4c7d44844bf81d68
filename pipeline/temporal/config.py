"""The smoothers' knobs and each mode's defaults (torch-free, like ``modes``)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class SmootherConfig:
    """Knobs of the smoothers; the defaults (those of ``flow``; ``ema`` starts from ``MODE_DEFAULTS``)
    were tuned on the evaluation's tuning split (``benchmarks/temporal.py``, docs/benchmarks.md).

    ``strength``: weight of the carried-over alpha where confidence is full (0 = off, 0.9 ~ 10-frame
    memory). ``motion_scale``/``warp_error_scale``: luma change (0-255) at which confidence has fallen
    to 1/e. ``disagreement_scale``: alpha difference (between thumbnails) at which confidence halves.
    ``flow_speed_scale``: motion (thumbnail pixels per frame) at which flow confidence has halved, as
    fast motion is where flow fails and ghosts appear.
    ``ghost_radius``: pixels (at 1080 lines, scaled with the height) within which the new alpha may move
    and still vouch for the carried one, i.e. the boundary jitter tolerated (rounded to whole thumbnail
    cells, at least one); ``ghost_scale``: excess of the carried alpha over the new one's local peak, or
    shortfall under its local minimum, at which confidence reaches 0 (``carry.blend``).
    ``analysis_size``: long side of the thumbnails used for motion, flow and cut detection, and on which
    the smoothed state lives (finer detail is each frame's own).
    ``cut_threshold``: histogram distance in [0, 1] above which a frame starts a new shot.
    ``window``: look-ahead frames (0 = causal, lowest latency). ``flow_backend``: auto, dis or torch.
    ``gate``: ``learned`` (the shipped ``gate.LearnedGate`` decides how far each pixel leans on the carried
    state, in place of confidence x ``strength``), a ``.safetensors`` file of other gate weights
    (``pipeline.evaluation.gate_fit`` writes them), or ``hand`` (confidence x ``strength``); the ghost
    and fill gates of ``carry.hand_gates`` bound all three.
    ``edges``: ``guided`` (each frame's soft pixels rebuilt from the smoothed thumbnail along the frame's own
    colour edges, ``edges.along_edges``) or ``cells`` (only the smoothed thumbnail's change, upsampled).
    """

    strength: float = 0.85
    motion_scale: float = 2.5
    warp_error_scale: float = 10.0
    disagreement_scale: float = 0.3
    flow_speed_scale: float = 2.0
    ghost_radius: float = 5.0
    ghost_scale: float = 0.25
    analysis_size: int = 480
    cut_threshold: float = 0.35
    window: int = 0
    flow_backend: str = "auto"
    gate: str = "learned"
    edges: str = "guided"

    def __post_init__(self) -> None:
        if not 0.0 <= self.strength < 1.0:
            raise ValueError(f"strength must be in [0, 1), got {self.strength}")
        if self.window < 0:
            raise ValueError(f"window must be >= 0, got {self.window}")
        if self.flow_backend not in FLOW_BACKENDS:
            raise ValueError(f"flow_backend must be auto, dis or torch, got {self.flow_backend!r}")
        if self.gate not in GATES and not self.gate.endswith(".safetensors"):
            raise ValueError(f"gate must be learned, hand or a .safetensors file of gate weights, got {self.gate!r}")
        if self.edges not in EDGES:
            raise ValueError(f"edges must be guided or cells, got {self.edges!r}")
        scales = (self.motion_scale, self.warp_error_scale, self.disagreement_scale, self.flow_speed_scale,
                  self.ghost_radius, self.ghost_scale)
        if min(*scales, self.analysis_size) <= 0:
            raise ValueError("scales and analysis_size must be positive")


FLOW_BACKENDS = ("auto", "dis", "torch")
GATES = ("learned", "hand")
EDGES = ("guided", "cells")

# Without motion compensation, ema must smooth harder where it can (still pixels, agreeing alphas) and
# lean on the ghost gate where the matte moved; tuned like the flow defaults above. The learned gate was
# fitted on flow's transitions only, so ema keeps the hand-built gates; the edge rebuild was judged on flow only.
MODE_DEFAULTS: dict[str, dict[str, float | str]] = {
    "ema": {"strength": 0.91, "motion_scale": 4.5, "disagreement_scale": 0.5, "ghost_scale": 0.07, "gate": "hand",
            "edges": "cells"},
}
