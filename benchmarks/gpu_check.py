"""Every measurement only a GPU can give, in one run of under 8 minutes, written as one markdown file.

    python -m benchmarks.gpu_check -o gpu_check.md            # on a CUDA machine
    python -m benchmarks.gpu_check --smoke -o smoke.md         # CPU, tiny sizes, a few seconds (the tests)

Sections: model throughput (hr-matting at 2048, general and lite at 1024; bf16/fp16, batch 1/2/4, eager
and compiled, peak memory per setting); ONNX Runtime CUDA and TensorRT throughput for lite at 1024;
deformable convolution against torchvision's op (parity and speed); bf16 against fp32 logits; pipeline
efficiency with hr-matting on a 1080p and a 4K clip; webcam p50/p95 latency for lite; temporal smoothing
and foreground estimation at 1080p and 4K. Weights are random (speed does not depend on them; the
bf16 agreement is measured on the same random weights). A section that would overrun ``--budget`` is
skipped and says so; one whose dependency is missing (torchvision, TensorRT) says what is missing.
``--smoke`` runs every section on the CPU at toy sizes with the demo architecture, to prove the script
before a GPU is lent; its figures mean nothing.
"""

from __future__ import annotations

import argparse
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from functools import partial
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.foreground import timed_ms  # noqa: E402
from birefnet import Predictor, build_model  # noqa: E402
from birefnet.atomic import write_text  # noqa: E402
from birefnet.errors import UserError  # noqa: E402

Rows = list[list[str]]


@dataclass(frozen=True)
class Plan:
    """Models, sizes and repeats of one check; ``FULL`` on a GPU, ``SMOKE`` on the CPU."""

    device: str
    throughput: tuple[tuple[str, int], ...]  # (model, side)
    precisions: tuple[str, ...]
    batches: tuple[int, ...]
    compiled: bool
    onnx_model: tuple[str, int]
    deform_shapes: tuple[tuple[int, int, int], ...]  # (channels, side, kernel)
    parity_model: tuple[str, int]
    pipeline_model: tuple[str, int]
    clips: dict[str, tuple[int, int]] = field(default_factory=dict)
    clip_frames: int = 16
    webcam_model: tuple[str, int] = ("lite", 1024)
    webcam: dict = field(default_factory=dict)
    smoothing_sizes: dict[str, tuple[int, int]] = field(default_factory=dict)
    smoothing_frames: int = 8
    repeats: int = 5


FULL = Plan("cuda", (("hr-matting", 2048), ("general", 1024), ("lite", 1024)), ("bf16", "fp16"), (1, 2, 4), True,
            ("lite", 1024), ((64, 256, 3), (64, 256, 7), (64, 512, 7)), ("general", 1024), ("hr-matting", 2048),
            {"1080p": (1920, 1080), "4K": (3840, 2160)}, 16, ("lite", 1024),
            {"duration": 10.0, "size": "1280x720", "source_fps": 120},
            {"1080p": (1920, 1080), "4K": (3840, 2160)}, 8, 5)
SMOKE = Plan("cpu", (("demo", 64),), ("fp32",), (1, 2), False, ("demo", 64), ((4, 16, 3),), ("demo", 32),
             ("demo", 64), {"tiny": (96, 64)}, 3, ("demo", 64), {"duration": 1.0, "size": "96x64", "source_fps": 15},
             {"tiny": (96, 64)}, 3, 1)


def random_frames(batch: int, side: int, device: torch.device) -> torch.Tensor:
    frames = np.random.default_rng(batch).integers(0, 256, (batch, side, side, 3), dtype=np.uint8)
    return torch.from_numpy(frames).to(device)


def peak_mib(device: torch.device) -> str:
    return f"{torch.cuda.max_memory_allocated(device) / 2**20:.0f}" if device.type == "cuda" else "n/a (CPU)"


def reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def time_predictor(predictor: Predictor, batch: int, side: int, repeats: int) -> tuple[float, str]:
    """(frames/s, peak MiB) of ``predict`` on uint8 frames already on the device."""
    frames = random_frames(batch, side, predictor.device)
    reset_peak(predictor.device)
    ms, _ = timed_ms(lambda: predictor.predict(frames, dtype="uint8"), predictor.device, repeats)
    return batch / (ms / 1e3), peak_mib(predictor.device)


def throughput(plan: Plan, device: torch.device, work: Path) -> tuple[list[str], Rows]:
    rows = []
    for name, side in plan.throughput:
        model = build_model(name)
        for precision in plan.precisions:
            for mode in ("eager", "compiled") if plan.compiled else ("eager",):
                predictor = Predictor.from_model(model, device=device, precision=precision, resolution=side,
                                                 compile=mode == "compiled")
                for batch in plan.batches:
                    fps, peak = time_predictor(predictor, batch, side, plan.repeats)
                    rows.append([name, f"{side}", precision, mode, f"{batch}", f"{fps:.2f}", f"{1e3 / fps:.1f}", peak])
        del model
    return ["model", "side", "precision", "mode", "batch", "frames/s", "ms/frame", "peak MiB"], rows


def onnx_runtimes(plan: Plan, device: torch.device, work: Path) -> tuple[list[str], Rows]:
    from birefnet.export.to_onnx import ExportOptions, export_onnx

    name, side = plan.onnx_model
    model = build_model(name)
    shape = {} if device.type == "cuda" else {"resolution": (side, side)}  # a static CPU export traces faster
    files = {precision: export_onnx(model, None, work / f"{name}-{precision}.onnx",
                                    ExportOptions(precision=precision, verify=False, **shape)).path
             for precision in (("fp32", "fp16") if device.type == "cuda" else ("fp32",))}
    settings = [("onnx", "fp32"), ("onnx", "fp16"), ("tensorrt", "fp16")]
    rows = []
    for runtime, precision in settings:
        path = files.get(precision if runtime == "onnx" else "fp32")
        if path is None:
            rows.append([runtime, precision, "-", "-", "-", "n/a: fp16 export is for CUDA", "-"])
            continue
        try:
            started = time.perf_counter()
            predictor = Predictor(str(path), device=device, precision=precision if runtime == "tensorrt" else "auto",
                                  resolution=side, runtime=runtime)
            predictor.predict(random_frames(1, side, device), dtype="uint8")  # TensorRT builds its engine here
            first_s = time.perf_counter() - started
        except UserError as exc:
            rows.append([runtime, precision, "-", "-", "-", f"n/a: {exc}", "-"])
            continue
        for batch in (1, 4):
            fps, peak = time_predictor(predictor, batch, side, plan.repeats)
            rows.append([runtime, precision, predictor.runtime.provider, f"{batch}", f"{fps:.2f}", f"{first_s:.1f}",
                         peak])
    return ["runtime", "precision", "provider", "batch", "frames/s", "first call s (engine build)", "peak MiB"], rows


