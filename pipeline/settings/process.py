"""Settings of a `process` run (and of the runs `demo` makes): ``ProcessConfig`` and its keys.

Precedence: defaults < ``--config`` preset < flags. A bad value, an unknown key or a combination
that cannot work is a ``ConfigError`` naming it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

from birefnet.errors import ConfigError
from pipeline.settings import common, values
from pipeline.settings.table import Key, SettingsTable

OUTPUT_KINDS = ("rgba", "matte", "composite", "foreground", "picture+matte")
ALPHA_MODES = ("auto", "straight", "premultiplied")
EXR_DEPTHS = ("half", "float")  # pipeline.encoders.EXR_DEPTHS
EXR_COMPRESSIONS = ("zips", "zip", "piz", "dwaa", "rle", "none")  # pipeline.encoders.EXR_COMPRESSIONS
BACKGROUND_NAMES = ("green", "blue", "black", "white", "blur")
BACKGROUND_FITS = ("fill", "fit", "stretch")  # pipeline.composite.FITS (a test keeps them equal)
PLACEMENTS = ("auto", "cpu", "cuda")  # workers place models on GPUs or CPUs; no single-device choice
AUDIO_MODES = ("copy", "drop")
BACKENDS = ("auto", "ray", "local")
BIT_DEPTHS = ("auto", "8", "10", "16")


@dataclass
class ProcessConfig:
    """Everything one `process` run needs besides the file names."""

    model: str = "hr-matting"
    output: str = "rgba"
    background: str = "green"
    background_fit: str = "fill"
    light_wrap: float = 0.0
    blur_radius: float | None = None  # None: 2.5% of the frame's long side
    codec: str | None = None  # None: the container's default (ProRes 4444 for .mov with alpha, ...)
    crf: int | None = None
    preset: str | None = None
    bitrate: str | None = None
    prores_profile: str | None = None
    bit_depth: int | None = None  # None: follow the source (10-bit stays 10-bit)
    alpha: str | None = None  # straight | premultiplied; None: premultiplied for EXR, straight elsewhere
    exr_depth: str | None = None  # None: the EXR default (half); set on another format it draws a note
    exr_compression: str | None = None  # None: the EXR default (zips)
    start_number: int | str | None = None  # None: a numbered input's own numbers, else 1001; or 'timecode'
    audio: str = "copy"
    resolution: int | tuple[int, int] | str | None = None  # None: the model's own
    temporal: str = "flow"
    temporal_window: int = 0  # look-ahead frames of the smoother (0: causal)
    refine_foreground: bool = True
    precision: str = "auto"
    runtime: str = "auto"
    upsample: str = "guided"
    device: str = "auto"
    batch_size: int = 4
    in_flight: int = 2
    workers: int | None = None
    gpus_per_worker: float = 1.0
    ray_address: str | None = None
    backend: str = "auto"
    frames: str | None = None  # 'A:B' frame range of each input
    sequence_fps: Fraction = Fraction(25)  # frame rate of image-sequence inputs
    overwrite: bool = False
    allow_partial: bool = False  # a truncated input's salvaged output is a success (exit 0)
    quiet: bool = False
    report: str | None = None
    box: tuple[tuple[float, float, float, float], ...] | None = None  # boxes for every frame (pixels or fractions)
    boxes: str | None = None  # CSV/JSON file of per-frame boxes (keyframes, interpolated)
    roi_margin: float = 0.1  # boxes and the tracked box grow by this fraction of their size each side
    roi: str = "off"  # auto: find and follow the subject with a coarse pass, matte the crop
    roi_coarse: int = 256  # working size of the coarse pass that finds the subject (--roi auto)
    roi_subject_pixels: int | None = None  # --roi auto: the subject spans at most this many model pixels; None: the
    # model's own (birefnet.registry), 0: no limit
    roi_subjects: int = 4  # --roi auto: separate subjects get a crop each, up to this many; more share one crop


def _box_list(value: Any) -> tuple[tuple[float, float, float, float], ...]:
    """``x0,y0,x1,y1`` or several separated by ';'; a list of those (the flag given more than once, or a
    YAML list) or of 4-number lists gives every box of every item."""
    from birefnet.boxes import check_box
    from birefnet.errors import InputError
    from pipeline.roi.keyframes import parse_box_list

    try:
        if isinstance(value, (list, tuple)) and all(isinstance(v, (int, float)) for v in value):
            return (check_box(value),)  # YAML: box: [x0, y0, x1, y1]
        if isinstance(value, (list, tuple)):
            return tuple(box for v in value
                         for box in ((check_box(v),) if isinstance(v, (list, tuple)) else parse_box_list(str(v))))
        return parse_box_list(values.text(value))
    except InputError as exc:
        raise ValueError(str(exc)) from None


def _bit_depth(value: Any) -> int | None:
    spelled = values.choice(BIT_DEPTHS)(value)
    return None if spelled == "auto" else int(spelled)


def _alpha(value: Any) -> str | None:
    spelled = values.choice(ALPHA_MODES)(value)
    return None if spelled == "auto" else spelled


def _start_number(value: Any) -> int | str | None:
    if isinstance(value, str) and value.lower() == "timecode":
        return "timecode"
    return values.optional(values.integer(0))(value)


def _is_named_background(spelled: str) -> bool:
    return spelled.lower() in BACKGROUND_NAMES or spelled.startswith("#")


def _background(value: Any) -> str:
    """A colour name, blur, '#RRGGBB', or an image/video file (checked to exist for a composite)."""
    spelled = values.text(value)
    if spelled.lower() in BACKGROUND_NAMES:
        return spelled.lower()
    if spelled.startswith("#") and not re.fullmatch(r"#[0-9a-fA-F]{6}", spelled):
        raise ValueError(f"expected '#RRGGBB', got {spelled!r}")
    return spelled


def _frame_range(value: Any) -> str:
    from pipeline.media import parse_frame_range

    spelled = values.text(value)
    try:
        parse_frame_range(spelled)
    except ConfigError as exc:
        raise ValueError(str(exc)) from None
    return spelled


KEYS: dict[str, Key] = {
    "model": common.MODEL,
    "output": Key(values.choice(OUTPUT_KINDS), "what to write: rgba (alpha channel), matte, composite, foreground, "
                  "picture+matte (the untouched picture and its matte as two files)", "|".join(OUTPUT_KINDS)),
    "background": Key(_background,
                      "composite background: green, blue, black, white, blur, '#RRGGBB', an image or a video",
                      "green|#RRGGBB|blur|FILE"),
    "background_fit": Key(values.choice(BACKGROUND_FITS), "how an image or video background meets the frame size",
                          "|".join(BACKGROUND_FITS)),
    "light_wrap": Key(values.number(0.0, 1.0), "strength of background light over the foreground's edges (0: off)",
                      "0-1"),
    "blur_radius": Key(values.optional(values.number(above=0.0)),
                       "radius in pixels of the 'blur' background (default: 2.5% of the long side)", "PX"),
    "codec": Key(values.optional(values.text), "video codec (default: the container's alpha-capable codec)", "NAME"),
    "crf": Key(values.optional(values.integer(0, 63)), "constant rate factor for x264/x265/VP9", "N"),
    "preset": Key(values.optional(values.text), "encoder speed preset (x264/x265)", "NAME"),
    "bitrate": Key(values.optional(values.text), "target bitrate, e.g. 8M (instead of --crf)", "RATE"),
    "prores_profile": Key(values.optional(values.text), "ProRes profile (4444, 4444xq, hq, ...)", "NAME"),
    "exr_depth": Key(values.optional(values.choice(EXR_DEPTHS)), "EXR sample type: half (16-bit float, the "
                     "default) or float (32-bit)",
                     "|".join(EXR_DEPTHS)),
    "exr_compression": Key(values.optional(values.choice(EXR_COMPRESSIONS)), "EXR compression (default zips: "
                           "Nuke's default, lossless)",
                           "|".join(EXR_COMPRESSIONS)),
    "start_number": Key(_start_number, "number of the first frame of an image sequence output (default: the "
                        "input's own numbers, else 1001), or 'timecode'", "N|timecode"),
    "bit_depth": Key(_bit_depth, "output bits per channel: auto (follow the source), 8, 10, 16", "auto|8|10|16"),
    "alpha": Key(_alpha, "colour of alpha outputs: straight or premultiplied by alpha (auto: premultiplied for EXR, "
                 "straight otherwise)", "|".join(ALPHA_MODES)),
    "audio": Key(values.choice(AUDIO_MODES), "copy the input's audio or drop it", "|".join(AUDIO_MODES)),
    "resolution": Key(values.optional(values.resolution("dynamic")),
                      "model input size: N, WxH or dynamic (default: the model's)", "N|WxH|dynamic"),
    "temporal": common.TEMPORAL,
    "temporal_window": Key(values.integer(0, 64), "frames the smoother looks ahead (0: causal, lowest latency; "
                           "2 for batch work, more adds only latency)", "N"),
    "refine_foreground": Key(values.boolean, "estimate clean foreground colours at soft edges (no colour spill)",
                             kind="toggle"),
    "precision": common.PRECISION,
    "runtime": common.RUNTIME,
    "upsample": common.UPSAMPLE,
    "device": Key(values.choice(PLACEMENTS), "where the models run (workers take one GPU each, or the CPU)",
                  "|".join(PLACEMENTS)),
    "batch_size": Key(values.integer(1), "frames per batch sent to a worker", "N"),
    "in_flight": Key(values.integer(1), "batches queued on each worker (backpressure bound)", "N"),
    "workers": Key(values.optional(values.integer(1)), "matting workers (default: one per GPU, or one on CPU)", "N"),
    "gpus_per_worker": Key(values.number(above=0.0), "GPUs each Ray worker takes (0.5: two workers share one GPU)",
                           "F"),
    "ray_address": common.RAY_ADDRESS,
    "backend": Key(values.choice(BACKENDS), "ray, local (in-process) or auto (ray where installed)",
                   "|".join(BACKENDS)),
    "frames": Key(values.optional(_frame_range), "only frames A..B-1 of each input (A:B, A: or :B)", "A:B"),
    "sequence_fps": Key(values.frame_rate, "frame rate of image-sequence inputs", "FPS"),
    "overwrite": common.OVERWRITE.with_help("replace outputs that exist (otherwise such inputs are skipped)"),
    "quiet": common.QUIET,
    "allow_partial": Key(values.boolean, "accept the salvaged output of a truncated input (else exit 6)",
                          kind="switch"),
    "report": common.REPORT,
    "box": Key(values.optional(_box_list), "matte only inside this box (plus --roi-margin) on every frame: x0,y0,x1,y1 "
               "in pixels or fractions; give it again, or separate with ';', for more boxes", "X0,Y0,X1,Y1",
               kind="repeat"),
    "boxes": Key(values.optional(values.text), "per-frame boxes: CSV (frame,x0,y0,x1,y1[,id]) or JSON keyframes, "
                 "interpolated between", "FILE"),
    "roi_margin": Key(values.number(0.0, 4.0), "margin around boxes and the tracked box, as a fraction of their size",
                      "F"),
    "roi": common.ROI,
    "roi_coarse": Key(values.integer(32), "working size of the coarse pass that finds the subject (--roi auto; "
                      "a multiple of 32)", "N"),
    "roi_subject_pixels": Key(values.optional(values.integer(0)), "--roi auto: grow the crop so the subject spans at "
                              "most N model pixels (default: the size the model learned from, 192 for demo, no limit "
                              "for the released models; 0: no limit)", "N"),
    "roi_subjects": Key(values.integer(1), "--roi auto: subjects far apart get a crop each, up to N (more share one "
                        "crop; 1: one crop holds them all)", "N"),
}

PROCESS_SETTINGS = SettingsTable("process", KEYS)


def default_values() -> dict[str, Any]:
    """The defaults, as the help shows them."""
    return vars(ProcessConfig())


def build_config(flags: dict[str, Any], preset: str | None = None) -> ProcessConfig:
    """A validated ``ProcessConfig`` from a preset (optional) and flag values (None = not given)."""
    config = ProcessConfig(**PROCESS_SETTINGS.values(flags, preset))
    check_config(config)
    return config


def check_config(config: ProcessConfig) -> None:
    """Combinations of settings that cannot work, each a one-line ``ConfigError``."""
    if config.crf is not None and config.bitrate is not None:
        raise ConfigError("crf and bitrate: give one of them, not both")
    if config.backend == "local" and config.workers not in (None, 1):
        raise ConfigError(f"workers: the local backend runs one worker, got {config.workers}; use --backend ray")
    if config.backend == "local" and config.ray_address:
        raise ConfigError("ray_address: needs --backend ray (or auto), not local")
    if config.output == "composite" and not _is_named_background(config.background) \
            and not Path(config.background).is_file():
        raise ConfigError(f"background: {config.background!r} is not a colour, 'blur', or an existing file")
    if config.device == "cpu" and config.precision == "fp16":
        raise ConfigError("precision: fp16 needs a GPU; use fp32 or bf16 with --device cpu")
    common.check_runtime(config.runtime, config.precision, config.device)
    _check_roi(config)


def _check_roi(config: ProcessConfig) -> None:
    """One way of choosing the crops at a time; a boxes file is read here, before any model starts."""
    given = [name for name, on in (("box", config.box), ("boxes", config.boxes), ("roi auto", config.roi == "auto"))
             if on]
    if len(given) > 1:
        raise ConfigError(f"{' and '.join(given)}: choose one way of giving the crops")
    if config.roi_coarse % 32:
        raise ConfigError(f"roi_coarse: must be a multiple of 32, got {config.roi_coarse}")
    if config.boxes:
        from pipeline.roi.keyframes import read_keyframes

        read_keyframes(config.boxes)
