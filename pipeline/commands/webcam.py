"""``birefnet-video webcam``: matte a camera (or a file played as one) live, in a window or a browser."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from birefnet.atomic import write_text
from birefnet.errors import ConfigError, InputError, OutputError
from pipeline.commands import add_command
from pipeline.settings.common import check_runtime
from pipeline.settings.webcam import BROWSER_SOURCE, WebcamSettings

if TYPE_CHECKING:
    import numpy as np

    from birefnet.live_tracking import LiveTracker
    from birefnet.predictor import Predictor


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    from pipeline.settings.webcam import WEBCAM_SETTINGS, default_values

    parser = add_command(
        subparsers, "webcam", run=run,
        help="live matting of a camera or a video played in real time, in a window or a browser",
        description="Matte a camera live: capture keeps only the newest frame, inference takes the newest "
                    "one whenever it is free (the others are dropped and counted), the display shows the "
                    "newest result with capture/inference fps and capture-to-display latency. Keys in the "
                    "window and the page: q quits, b cycles backgrounds, s toggles smoothing, m shows the matte.",
    )
    WEBCAM_SETTINGS.add_arguments(parser, default_values())


def check_settings(settings: WebcamSettings) -> None:
    """The mistakes no single value shows, before the model loads or the camera opens."""
    if settings.source == BROWSER_SOURCE and settings.display != "web":
        raise ConfigError("--source browser needs --display web (the page sends the frames)")
    check_runtime(settings.runtime, settings.precision, settings.device)
    if settings.report is not None:
        report = Path(settings.report)
        if report.exists() and not settings.overwrite:
            raise OutputError(f"report exists: {report} (use --overwrite to replace it)")
        if not report.parent.is_dir():
            raise OutputError(f"folder of --report does not exist: {report.parent}")
    if settings.background_image is not None and not Path(settings.background_image).is_file():
        raise InputError(f"background image not found: {settings.background_image}")
    if settings.display == "window":
        from pipeline.webcam.display import check_window_support

        check_window_support()


def load_background_image(path: str | None) -> np.ndarray | None:
    if path is None:
        return None
    import cv2

    bgr = cv2.imread(path, cv2.IMREAD_COLOR)
    if bgr is None:
        raise InputError(f"not a readable image: {path}")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def build_predictor(settings: WebcamSettings) -> Predictor:
    """The warmed-up predictor at the resolution asked for, or at the calibrated one for 'auto'."""
    from birefnet import Predictor, load_model
    from birefnet.export.metadata import is_onnx_file
    from pipeline.webcam.calibrate import pick_resolution, warm_up

    on_torch = settings.runtime == "torch" or (settings.runtime == "auto" and not is_onnx_file(settings.model))
    model = load_model(settings.model) if on_torch else None  # loaded once for every calibrated size

    def at(size):
        if model is not None:
            return Predictor.from_model(model, device=settings.device, precision=settings.precision,
                                        resolution=size, compile=settings.compile, upsample=settings.upsample)
        # ONNX Runtime / TensorRT: one (cached, dynamic-size) export, one session per size
        return Predictor(settings.model, device=settings.device, precision=settings.precision, resolution=size,
                         compile=settings.compile, runtime=settings.runtime, upsample=settings.upsample)

    if settings.resolution is not None:
        predictor = at(settings.resolution)
        warm_up(predictor)
        return predictor
    predictor, calibration = pick_resolution(at, settings.fps_target)
    if not settings.quiet:
        verdict = "holds" if calibration.holds_target else "cannot hold"
        print(f"resolution {calibration.resolution} px ({calibration.inference_ms:.0f} ms per frame on "
              f"{predictor.device}) {verdict} {settings.fps_target:g} fps", file=sys.stderr)
    return predictor


def build_smoother(mode: str):
    """The causal smoother for ``--temporal``; None for 'off', which also disables the live toggle."""
    if mode == "off":
        return None
    from pipeline.temporal.smoother import make_smoother

    return make_smoother(mode)


def build_tracker(settings: WebcamSettings) -> LiveTracker | None:
    """The causal subject tracker for ``--roi auto`` (the subject at most the model pixels the model
    learned from, as ``process`` frames it); None for 'off'."""
    if settings.roi == "off":
        return None
    from birefnet.live_tracking import LiveTracker
    from birefnet.registry import subject_pixels_of
    from birefnet.tracking import TrackSettings

    return LiveTracker(TrackSettings(subject_pixels=subject_pixels_of(settings.model)))


def run(args: argparse.Namespace) -> int:
    from pipeline.settings.webcam import WEBCAM_SETTINGS
    from pipeline.sources import open_source
    from pipeline.webcam.capture import CaptureThread, source_spec
    from pipeline.webcam.engine import Engine
    from pipeline.webcam.live import LiveRun
    from pipeline.webcam.render import View

    settings = WebcamSettings(**WEBCAM_SETTINGS.values_of(args))
    check_settings(settings)
    view = View(background=settings.background, colour=settings.colour,
                image=load_background_image(settings.background_image))
    # the source opens before the model loads: a missing camera or file is reported at once
    source = None if settings.source == BROWSER_SOURCE else \
        open_source(source_spec(settings.source), loop=settings.loop)
    try:
        predictor = build_predictor(settings)
        engine = Engine(predictor, build_smoother(settings.temporal), tracker=build_tracker(settings))
        capture = None if source is None else CaptureThread(source, engine)
        report = LiveRun(engine, capture, view, display=settings.display, host=settings.host, port=settings.port,
                         duration=settings.duration, source_name=settings.source, quiet=settings.quiet).run()
    finally:
        if source is not None:
            source.close()
    resolution = predictor.resolution
    assert isinstance(resolution, tuple), "the live demo runs at a fixed resolution"
    width, height = resolution
    report.update(source=settings.source, model=settings.model, runtime=predictor.runtime.name,
                  device=str(predictor.device),
                  precision=str(predictor.dtype).removeprefix("torch."), resolution=f"{width}x{height}",
                  temporal=settings.temporal, roi=settings.roi, display=settings.display)
    if settings.report is not None:
        write_report(Path(settings.report), report)
    if not settings.quiet:
        print(summary_line(report), file=sys.stderr)
    return 0


def summary_line(report: dict) -> str:
    def ms(value):
        return "-" if value is None else f"{value:.0f} ms"
    return (f"capture {report['capture_fps']:.1f} fps, inference {report['inference_fps']:.1f} fps, "
            f"latency p50 {ms(report['latency_ms_p50'])} p95 {ms(report['latency_ms_p95'])}, "
            f"{report['frames_shown']} frames shown, {report['frames_dropped']} dropped")


def write_report(path: Path, report: dict) -> None:
    """Written whole or not at all (a temporary name, then a rename)."""
    write_text(path, json.dumps(report, indent=2) + "\n")
