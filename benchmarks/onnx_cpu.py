"""CPU frames/s of the same frames through PyTorch eager and ONNX Runtime (fp32, and int8 where exported).

    python -m benchmarks.onnx_cpu                                   # demo and lite at 256, 512, 1024
    python -m benchmarks.onnx_cpu --models lite --sizes 1024 --frames 4

Every row runs the Predictor's own path (uint8 upload, normalise, model, sigmoid) at the frame's own
size, so only the runtime differs. The demo model has its bundled weights; other variants random ones
(speed does not depend on their values). The exports are dynamic (one file serves every size) and the
int8 file quantises the matrix products (``--quantize int8``); their verification and int8-cost lines
are printed as the export prints them. ``rembg-style`` is the peer reference: the exported fp32 file in
a plain ``InferenceSession`` with default options, pre- and post-processing in NumPy per image, which
is how rembg runs BiRefNet sessions on CPU.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from birefnet import Predictor, build_model  # noqa: E402
from birefnet.export.to_onnx import ExportOptions, export_onnx  # noqa: E402
from birefnet.model import IMAGENET_MEAN, IMAGENET_STD  # noqa: E402
from birefnet.registry import get_variant  # noqa: E402
from birefnet.weights import load_model_and_variant  # noqa: E402


def frames_per_second(run, frames: np.ndarray, repeats: int) -> float:
    """Frames/s of ``run(frame)`` one frame at a time, the median of ``repeats`` passes after a warm-up."""
    run(frames[:1])
    passes = []
    for _ in range(repeats):
        started = time.perf_counter()
        for i in range(len(frames)):
            run(frames[i:i + 1])
        passes.append(time.perf_counter() - started)
    return len(frames) / statistics.median(passes)


def rembg_style(path: Path):
    """One image at a time through a default session, NumPy pre/post-processing (as rembg does)."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    mean, std = np.array(IMAGENET_MEAN, np.float32), np.array(IMAGENET_STD, np.float32)

    def run(frames: np.ndarray) -> np.ndarray:
        x = ((frames[0].astype(np.float32) / 255.0 - mean) / std).transpose(2, 0, 1)[None]
        logits = session.run(None, {name: np.ascontiguousarray(x)})[0]
        return (255.0 / (1.0 + np.exp(-logits[0, 0]))).astype(np.uint8)

    return run


def load(name: str) -> tuple[torch.nn.Module, object]:
    variant = get_variant(name)
    if variant is not None and variant.bundled_path is not None:
        return load_model_and_variant(name)
    torch.manual_seed(0)
    return build_model(name), variant


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=["demo", "lite"])
    parser.add_argument("--sizes", nargs="+", type=int, default=[256, 512, 1024])
    parser.add_argument("--frames", type=int, default=3, help="frames per timed pass")
    parser.add_argument("--repeats", type=int, default=2, help="timed passes (the median counts)")
    parser.add_argument("--no-int8", action="store_true")
    args = parser.parse_args(argv)
    print(f"{date.today().isoformat()}, {platform.node()}, {platform.processor() or platform.machine()}, "
          f"{torch.get_num_threads()} torch threads, torch {torch.__version__}; command: "
          f"python -m benchmarks.onnx_cpu {' '.join(sys.argv[1:])}", flush=True)
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for name in args.models:
            model, variant = load(name)
            fp32 = export_onnx(model, variant, Path(folder) / f"{name}.onnx", ExportOptions())
            print(f"{name} fp32 export ({fp32.seconds:.0f} s): {fp32.verification.line()}", flush=True)
            files = {"onnx fp32": fp32.path}
            if not args.no_int8:
                int8 = export_onnx(model, variant, Path(folder) / f"{name}-int8.onnx", ExportOptions(quantize="int8"))
                print(f"{name} int8 export ({int8.seconds:.0f} s): {int8.quantization.line()}", flush=True)
                files["onnx int8"] = int8.path
            for side in args.sizes:
                frames = np.random.default_rng(side).integers(0, 256, (args.frames, side, side, 3), dtype=np.uint8)
                runs = {"torch eager fp32": Predictor.from_model(model, device="cpu", precision="fp32",
                                                                 resolution=side).predict}
                runs.update({label: Predictor(str(path), device="cpu", resolution=side).predict
                             for label, path in files.items()})
                if name == "lite" and side == 1024:
                    runs["rembg-style fp32"] = rembg_style(fp32.path)
                speeds = {label: frames_per_second(run, frames, args.repeats) for label, run in runs.items()}
                base = speeds["torch eager fp32"]
                for label, fps in speeds.items():
                    rows.append(f"| {name} | {side} | {label} | {fps:.2f} | {fps / base:.2f}x |")
                    print(rows[-1], flush=True)
    print("\n| model | side | runtime | frames/s | vs torch |\n|---|---|---|---|---|")
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
