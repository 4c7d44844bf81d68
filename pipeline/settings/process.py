"""Settings of a `process` run: one table of keys shared by the command-line flags and the YAML presets.

Every key is parsed by one function whether it comes from a flag (a string) or from YAML (a string,
number or bool), so a preset and a flag can never disagree on what a value means. Precedence:
defaults < ``--config`` preset < flags. A bad value or an unknown key is a ``ConfigError`` naming it.
"""

from __future__ import annotations

import argparse
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import yaml

from birefnet.errors import ConfigError
from pipeline.temporal.modes import TEMPORAL_MODES

CONFIGS_DIR = Path(__file__).resolve().parent.parent / "configs"

OUTPUT_KINDS = ("rgba", "matte", "composite", "foreground")
BACKGROUND_NAMES = ("green", "blue", "black", "white", "blur")
PRECISIONS = ("auto", "fp32", "fp16", "bf16")
DEVICES = ("auto", "cpu", "cuda")
AUDIO_MODES = ("copy", "drop")
BACKENDS = ("auto", "ray", "local")
BIT_DEPTHS = ("auto", "8", "10", "16")


@dataclass
class ProcessConfig:
    """Everything one `process` run needs besides the file names."""

    model: str = "hr-matting"
    output: str = "rgba"
    background: str = "green"
    codec: str | None = None  # None: the container's default (ProRes 4444 for .mov with alpha, ...)
    crf: int | None = None
    preset: str | None = None
    bitrate: str | None = None
    prores_profile: str | None = None
    bit_depth: int | None = None  # None: follow the source (10-bit stays 10-bit)
    premultiplied: bool = False
    audio: str = "copy"
    resolution: int | tuple[int, int] | str | None = None  # None: the model's own
    temporal: str = "flow"
    temporal_window: int = 0  # look-ahead frames of the smoother (0: causal)
    refine_foreground: bool = True
    precision: str = "auto"
    device: str = "auto"
    batch_size: int = 4
    in_flight: int = 2
    workers: int | None = None
    gpus_per_worker: float = 1.0
    ray_address: str | None = None
    backend: str = "auto"
    frames: str | None = None  # 'A:B' frame range of each input
    overwrite: bool = False
    quiet: bool = False
    report: str | None = None


# ------------------------------------------------------------------------------ value parsers


def _choice(options: tuple[str, ...]) -> Callable[[Any], str]:
    def parse(value: Any) -> str:
        if value is False and "off" in options:  # YAML 1.1 reads a bare `off` as false
            return "off"
        text = str(value).lower()
        if isinstance(value, bool) or text not in options:
            raise ValueError(f"expected one of {', '.join(options)}, got {value!r}")
        return text

    return parse


def _text(value: Any) -> str:
    if not isinstance(value, (str, int, float)) or isinstance(value, bool) or not str(value).strip():
        raise ValueError(f"expected a non-empty string, got {value!r}")
    return str(value)


def _optional(parse: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def parse_optional(value: Any) -> Any:
        return None if value is None or (isinstance(value, str) and value.lower() in ("", "none", "auto")) \
            else parse(value)

    return parse_optional


def _integer(low: int, high: int | None = None) -> Callable[[Any], int]:
    def parse(value: Any) -> int:
        try:
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError
            number = int(value)
        except (TypeError, ValueError):
            raise ValueError(f"expected an integer, got {value!r}") from None
        if number < low or (high is not None and number > high):
            bounds = f"{low}-{high}" if high is not None else f"{low} or more"
            raise ValueError(f"expected {bounds}, got {number}")
        return number

    return parse


def _positive_float(value: Any) -> float:
    try:
        if isinstance(value, bool):
            raise ValueError
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"expected a number, got {value!r}") from None
    if not number > 0:
        raise ValueError(f"must be above 0, got {value!r}")
    return number


def _boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).lower()
    if text in ("true", "yes", "on", "1"):
        return True
    if text in ("false", "no", "off", "0"):
        return False
    raise ValueError(f"expected true or false, got {value!r}")


