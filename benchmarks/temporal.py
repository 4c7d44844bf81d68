"""Temporal smoothing on the generalisation evaluation: every flicker family x mode x size, split marked.

Cases are synthetic foregrounds with exact alpha over real video (pipeline.evaluation), each under one
flicker family; ``split`` says which cases tuning may see (tuning), and which are held out (held-out
seed: new scenes over an unseen background clip; held-out family: the demo model's own per-frame
errors). Per family, size and mode it prints MAD, dtSSD and the fast-motion frames' MAD (means over
the family's scenes), smoothing ms/frame on one CPU thread, and the changes against per-frame
predictions (``off``; errors summed over a family's scenes); then, per split, the mean over families
of those changes against the issue's targets; then the
real clips, which have no ground truth: still-image flicker and departure from the per-frame matte.

    python -m benchmarks.temporal                                  # 912x512 (30 frames), 1920x1080 (16)
    python -m benchmarks.temporal --sizes 912x512 --frames 30 --split tuning --modes off flow flow:window=4

``--floor`` adds, per scene, the floor under any smoother's MAD (pipeline.evaluation.floor: the best
affine warp between consecutive exact alphas) and what each mode adds when fed the exact alpha.

Modes are ``NAME[:KEY=VALUE,...]`` with SmootherConfig keys (``flow:strength=0.8,window=2``). The demo
model's predictions are cached (pipeline.evaluation.network.cache_dir()), so only the first run pays
for them.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict

import torch

from birefnet.atomic import write_text
from pipeline.evaluation import (
    Change,
    Row,
    evaluate,
    evaluate_without_truth,
    family_changes,
    mean_change,
    prepare,
    real_clips,
)
from pipeline.evaluation.families import FAMILIES
from pipeline.evaluation.floor import affine_floor, self_error
from pipeline.evaluation.runner import ALPHA_DTYPES
from pipeline.evaluation.split import HELD_OUT_FAMILY, HELD_OUT_SEED, NETWORK_FAMILY, TUNING, cases_of
from pipeline.temporal.smoother import make_smoother

DEFAULT_MODES = ("off", "ema", "flow", "flow:window=2")
DEFAULT_FRAMES = {512: 30, 1080: 16}  # by height; the nearest applies
TARGETS = {"causal": (-0.35, 0.05, 0.05), "window": (-0.50, 0.05, 0.05)}  # dtSSD, MAD, fast-motion MAD
COST_TARGET_MS = 10.0  # causal flow at 1080p on one core
HELD_OUT_BOTH = "held-out (both)"


def parse_mode(text: str) -> tuple[str, dict[str, float | int | str]]:
    name, _, rest = text.partition(":")
    options: dict[str, float | int | str] = {}
    for item in filter(None, rest.split(",")):
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"mode option {item!r} of {text!r} is not KEY=VALUE")
        try:
            options[key] = int(value) if value.lstrip("-").isdigit() else float(value)
        except ValueError:
            options[key] = value
    try:
        make_smoother(name, **options)  # refuses unknown modes, keys and values now, not after an hour
    except (TypeError, ValueError) as error:
        raise ValueError(f"mode {text!r}: {error}") from None
    return name, options


def parse_size(text: str) -> tuple[int, int]:
    width, sep, height = text.lower().partition("x")
    if not (sep and width.isdigit() and height.isdigit()) or min(int(width), int(height)) < 16:
        raise ValueError(f"size must be WIDTHxHEIGHT, at least 16x16, got {text!r}")
    return int(width), int(height)


def target_check(mode: str, change: Change, ms: float, height: int) -> str:
    name, options = parse_mode(mode)
    if name != "flow":
        return "-"
    kind = "window" if int(options.get("window", 0)) else "causal"
    dtssd, mad, fast = TARGETS[kind]
    misses = [label for label, ok in (("dtSSD", change.dtssd <= dtssd), ("MAD", change.mad <= mad),
                                      ("fast MAD", change.fast_mad <= fast),
                                      ("cost", kind == "window" or height < 1080 or ms < COST_TARGET_MS)) if not ok]
    return "yes" if not misses else "NO: " + ", ".join(misses)


def mean(values: Sequence[float]) -> float:
    return sum(values) / len(values)


def run_size(size: tuple[int, int], frames: int, split: str, modes: Sequence[str], args: argparse.Namespace,
             ) -> dict[str, list[Row]]:
    """Rows per mode for every case of ``split`` at ``size``; each case is rendered once for all modes."""
    rows: dict[str, list[Row]] = defaultdict(list)
    cases = [c for c in cases_of(split) if not args.families or c.family in args.families]
    for clip in prepare(cases, size, frames):
        for mode in modes:
            name, options = parse_mode(mode)
            rows[mode] += evaluate(lambda: make_smoother(name, **options), [clip], size, frames,
                                   batch=args.batch, threads=args.threads, device=args.device,
                                   alpha_dtype=args.alpha_dtype)
        print(f"  {clip.case.name} at {size[0]}x{size[1]}: done", file=sys.stderr, flush=True)
    return rows


def print_floor(size: tuple[int, int], frames: int, split: str, modes: Sequence[str],
                args: argparse.Namespace) -> list[dict[str, object]]:
    """Per scene of ``split``: the affine floor and each mode's own error on the exact alpha, beside the
    families' per-frame MAD (all x1e3)."""
    print(f"\nFloor at {size[0]}x{size[1]}, {frames} frames: best affine between consecutive exact alphas, "
          "and each mode fed the exact alpha (MAD x1e3)\n")
    print("| scene | affine floor | " + " | ".join(f"{m} on exact" for m in modes) + " | per-frame MAD by family |")
    print("|---|---|" + "---|" * len(modes) + "---|")
    lines: list[dict[str, object]] = []
    scene_of: dict[str, dict[str, float]] = defaultdict(dict)
    first = {}
    cases = [c for c in cases_of(split) if not args.families or c.family in args.families]
    for clip in prepare(cases, size, frames):
        name = clip.case.scene.name
        scene_of[name][clip.case.family] = 1e3 * float(abs(clip.predictions - clip.truth).mean())
        first.setdefault(name, clip)
    for name, clip in first.items():
        own = {}
        for mode in modes:
            mode_name, options = parse_mode(mode)
            own[mode] = 1e3 * self_error(lambda: make_smoother(mode_name, **options), clip.images, clip.truth)
        floor = 1e3 * affine_floor(clip.truth, clip.cuts)
        families = ", ".join(f"{family} {mad:.2f}" for family, mad in scene_of[name].items())
        print(f"| {name} | {floor:.2f} | " + " | ".join(f"{own[m]:.2f}" for m in modes) + f" | {families} |")
        lines.append({"scene": name, "size": f"{size[0]}x{size[1]}", "affine_floor_x1e3": floor,
                      "self_error_x1e3": own, "per_frame_mad_x1e3": scene_of[name]})
    return lines


