"""``birefnet-video webcam``: matte a camera (or a file played as one) live, in a window or a browser."""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from pathlib import Path

from birefnet.errors import ConfigError, InputError, OutputError


DISPLAYS = ("window", "web", "none")
BROWSER_SOURCE = "browser"


def add_parser(subparsers) -> None:
    from pipeline.temporal.modes import TEMPORAL_MODES
    from pipeline.webcam.render import BACKGROUNDS

    parser = subparsers.add_parser(
        "webcam",
        help="live matting of a camera or a video played in real time, in a window or a browser",
        description="Matte a camera live: capture keeps only the newest frame, inference takes the newest "
                    "one whenever it is free (the others are dropped and counted), the display shows the "
                    "newest result with capture/inference fps and capture-to-display latency. Keys in the "
                    "window and the page: q quits, b cycles backgrounds, s toggles smoothing, m shows the matte.",
    )
    parser.add_argument("--source", default="0",
                        help="camera index (0), /dev/videoN, a video file or stream URL played at its own "
                             "frame rate, or 'browser' (the web page sends its own camera; needs --display web)"
                             " [default: %(default)s]")
    parser.add_argument("--loop", action="store_true", help="replay a video file source when it ends")
    parser.add_argument("--model", default="lite",
                        help="variant name, checkpoint file, hub-layout folder or repo id [default: %(default)s]")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N [default: %(default)s]")
    parser.add_argument("--precision", default="auto",
                        help="auto (fp16/bf16 on GPU, fp32 on CPU), fp32, fp16, bf16 [default: %(default)s]")
    parser.add_argument("--compile", action="store_true",
                        help="torch.compile the model: a slower start for faster frames on GPU")
    parser.add_argument("--resolution", default="auto",
                        help="working resolution: N or WxH (multiples of 32), or 'auto': the largest square "
                             "that holds --fps-target on this device [default: %(default)s]")
    parser.add_argument("--fps-target", type=float, default=30.0,
                        help="frame rate 'auto' resolution aims to hold [default: %(default)s]")
    parser.add_argument("--smoothing", choices=TEMPORAL_MODES, default="ema",
                        help="causal temporal smoothing of the alpha; s toggles it live [default: %(default)s]")
    parser.add_argument("--display", choices=DISPLAYS, default="window",
                        help="OpenCV window, web page on --host:--port, or none (headless) [default: %(default)s]")
    parser.add_argument("--host", default="127.0.0.1", help="address the web page binds [default: %(default)s]")
    parser.add_argument("--port", type=int, default=8765, help="port of the web page [default: %(default)s]")
    parser.add_argument("--background", choices=BACKGROUNDS, default="green",
                        help="first background shown [default: %(default)s]")
    parser.add_argument("--colour", "--color", dest="colour", default="#2858c8",
                        help="colour of the 'colour' background, #rrggbb [default: %(default)s]")
    parser.add_argument("--background-image", type=Path, help="picture for the 'image' background")
    parser.add_argument("--duration", type=float, help="stop after this many seconds [default: until q / Ctrl-C]")
    parser.add_argument("--report", type=Path, help="write capture/inference fps, latency p50/p95, frames "
                                                     "shown and dropped as JSON at exit")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --report file")
    parser.add_argument("--quiet", action="store_true", help="print nothing but errors")
    parser.set_defaults(run=run)


def parse_colour(text: str) -> tuple[int, int, int]:
    match = re.fullmatch(r"#?([0-9a-fA-F]{6})", text.strip())
    if match is None:
        raise ConfigError(f"--colour must be #rrggbb, got {text!r}")
    value = match.group(1)
    return tuple(int(value[i:i + 2], 16) for i in (0, 2, 4))


def parse_resolution(text: str) -> tuple[int, int] | None:
    """None for 'auto', else (W, H)."""
    from birefnet.predictor import parse_resolution as parse_size

    if text == "auto":
        return None
    size = parse_size(text, default=None)
    if size == "dynamic":
        raise ConfigError("--resolution dynamic is not offered live; give N, WxH or auto")
    return size