def _bit_depth(value: Any) -> int | None:
    text = _choice(BIT_DEPTHS)(value)
    return None if text == "auto" else int(text)


def _multiple_of_32(side: int) -> int:
    if side <= 0 or side % 32:
        raise ValueError(f"sides must be positive multiples of 32, got {side}")
    return side


def _resolution(value: Any) -> int | tuple[int, int] | str:
    """'2048' (square), '2048x1152' (W x H) or 'dynamic' (follow each frame's aspect ratio)."""
    text = str(value).strip().lower()
    if text == "dynamic":
        return text
    match = re.fullmatch(r"(\d+)(?:x(\d+))?", text)
    if isinstance(value, bool) or not match:
        raise ValueError(f"expected N, WxH or dynamic, got {value!r}")
    if match.group(2) is None:
        return _multiple_of_32(int(match.group(1)))
    return _multiple_of_32(int(match.group(1))), _multiple_of_32(int(match.group(2)))


def _is_named_background(text: str) -> bool:
    return text.lower() in BACKGROUND_NAMES or text.startswith("#")


def _background(value: Any) -> str:
    """A colour name, blur, '#RRGGBB', or an image/video file (checked to exist for a composite)."""
    text = _text(value)
    if text.lower() in BACKGROUND_NAMES:
        return text.lower()
    if text.startswith("#") and not re.fullmatch(r"#[0-9a-fA-F]{6}", text):
        raise ValueError(f"expected '#RRGGBB', got {text!r}")
    return text


def _frame_range(value: Any) -> str:
    from pipeline.media import parse_frame_range

    text = _text(value)
    try:
        parse_frame_range(text)
    except ConfigError as exc:
        raise ValueError(str(exc)) from None
    return text


@dataclass(frozen=True)
class Key:
    """One setting: how to parse it, and the flag help."""

    parse: Callable[[Any], Any]
    help: str
    metavar: str | None = None
    flag: bool = True  # False: a plain switch (--quiet) or a --x/--no-x pair, no value


KEYS: dict[str, Key] = {
    "model": Key(_text, "variant name, checkpoint file, hub-layout directory or hub repo id", "NAME"),
    "output": Key(_choice(OUTPUT_KINDS), "what to write: rgba (alpha channel), matte, composite, foreground",
                  "|".join(OUTPUT_KINDS)),
    "background": Key(_background, "composite background: green, blue, black, white, blur, '#RRGGBB', an image or a video",
                      "green|#RRGGBB|blur|FILE"),
    "codec": Key(_optional(_text), "video codec (default: the container's alpha-capable codec)", "NAME"),
    "crf": Key(_optional(_integer(0, 63)), "constant rate factor for x264/x265/VP9", "N"),
    "preset": Key(_optional(_text), "encoder speed preset (x264/x265)", "NAME"),
    "bitrate": Key(_optional(_text), "target bitrate, e.g. 8M (instead of --crf)", "RATE"),
    "prores_profile": Key(_optional(_text), "ProRes profile (4444, 4444xq, hq, ...)", "NAME"),
    "bit_depth": Key(_bit_depth, "output bits per channel: auto (follow the source), 8, 10, 16", "auto|8|10|16"),
    "premultiplied": Key(_boolean, "write premultiplied instead of straight alpha", flag=False),
    "audio": Key(_choice(AUDIO_MODES), "copy the input's audio or drop it", "|".join(AUDIO_MODES)),
    "resolution": Key(_optional(_resolution), "model input size: N, WxH or dynamic (default: the model's)",
                      "N|WxH|dynamic"),
    "temporal": Key(_choice(TEMPORAL_MODES), "temporal smoothing of the alpha", "|".join(TEMPORAL_MODES)),
    "temporal_window": Key(_integer(0, 64), "frames the smoother looks ahead (0: causal, lowest latency)", "N"),
    "refine_foreground": Key(_boolean, "estimate clean foreground colours at soft edges (no colour spill)",
                             flag=False),
    "precision": Key(_choice(PRECISIONS), "model precision", "|".join(PRECISIONS)),
    "device": Key(_choice(DEVICES), "where the model runs", "|".join(DEVICES)),
    "batch_size": Key(_integer(1), "frames per batch sent to a worker", "N"),
    "in_flight": Key(_integer(1), "batches queued on each worker (backpressure bound)", "N"),
    "workers": Key(_optional(_integer(1)), "matting workers (default: one per GPU, or one on CPU)", "N"),
    "gpus_per_worker": Key(_positive_float, "GPUs each Ray worker takes (0.5: two workers share one GPU)", "F"),
    "ray_address": Key(_optional(_text), "address of a running Ray cluster (default: start a local Ray)", "ADDR"),
    "backend": Key(_choice(BACKENDS), "ray, local (in-process) or auto (ray where installed)", "|".join(BACKENDS)),
    "frames": Key(_optional(_frame_range), "only frames A..B-1 of each input (A:B, A: or :B)", "A:B"),
    "overwrite": Key(_boolean, "replace outputs that exist (otherwise such inputs are skipped)", flag=False),
    "quiet": Key(_boolean, "no progress and no summary", flag=False),
    "report": Key(_optional(_text), "write the run summary as JSON to this file", "FILE"),
}


