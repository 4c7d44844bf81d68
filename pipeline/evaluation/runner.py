"""Runs a smoother over evaluation cases and scores it against the exact alpha.

``prepare`` renders each case (a scene once for all the families that share it, then the family's
per-frame predictions); ``evaluate`` streams the predictions through a fresh smoother per case in
batches, as the pipeline does, timing the smoothing alone, and scores the result (MAD, dtSSD, the
MAD over the fast-motion frames). ``family_changes`` compares two runs family by family.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import cv2
import numpy as np
import torch

from birefnet.pixels import from_unit_float
from pipeline.evaluation.families import FAMILIES
from pipeline.evaluation.network import network_predictions
from pipeline.evaluation.scenes import RealScene, SceneSpec
from pipeline.evaluation.split import NETWORK_FAMILY, Case
from pipeline.metrics import ClipEvaluator
from pipeline.temporal.smoother import TemporalSmoother

Size = tuple[int, int]  # (width, height)


@dataclass
class CaseClip:
    """A rendered case: frames (N, H, W, 3) uint8, exact ``truth`` and flickering ``predictions`` (N, H, W)."""

    case: Case
    images: np.ndarray
    truth: np.ndarray
    predictions: np.ndarray
    fast_frames: range
    cuts: list[int]


@dataclass
class Row:
    """One case's scores: MAD x1e3, dtSSD x1e2, MAD x1e3 over the fast-motion frames, smoothing ms/frame."""

    case: str
    family: str
    scene: str
    split: str
    size: str
    frames: int
    mad_x1e3: float
    dtssd_x1e2: float
    fast_mad_x1e3: float
    ms_per_frame: float


def scene_key(scene: SceneSpec, size: Size, frames: int) -> str:
    return f"scene-{scene.name}-{size[0]}x{size[1]}-{frames}"


def prepare(cases: Iterable[Case], size: Size, frames: int) -> Iterator[CaseClip]:
    """The cases rendered at ``size`` (width, height) with ``frames`` frames, in order; consecutive cases
    of one scene share its rendering."""
    rendered: tuple[SceneSpec, RealScene, np.ndarray, np.ndarray] | None = None
    for case in cases:
        if rendered is None or rendered[0] != case.scene:
            scene = RealScene(case.scene, frames, size[1], size[0])
            rendered = (case.scene, scene, *scene.frames())
        _, scene, images, truth = rendered
        if case.family == NETWORK_FAMILY:
            predictions = network_predictions(images, scene_key(case.scene, size, frames))
        else:
            predictions = FAMILIES[case.family](case.scene.seed).predict_batch(truth)
        yield CaseClip(case, images, truth, predictions, scene.fast_frames, list(scene.cuts))


@contextmanager
def cpu_threads(count: int | None) -> Iterator[None]:
    """torch and OpenCV limited to ``count`` CPU threads inside the block (None: leave them)."""
    if count is None:
        yield
        return
    before = torch.get_num_threads(), cv2.getNumThreads()
    torch.set_num_threads(count)
    cv2.setNumThreads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before[0])
        cv2.setNumThreads(before[1])


ALPHA_DTYPES = ("float32", "uint8")  # what the smoother is handed: exact floats, or 8 bits as the matting stage writes


def smooth_clip(smoother: TemporalSmoother, images: np.ndarray, alphas: np.ndarray, batch: int = 8,
                device: str = "cpu", alpha_dtype: str = "float32") -> tuple[np.ndarray, float]:
    """The smoothed alphas (float) of a whole clip fed in batches of ``alpha_dtype``, and the smoothing time
    in ms per frame."""
    if alpha_dtype == "uint8":
        alphas = from_unit_float(torch.from_numpy(alphas), torch.uint8).numpy()  # as the Predictor rounds
    outputs, elapsed = [], 0.0
    for start in range(0, len(images), batch):
        frames: np.ndarray | torch.Tensor = images[start : start + batch]
        alphas_in: np.ndarray | torch.Tensor = alphas[start : start + batch]
        if device != "cpu":
            frames, alphas_in = torch.from_numpy(frames).to(device), torch.from_numpy(alphas_in).to(device)
            torch.cuda.synchronize()
        began = time.perf_counter()
        out = smoother.smooth(frames, alphas_in)
        if device != "cpu":
            torch.cuda.synchronize()
        elapsed += time.perf_counter() - began
        outputs.append(out)
    began = time.perf_counter()
    rest = smoother.flush()
    elapsed += time.perf_counter() - began
    if rest is not None:
        outputs.append(rest)
    arrays = [o.cpu().numpy() if isinstance(o, torch.Tensor) else o for o in outputs]
    smoothed = np.concatenate(arrays)
    if smoothed.dtype == np.uint8:
        smoothed = smoothed.astype(np.float32) / 255.0
    if smoothed.shape != alphas.shape:
        raise RuntimeError(f"the smoother returned {smoothed.shape[0]} frames for {alphas.shape[0]}")
    return smoothed, elapsed / len(images) * 1e3