def check_args(args: argparse.Namespace) -> None:
    """Every mistake the flags can hold, before the model loads or the camera opens."""
    if args.duration is not None and args.duration <= 0:
        raise ConfigError(f"--duration must be positive, got {args.duration}")
    if args.fps_target <= 0:
        raise ConfigError(f"--fps-target must be positive, got {args.fps_target}")
    if not 0 <= args.port <= 65535:
        raise ConfigError(f"--port must be 0..65535, got {args.port}")
    if args.source == BROWSER_SOURCE and args.display != "web":
        raise ConfigError("--source browser needs --display web (the page sends the frames)")
    if args.report is not None:
        if args.report.exists() and not args.overwrite:
            raise OutputError(f"report exists: {args.report} (use --overwrite to replace it)")
        if not args.report.parent.is_dir():
            raise OutputError(f"folder of --report does not exist: {args.report.parent}")
    if args.background_image is not None and not args.background_image.is_file():
        raise InputError(f"background image not found: {args.background_image}")
    parse_resolution(args.resolution)
    if args.display == "window":
        from pipeline.webcam.display import check_window_support

        check_window_support()


def load_background_image(path: Path | None):
    if path is None:
        return None
    import cv2

    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise InputError(f"not a readable image: {path}")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def build_predictor(args: argparse.Namespace, resolution: tuple[int, int] | None):
    """The warmed-up predictor at ``resolution``, or at the calibrated one when that is None."""
    from birefnet import Predictor, load_model
    from pipeline.webcam.calibrate import pick_resolution, warm_up

    model = load_model(args.model)

    def at(size):
        return Predictor.from_model(model, device=args.device, precision=args.precision, resolution=size,
                                    compile=args.compile)

    if resolution is not None:
        predictor = at(resolution)
        warm_up(predictor)
        return predictor
    predictor, calibration = pick_resolution(at, args.fps_target)
    if not args.quiet:
        verdict = "holds" if calibration.holds_target else "cannot hold"
        print(f"resolution {calibration.resolution} px ({calibration.inference_ms:.0f} ms per frame on "
              f"{predictor.device}) {verdict} {args.fps_target:g} fps", file=sys.stderr)
    return predictor


def build_smoother(mode: str):
    """The causal smoother for ``--smoothing``; None for 'off', which also disables the live toggle."""
    if mode == "off":
        return None
    from pipeline.temporal.smoother import make_smoother

    return make_smoother(mode)


def run(args: argparse.Namespace) -> int:
    from pipeline.sources import open_source
    from pipeline.webcam.capture import CaptureThread, source_spec
    from pipeline.webcam.engine import Engine
    from pipeline.webcam.live import LiveRun
    from pipeline.webcam.render import View

    check_args(args)
    view = View(background=args.background, colour=parse_colour(args.colour),
                image=load_background_image(args.background_image))
    resolution = parse_resolution(args.resolution)
    # the source opens before the model loads: a missing camera or file is reported at once
    source = None if args.source == BROWSER_SOURCE else open_source(source_spec(args.source), loop=args.loop)
    try:
        predictor = build_predictor(args, resolution)
        engine = Engine(predictor, build_smoother(args.smoothing))
        capture = None if source is None else CaptureThread(source, engine)
        report = LiveRun(engine, capture, view, display=args.display, host=args.host, port=args.port,
                         duration=args.duration, source_name=args.source, quiet=args.quiet).run()
    finally:
        if source is not None:
            source.close()
    width, height = predictor.resolution
    report.update(source=args.source, model=args.model, device=str(predictor.device),
                  precision=str(predictor.dtype).removeprefix("torch."), resolution=f"{width}x{height}",
                  smoothing=args.smoothing, display=args.display)
    if args.report is not None:
        write_report(args.report, report)
    if not args.quiet:
        print(summary_line(report), file=sys.stderr)
    return 0


def summary_line(report: dict) -> str:
    def ms(value):
        return "-" if value is None else f"{value:.0f} ms"
    return (f"capture {report['capture_fps']:.1f} fps, inference {report['inference_fps']:.1f} fps, "
            f"latency p50 {ms(report['latency_ms_p50'])} p95 {ms(report['latency_ms_p95'])}, "
            f"{report['frames_shown']} frames shown, {report['frames_dropped']} dropped")


def write_report(path: Path, report: dict) -> None:
    """Write under a temporary name and rename, so a report file is always complete."""
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(json.dumps(report, indent=2) + "\n")
    os.replace(partial, path)