def deform_conv(plan: Plan, device: torch.device, work: Path) -> tuple[list[str], Rows]:
    from birefnet.modules.deform_conv import _torchvision_deform_conv2d, deform_conv2d_torch

    reference = _torchvision_deform_conv2d()
    rows = []
    for channels, side, k in plan.deform_shapes:
        g = torch.Generator().manual_seed(0)
        x = torch.randn(1, channels, side, side, generator=g).to(device)
        offset = (2 * torch.randn(1, 2 * k * k, side, side, generator=g)).to(device)
        mask = torch.rand(1, k * k, side, side, generator=g).to(device)
        weight = torch.randn(4 * channels, channels, k, k, generator=g).to(device)
        ours_ms, ours = timed_ms(partial(deform_conv2d_torch, x, offset, weight, None, mask, padding=k // 2), device,
                                 plan.repeats)
        shape = f"1x{channels}x{side}x{side}, {k}x{k}"
        if reference is None:
            rows.append([shape, f"{ours_ms:.2f}", "n/a: torchvision not importable", "-", "-"])
            continue
        theirs_ms, theirs = timed_ms(partial(reference, x, offset, weight, None, padding=k // 2, mask=mask), device,
                                     plan.repeats)
        rows.append([shape, f"{ours_ms:.2f}", f"{theirs_ms:.2f}", f"{theirs_ms / ours_ms:.2f}x",
                     f"{(ours - theirs).abs().max().item():.1e}"])
    return ["map, kernel", "ours ms", "torchvision ms", "ours speed-up", "max abs diff"], rows


def bf16_agreement(plan: Plan, device: torch.device, work: Path) -> tuple[list[str], Rows]:
    name, side = plan.parity_model
    model = build_model(name)
    frames = random_frames(2, side, device)
    logits = {}
    for precision in ("fp32", "bf16"):
        predictor = Predictor.from_model(model, device=device, precision=precision, resolution=side)
        with torch.inference_mode():
            logits[precision] = predictor.runtime(predictor._normalised_input(frames.permute(0, 3, 1, 2))).float()
    difference = (logits["bf16"] - logits["fp32"]).abs()
    alpha = (torch.sigmoid(logits["bf16"]) - torch.sigmoid(logits["fp32"])).abs()
    return (["model", "side", "max abs logit diff", "mean abs logit diff", "alpha MAD", "alpha max diff"],
            [[name, f"{side}", f"{difference.max().item():.3f}", f"{difference.mean().item():.4f}",
              f"{alpha.mean().item():.2e}", f"{alpha.max().item():.3f}"]])


def pipeline_efficiency(plan: Plan, device: torch.device, work: Path) -> tuple[list[str], Rows]:
    from safetensors.torch import save_file

    from benchmarks.pipeline import efficiency
    from tests.clips import make_clip
    from workers.matting import PredictorSpec

    name, side = plan.pipeline_model
    checkpoint = work / f"{name}-random.safetensors"
    save_file(build_model(name).state_dict(), str(checkpoint))
    clips = {label: make_clip(work / f"{label}.mp4", width=w, height=h, frames=plan.clip_frames, codec="libx264")
             for label, (w, h) in plan.clips.items()}
    args = SimpleNamespace(output="matte", temporal="off", batch_size=4, refine_foreground="false", codec="ffv1",
                           device=device.type, backends=["local"], workers=[1])
    results = efficiency(args, clips, PredictorSpec(str(checkpoint), "auto", side), work)
    return (["input", "model", "pipeline frames/s", "model frames/s in run", "efficiency", "model alone frames/s"],
            [[r["input"], f"{name} at {side}", f"{r['pipeline_fps']}", f"{r['model_fps_in_run']}", f"{r['efficiency']}",
              f"{r['model_only_fps_alone']}"] for r in results])


def webcam_latency(plan: Plan, device: torch.device, work: Path) -> tuple[list[str], Rows]:
    from benchmarks.webcam import CLIP_SECONDS, measure
    from tests.clips import make_clip

    name, side = plan.webcam_model
    options = plan.webcam
    width, height = (int(v) for v in options["size"].split("x"))
    clip = make_clip(work / "camera.mp4", width=width, height=height, frames=CLIP_SECONDS * options["source_fps"],
                     fps=options["source_fps"], options={"preset": "ultrafast"})
    args = SimpleNamespace(device=device.type, precision="auto", compile=False, model=name, **options)
    report = measure(build_model(name), clip, side, args)
    return (["model", "side", "camera", "inference fps", "display fps", "latency p50 ms", "latency p95 ms", "dropped"],
            [[name, f"{side}", f"{options['size']} at {options['source_fps']} fps", f"{report['inference_fps']:.1f}",
              f"{report['display_fps']:.1f}", f"{report['latency_ms_p50']:.1f}", f"{report['latency_ms_p95']:.1f}",
              f"{report['frames_dropped']}"]])


def smoothing_and_foreground(plan: Plan, device: torch.device, work: Path) -> tuple[list[str], Rows]:
    from birefnet.foreground import estimate_foreground
    from pipeline.evaluation.runner import smooth_clip
    from pipeline.synthetic import FlickerSimulator, SyntheticScene
    from pipeline.temporal.smoother import make_smoother

    rows = []
    for label, (width, height) in plan.smoothing_sizes.items():
        frames, truth = SyntheticScene(0, plan.smoothing_frames, height, width).frames()
        predictions = FlickerSimulator(0).predict_batch(truth, 0)
        for mode in ("ema", "flow"):
            _, ms = smooth_clip(make_smoother(mode), frames, predictions, 4, device.type)
            rows.append([f"temporal {mode}", f"{label} ({width}x{height})", f"{ms:.1f}"])
        image = torch.from_numpy(frames[0]).permute(2, 0, 1)[None].float().div(255).to(device)
        alpha = torch.from_numpy(truth[0])[None, None].to(device)
        with torch.inference_mode():
            ms, _ = timed_ms(partial(estimate_foreground, image, alpha), device, plan.repeats)
        rows.append(["foreground (blur fusion)", f"{label} ({width}x{height})", f"{ms:.1f}"])
    return ["stage", "frame size", "ms/frame"], rows


SECTIONS: dict[str, Callable[[Plan, torch.device, Path], tuple[list[str], Rows]]] = {
    "Model throughput (Predictor path, random weights)": throughput,
    "ONNX Runtime CUDA and TensorRT": onnx_runtimes,
    "Deformable convolution: ours vs torchvision": deform_conv,
    "bf16 vs fp32 logits": bf16_agreement,
    "Pipeline efficiency (local backend)": pipeline_efficiency,
    "Webcam latency (headless, EMA)": webcam_latency,
    "Temporal smoothing and foreground": smoothing_and_foreground,
}


def table(header: list[str], rows: Rows) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-o", "--output", default="gpu_check.md", help="markdown file to write")
    parser.add_argument("--smoke", action="store_true", help="CPU, toy sizes, a few seconds")
    parser.add_argument("--budget", type=float, default=470.0, help="seconds for the whole check")
    parser.add_argument("--only", nargs="*", help="section functions to run (default: all)")
    args = parser.parse_args(argv)
    plan = SMOKE if args.smoke else FULL
    if plan.device == "cuda" and not torch.cuda.is_available():
        print("error: no CUDA GPU here; run with --smoke on a CPU", file=sys.stderr)
        return 2
    device = torch.device(plan.device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or platform.machine()
    started = time.perf_counter()
    parts = [f"# GPU check{' (smoke run on the CPU: figures mean nothing)' if args.smoke else ''}\n",
             f"{date.today().isoformat()}, {platform.node()}, {name}, torch {torch.__version__}; command: "
             f"python -m benchmarks.gpu_check {' '.join(argv if argv is not None else sys.argv[1:])}\n"]
    with torch.no_grad(), tempfile.TemporaryDirectory(prefix="gpu-check-") as folder:  # no_grad: scoped, not global
        for title, section in SECTIONS.items():
            if args.only and section.__name__ not in args.only:
                continue
            spent = time.perf_counter() - started
            if spent > args.budget:
                parts.append(f"## {title}\n\nskipped: the {args.budget:.0f} s budget was spent ({spent:.0f} s)\n")
                continue
            began = time.perf_counter()
            header, rows = section(plan, device, Path(folder))
            parts.append(f"## {title}\n\n{table(header, rows)}\n\n({time.perf_counter() - began:.1f} s)\n")
            print(parts[-1], flush=True)
    parts.append(f"total {time.perf_counter() - started:.0f} s\n")
    write_text(args.output, "\n".join(parts))
    return 0


if __name__ == "__main__":
    sys.exit(main())
