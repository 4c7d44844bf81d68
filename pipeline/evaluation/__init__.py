"""The temporal-smoothing evaluation: generalisation, not fit.

Cases are scenes with exact alpha over real video (``scenes``, ``backgrounds``) under one flicker
family each (``families``; ``network`` for the demo model's real per-frame errors). ``split`` fixes
which cases tuning may see; ``nogt`` scores smoothers on the real clips, which have no ground truth.
``benchmarks/temporal.py`` prints the whole table. A tuner uses::

    from pipeline.evaluation import evaluate, mean_change, prepare, family_changes, tuning_cases
    from pipeline.temporal.smoother import make_smoother

    clips = list(prepare(tuning_cases(), (912, 512), 30))          # render once, reuse per trial
    base = evaluate(lambda: make_smoother("off"), clips, (912, 512), 30)
    rows = evaluate(lambda: make_smoother("flow", strength=0.8), clips, (912, 512), 30)
    print(mean_change(family_changes(rows, base)))  # dtssd -0.4: 40% below per-frame, family mean

``evaluate(make_smoother, cases, size, frames, *, batch=8, threads=1, device="cpu") -> list[Row]``:
``make_smoother`` builds a fresh ``TemporalSmoother`` per case; ``cases`` are ``Case``s or prepared
``CaseClip``s; ``size`` is (width, height). ``Row`` has ``mad_x1e3``, ``dtssd_x1e2``,
``fast_mad_x1e3`` and ``ms_per_frame`` (smoothing alone, one CPU thread by default).
``evaluate_without_truth(make_smoother, real_clips(frames, height)) -> list[NoTruthRow]``:
``still_flicker_x1e3`` and ``departure_x1e3`` on the real clips.
"""

from pipeline.evaluation.nogt import NoTruthRow, RealClip, evaluate_without_truth, real_clips
from pipeline.evaluation.runner import CaseClip, Change, Row, evaluate, family_changes, mean_change, prepare
from pipeline.evaluation.split import Case, held_out_cases, tuning_cases

__all__ = ["Case", "CaseClip", "Change", "NoTruthRow", "RealClip", "Row", "evaluate", "evaluate_without_truth",
           "held_out_cases", "mean_change", "prepare", "real_clips", "family_changes", "tuning_cases"]