def print_family_table(rows: dict[str, list[Row]]) -> None:
    """One line per split, family and mode, the modes of a family together."""
    changes = {mode: family_changes(mode_rows, rows["off"]) for mode, mode_rows in rows.items()}
    for group in range(len(changes["off"])):
        for mode, mode_rows in rows.items():
            change = changes[mode][group]
            picked = [r for r in mode_rows if (r.family, r.split, r.size) == (change.family, change.split, change.size)]
            deltas = ("| - | - | - " if mode == "off" else
                      f"| {100 * change.mad:+.1f}% | {100 * change.dtssd:+.1f}% | {100 * change.fast_mad:+.1f}% ")
            print(f"| {change.split} | {change.family} | {change.size} | {mode} | {change.cases} "
                  f"| {mean([r.mad_x1e3 for r in picked]):.3f} | {mean([r.dtssd_x1e2 for r in picked]):.3f} "
                  f"| {mean([r.fast_mad_x1e3 for r in picked]):.3f} | {mean([r.ms_per_frame for r in picked]):.1f} "
                  f"{deltas}|")


def summary(size: tuple[int, int], rows: dict[str, list[Row]]) -> list[dict[str, object]]:
    """Per split and mode: the mean over its families of their changes against ``off``, and the targets."""
    lines = []
    for split in (TUNING, HELD_OUT_SEED, HELD_OUT_FAMILY, HELD_OUT_BOTH):
        splits = (HELD_OUT_SEED, HELD_OUT_FAMILY) if split == HELD_OUT_BOTH else (split,)
        for mode, mode_rows in rows.items():
            picked = [r for r in mode_rows if r.split in splits]
            if mode == "off" or not picked:
                continue
            change = mean_change(family_changes(picked, rows["off"]))
            ms = mean([r.ms_per_frame for r in picked])
            lines.append({"split": split, "size": f"{size[0]}x{size[1]}", "mode": mode, "cases": change.cases,
                          "dtssd": change.dtssd, "mad": change.mad, "fast_mad": change.fast_mad, "ms_per_frame": ms,
                          "targets": target_check(mode, change, ms, size[1])})
    return lines