def _flag_name(key: str) -> str:
    return "--" + key.replace("_", "-")


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    """One flag per key; every default is None so that only flags actually given override a preset."""
    parser.add_argument("--config", metavar="NAME|FILE", help="YAML preset (configs/NAME.yaml or a path); flags win")
    defaults = ProcessConfig()
    for key, spec in KEYS.items():
        default = getattr(defaults, key)
        if spec.flag:
            shown = "" if default is None or "default:" in spec.help else f" (default: {default})"
            parser.add_argument(_flag_name(key), dest=key, metavar=spec.metavar, help=spec.help + shown)
        elif key in ("overwrite", "quiet"):
            parser.add_argument(_flag_name(key), dest=key, action="store_const", const=True, help=spec.help)
        else:
            parser.add_argument(_flag_name(key), dest=key, action=argparse.BooleanOptionalAction, help=spec.help)


def resolve_preset_path(name: str) -> Path:
    """A path as given, or the bundled preset ``configs/NAME.yaml``."""
    path = Path(name)
    if path.is_file():
        return path
    bundled = CONFIGS_DIR / (name if name.endswith((".yaml", ".yml")) else f"{name}.yaml")
    if bundled.is_file():
        return bundled
    known = ", ".join(sorted(p.stem for p in CONFIGS_DIR.glob("*.yaml")))
    raise ConfigError(f"config: no such file or preset {name!r} (presets: {known})")


def load_preset(name: str) -> dict[str, Any]:
    """Raw values of a YAML preset, keys checked; '-' and '_' are the same in key names."""
    path = resolve_preset_path(name)
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark else ""
        raise ConfigError(f"config {path}: not valid YAML{where}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config {path}: expected a mapping of keys to values")
    values = {}
    for raw_key, value in data.items():
        key = str(raw_key).replace("-", "_")
        if key not in KEYS:
            raise ConfigError(f"config {path}: unknown key {raw_key!r}")
        values[key] = (value, f"config key {raw_key!r} in {path}")
    return values


def build_config(flags: dict[str, Any], preset: str | None = None) -> ProcessConfig:
    """A validated ``ProcessConfig`` from a preset (optional) and flag values (None = not given)."""
    raw = load_preset(preset) if preset else {}
    for key, value in flags.items():
        if key in KEYS and value is not None:
            raw[key] = (value, _flag_name(key))
    settings = {}
    for key, (value, origin) in raw.items():
        try:
            settings[key] = KEYS[key].parse(value)
        except ValueError as exc:
            raise ConfigError(f"{origin}: {exc}") from None
    config = ProcessConfig(**settings)
    _check_combinations(config)
    return config


def _check_combinations(config: ProcessConfig) -> None:
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
