"""Settings of `webcam`: the live source, the model and its calibration, the display and the report."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pipeline.settings import common, values
from pipeline.settings.table import Key, SettingsTable

DISPLAYS = ("window", "web", "none")
BROWSER_SOURCE = "browser"
AUTO_RESOLUTION = "auto"


@dataclass
class WebcamSettings:
    """One live session: source, model and calibration, smoothing, display, first view, report."""

    source: str = "0"
    loop: bool = False
    model: str = "lite"
    device: str = "auto"
    precision: str = "auto"
    runtime: str = "auto"
    upsample: str = "guided"
    compile: bool = False
    resolution: tuple[int, int] | None = None  # None: the largest square that holds fps_target
    fps_target: float = 30.0
    temporal: str = "ema"
    roi: str = "off"  # auto: crops that follow the subjects, found in the previous frames' alpha
    display: str = "window"
    host: str = "127.0.0.1"
    port: int = 8765
    background: str = "green"
    colour: tuple[int, int, int] = (0x28, 0x58, 0xC8)
    background_image: str | None = None
    duration: float | None = None  # None: until q / Ctrl-C
    report: str | None = None
    overwrite: bool = False
    quiet: bool = False


def _live_resolution(value: Any) -> tuple[int, int] | None:
    """N or WxH as (W, H), or None for 'auto'; no 'dynamic' live (each frame would recompile)."""
    size = values.resolution(AUTO_RESOLUTION)(value)
    if isinstance(size, str):  # the one word it takes: auto
        return None
    return (size, size) if isinstance(size, int) else size


def _view_background(value: Any) -> str:
    from pipeline.webcam.render import BACKGROUNDS  # OpenCV: only once the command runs

    return values.choice(BACKGROUNDS)(value)


WEBCAM_SETTINGS = SettingsTable("webcam", {
    "source": Key(values.text, "camera index (0), /dev/videoN, a video file or stream URL played at its own "
                  "frame rate, or 'browser' (the web page sends its own camera; needs --display web)", "SOURCE"),
    "loop": Key(values.boolean, "replay a video file source when it ends", kind="switch"),
    "model": common.MODEL,
    "device": common.DEVICE,
    "precision": common.PRECISION,
    "runtime": common.RUNTIME,
    "upsample": common.UPSAMPLE,
    "compile": Key(values.boolean, "torch.compile the model: a slower start for faster frames on GPU", kind="switch"),
    "resolution": Key(_live_resolution, "working resolution: N or WxH (multiples of 32), or 'auto': the largest "
                      "square that holds --fps-target on this device", "N|WxH|auto"),
    "fps_target": Key(values.number(above=0.0), "frame rate 'auto' resolution aims to hold", "FPS"),
    "temporal": common.TEMPORAL.with_help("causal temporal smoothing of the alpha; s toggles it live"),
    "roi": common.ROI.with_help("auto: matte crops that follow the subjects, found in the previous frames' alpha "
                                "(the whole frame when none is followed, and every 15 frames to find new ones)"),
    "display": Key(values.choice(DISPLAYS), "OpenCV window, web page on --host:--port, or none (headless)",
                   "|".join(DISPLAYS)),
    "host": Key(values.text, "address the web page binds", "ADDR"),
    "port": Key(values.integer(0, 65535), "port of the web page", "N"),
    "background": Key(_view_background, "first background shown (b cycles them)", "NAME"),
    "colour": Key(values.colour, "colour of the 'colour' background, #rrggbb", "#RRGGBB", aliases=("--color",)),
    "background_image": Key(values.optional(values.text), "picture for the 'image' background", "FILE"),
    "duration": Key(values.optional(values.number(above=0.0)), "stop after this many seconds (default: until q "
                    "or Ctrl-C)", "S"),
    "report": common.REPORT.with_help("write capture/inference fps, latency p50/p95, frames shown and dropped "
                                      "as JSON at exit"),
    "overwrite": common.OVERWRITE.with_help("replace an existing --report file"),
    "quiet": common.QUIET.with_help("print nothing but errors"),
})


def default_values() -> dict[str, Any]:
    shown = vars(WebcamSettings())
    return {**shown, "resolution": AUTO_RESOLUTION, "colour": "#{:02x}{:02x}{:02x}".format(*shown["colour"])}