def run_real(modes: Sequence[str], args: argparse.Namespace) -> list[dict[str, object]]:
    clips = real_clips(args.real_frames, args.real_height)
    by_mode = {}
    for mode in modes:
        name, options = parse_mode(mode)
        by_mode[mode] = evaluate_without_truth(lambda: make_smoother(name, **options), clips, batch=args.batch,
                                               threads=args.threads)
    print("\nReal clips, no ground truth (per-frame alphas: the demo model). still flicker x1e3: mean |alpha "
          "change| where the image is still; departure x1e3: mean |smoothed - per-frame|.\n")
    print("| clip | size | frames | mode | still flicker | vs off | departure | ms/frame |")
    print("|---|---|---|---|---|---|---|---|")
    out = []
    for i, clip in enumerate(clips):
        base = by_mode["off"][i].still_flicker_x1e3
        for mode, rows in by_mode.items():
            row = rows[i]
            ratio = "-" if mode == "off" else f"{100 * (row.still_flicker_x1e3 / base - 1):+.1f}%"
            print(f"| {clip.name} | {row.size} | {row.frames} | {mode} | {row.still_flicker_x1e3:.3f} | {ratio} "
                  f"| {row.departure_x1e3:.3f} | {row.ms_per_frame:.1f} |")
            out.append({"mode": mode, **asdict(row)})
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", nargs="+", default=["912x512", "1920x1080"], help="WIDTHxHEIGHT list")
    parser.add_argument("--frames", type=int, default=None,
                        help="frames per scene (default: 30 up to 720 lines, 16 above)")
    parser.add_argument("--split", choices=("tuning", "held-out", "all"), default="all")
    parser.add_argument("--modes", nargs="+", default=list(DEFAULT_MODES), help="NAME[:KEY=VALUE,...]; off is added")
    parser.add_argument("--families", nargs="+", default=None, choices=(*FAMILIES, NETWORK_FAMILY),
                        help="only these flicker families (default: every one of the split)")
    parser.add_argument("--json", default=None, metavar="OUT", help="write every row and summary to OUT")
    parser.add_argument("--real-frames", type=int, default=30, help="frames of each real clip (0: skip them)")
    parser.add_argument("--real-height", type=int, default=None, help="real clips scaled to this height")
    parser.add_argument("--floor", action="store_true", help="also print each scene's motion floor (see above)")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--threads", type=int, default=1, help="CPU threads while smoothing (timing: 1 core)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (frames and alphas moved there)")
    parser.add_argument("--alpha-dtype", choices=ALPHA_DTYPES, default="float32",
                        help="predictions handed over as exact floats, or as 8 bits like the pipeline's matting stage")
    args = parser.parse_args(argv)
    try:
        sizes = [parse_size(s) for s in args.sizes]
        modes = ["off", *[m for m in args.modes if m != "off"]]
        for mode in modes:
            parse_mode(mode)
        if args.frames is not None and args.frames < 2:
            raise ValueError(f"--frames must be at least 2, got {args.frames}")
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    torch.set_grad_enabled(False)
    started = time.strftime("%Y-%m-%d %H:%M")
    print(f"temporal evaluation, {started}, {platform.machine()} {os.cpu_count()} cores, torch {torch.__version__}, "
          f"smoothing on {args.threads} thread(s), device {args.device}, {args.alpha_dtype} alphas, "
          f"load average {os.getloadavg()[0]:.1f}")
    print("MAD x1e3, dtSSD x1e2, fast MAD x1e3 (frames of fast motion), means over the family's scenes; "
          "changes against off of the errors summed over the family's scenes")
    print("targets (flow): causal dtSSD <= -35%, window dtSSD <= -50%, MAD and fast MAD <= +5%, "
          f"causal < {COST_TARGET_MS:.0f} ms/frame at 1080p\n")
    report: dict[str, object] = {"date": started, "argv": sys.argv[1:], "machine": platform.machine(),
                                 "cores": os.cpu_count(), "threads": args.threads, "alpha_dtype": args.alpha_dtype}
    all_rows, summaries, floors = [], [], []
    for size in sizes:
        frames = args.frames or DEFAULT_FRAMES[min(DEFAULT_FRAMES, key=lambda h: abs(h - size[1]))]
        rows = run_size(size, frames, args.split, modes, args)
        print(f"\n{size[0]}x{size[1]}, {frames} frames per scene\n")
        print("| split | family | size | mode | cases | MAD | dtSSD | fast MAD | ms/frame | dMAD | ddtSSD "
              "| dfast MAD |")
        print("|---|---|---|---|---|---|---|---|---|---|---|---|")
        print_family_table(rows)
        all_rows += [{"mode": mode, **asdict(row)} for mode, mode_rows in rows.items() for row in mode_rows]
        summaries += summary(size, rows)
        if args.floor:
            floors += print_floor(size, frames, args.split, modes, args)
    print("\nSummary: mean over the split's families of their changes against per-frame (off)\n")
    print("| split | size | mode | cases | ddtSSD | dMAD | dfast MAD | ms/frame | targets |")
    print("|---|---|---|---|---|---|---|---|---|")
    for line in summaries:
        print(f"| {line['split']} | {line['size']} | {line['mode']} | {line['cases']} | {100 * line['dtssd']:+.1f}% "
              f"| {100 * line['mad']:+.1f}% | {100 * line['fast_mad']:+.1f}% | {line['ms_per_frame']:.1f} "
              f"| {line['targets']} |")
    report.update(rows=all_rows, summary=summaries, floor=floors)
    if args.real_frames:
        report["real"] = run_real(modes, args)
    if args.json:
        write_text(args.json, json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