def score(clip: CaseClip, smoothed: np.ndarray, ms_per_frame: float) -> Row:
    whole = ClipEvaluator(with_grad_conn=False)
    whole.update(smoothed, clip.truth)
    fast = ClipEvaluator(with_grad_conn=False)
    fast.update(smoothed[clip.fast_frames.start : clip.fast_frames.stop],
                clip.truth[clip.fast_frames.start : clip.fast_frames.stop])
    scores = whole.result()
    height, width = clip.truth.shape[1:]
    return Row(clip.case.name, clip.case.family, clip.case.scene.name, clip.case.split, f"{width}x{height}",
               len(clip.truth), scores.mad_x1e3, scores.dtssd_x1e2, fast.result().mad_x1e3, ms_per_frame)


def evaluate(make_smoother: Callable[[], TemporalSmoother], cases: Iterable[Case | CaseClip], size: Size,
             frames: int, *, batch: int = 8, threads: int | None = 1, device: str = "cpu",
             alpha_dtype: str = "float32") -> list[Row]:
    """One row per case: a fresh ``make_smoother()`` run over the case's predictions, scored.

    ``cases`` are Cases (rendered here at ``size`` (width, height) with ``frames`` frames) or CaseClips
    from ``prepare`` (rendered once, reused across calls; ``size`` and ``frames`` are then theirs).
    The smoothing runs under ``threads`` CPU threads (1: the issue's one-core timing; None: as set), on
    predictions of ``alpha_dtype`` (``ALPHA_DTYPES``).
    """
    rows = []
    for clip in _clips(cases, size, frames):
        with cpu_threads(threads):
            smoothed, ms = smooth_clip(make_smoother(), clip.images, clip.predictions, batch, device, alpha_dtype)
        rows.append(score(clip, smoothed, ms))
    return rows


def _clips(cases: Iterable[Case | CaseClip], size: Size, frames: int) -> Iterator[CaseClip]:
    pending: list[Case] = []
    for item in cases:
        if isinstance(item, CaseClip):
            yield from prepare(pending, size, frames)
            pending = []
            yield item
        else:
            pending.append(item)
    yield from prepare(pending, size, frames)


@dataclass
class Change:
    """Relative change of a family's errors against a baseline run of the same cases (-0.35 is 35% lower)."""

    family: str
    split: str
    size: str
    cases: int
    dtssd: float
    mad: float
    fast_mad: float


def family_changes(rows: Sequence[Row], baseline: Sequence[Row]) -> list[Change]:
    """``rows`` against ``baseline`` (typically mode ``off``: the per-frame predictions), per family, split
    and size: the ratio of the errors summed over the family's scenes, so one scene without any error
    in its fast frames cannot make a ratio infinite."""
    reference = {(r.case, r.size): r for r in baseline}
    groups: dict[tuple[str, str, str], list[tuple[Row, Row]]] = {}
    for row in rows:
        groups.setdefault((row.family, row.split, row.size), []).append((row, reference[(row.case, row.size)]))
    return [Change(family, split, size, len(pairs), *(_summed_ratio(pairs, metric) for metric in METRICS))
            for (family, split, size), pairs in groups.items()]


METRICS = ("dtssd_x1e2", "mad_x1e3", "fast_mad_x1e3")


def _summed_ratio(pairs: Sequence[tuple[Row, Row]], metric: str) -> float:
    """sum(new) / sum(old) - 1 over (new, old) row pairs; against no error at all, 0 for none, else infinity."""
    new, old = (sum(getattr(pair[k], metric) for pair in pairs) for k in (0, 1))
    return new / old - 1 if old > 0 else (0.0 if new <= old else float("inf"))


def mean_change(changes: Sequence[Change]) -> Change:
    """The mean of families' changes: every family weighs the same, whatever the size of its errors."""
    def label(values: set[str]) -> str:
        return "+".join(sorted(values))

    return Change(label({c.family for c in changes}), label({c.split for c in changes}),
                  label({c.size for c in changes}), sum(c.cases for c in changes),
                  float(np.mean([c.dtssd for c in changes])), float(np.mean([c.mad for c in changes])),
                  float(np.mean([c.fast_mad for c in changes])))
