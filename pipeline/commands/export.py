"""`birefnet-video export`: a model source as an ONNX file with dynamic batch and size, verified.

The exported file runs anywhere ONNX Runtime does (``--runtime onnx``/``tensorrt`` here, or any other
program): float32 (N, 3, H, W) normalised RGB in, float32 logits (N, 1, H, W) out, and the variant,
its resolution and normalisation in the file's metadata.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from birefnet.errors import OutputError
from pipeline.commands import add_command
from pipeline.settings.export import DYNAMIC, EXPORT_SETTINGS, ExportSettings, default_values

EXAMPLES = """examples:
  birefnet-video export --model lite -o lite.onnx                     # any size, any batch, fp32
  birefnet-video export --model hr-matting -o hr.onnx --resolution 2048 --batch 1 --precision fp16
  birefnet-video export --model lite -o lite-int8.onnx --quantize int8  # smaller and for CPU
then:
  birefnet-video process clip.mp4 -o clip.mov --model lite.onnx
"""


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = add_command(
        subparsers, "export", help="export a model to ONNX (dynamic batch and size), checked against PyTorch",
        description="Export a BiRefNet model to ONNX. The file is run with ONNX Runtime and compared with "
                    "PyTorch before it is put in place.",
        examples=EXAMPLES, run=run)
    EXPORT_SETTINGS.add_arguments(parser, default_values())


def run(args: argparse.Namespace) -> int:
    from birefnet.export.to_onnx import ExportOptions, export_onnx
    from birefnet.weights import load_model_and_variant

    settings = ExportSettings(**EXPORT_SETTINGS.values_of(args))
    output = Path(settings.output).expanduser()
    if output.suffix.lower() != ".onnx":
        raise OutputError(f"-o {output}: an ONNX export is written to a .onnx file")
    if output.exists() and not settings.overwrite:  # kept, exit 0, as `process` and `demo` keep theirs
        if not settings.quiet:
            print(f"export: skipped, {output} exists (use --overwrite to replace it)", flush=True)
        return 0
    if not output.parent.is_dir():
        raise OutputError(f"folder of -o does not exist: {output.parent}")
    options = ExportOptions(
        resolution=None if isinstance(settings.resolution, str) else settings.resolution,  # str: DYNAMIC
        batch=None if settings.batch == DYNAMIC else int(settings.batch), precision=settings.precision,
        opset=settings.opset, quantize=None if settings.quantize == "none" else settings.quantize,
        verify=settings.verify)
    model, variant = load_model_and_variant(settings.model, "cpu")
    report = export_onnx(model, variant, output, options)
    if not settings.quiet:
        size_mb = report.path.stat().st_size / 1e6
        print(f"wrote {report.path} ({size_mb:.1f} MB, {report.metadata.describe()}) in {report.seconds:.1f} s")
    print(report.verification.line() if report.verification else "not verified (--no-verify)")
    if report.quantization:
        print(report.quantization.line())
    return 0
