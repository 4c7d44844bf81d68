"""Settings of an `archive` job: every `process` key that makes sense per video, and how the job is cut
and spread over the cluster.

Keys that shape the output (all but ``OUTPUT_NEUTRAL``) are recorded in the job directory; a rerun with
other values is refused unless ``--overwrite``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from birefnet.errors import ConfigError
from pipeline.settings import process, values
from pipeline.settings.process import ProcessConfig, check_config
from pipeline.settings.table import Key, SettingsTable

# process keys an archive does not take: one frame range for a whole archive means nothing, and each
# worker mattes its own units in-process
NOT_IN_ARCHIVE = ("frames", "backend", "in_flight")
# keys that change where and how fast a job runs, not what it writes
OUTPUT_NEUTRAL = ("workers", "gpus_per_worker", "cpus_per_worker", "worker_resource", "ray_address", "quiet",
                  "report", "overwrite", "backend", "in_flight")


@dataclass
class ArchiveConfig:
    """One archive job: the per-video settings (``process``) and the job's own."""

    process: ProcessConfig = field(default_factory=ProcessConfig)
    segment_seconds: float = 60.0
    warmup_frames: int = 8
    cpus_per_worker: float = 1.0
    worker_resource: tuple[str, float] | None = None

    def output_settings(self) -> dict[str, Any]:
        """What the job directory records: the settings that shape the output."""
        merged = {**asdict(self.process), **{f.name: getattr(self, f.name) for f in fields(self)[1:]}}
        return {key: (str(value) if not isinstance(value, (int, float, str, bool, type(None))) else value)
                for key, value in merged.items() if key not in OUTPUT_NEUTRAL and key not in NOT_IN_ARCHIVE}


# settings a manifest row may give for its own video (a column each, flag names with - or _): what that
# video's units write. A row with ``frames`` is one unit (its range is `process --frames` exactly).
ROW_KEYS = ("frames", "output", "codec", "background", "background_fit", "temporal")


def row_settings(cells: dict[str, Any], where: str) -> dict[str, Any]:
    """The parsed settings of one manifest row (``cells``: column -> value; empty cells are not given),
    each checked by the key's own parser; a bad value is a one-line ``ConfigError`` naming ``where``."""
    settings = {}
    for key, value in cells.items():
        if value is None or str(value).strip() == "":
            continue
        try:
            settings[key] = process.KEYS[key].parse(str(value).strip())
        except ValueError as exc:
            raise ConfigError(f"{where}: column {key!r}: {exc}") from None
    return settings


def video_config(config: ArchiveConfig, settings: dict[str, Any], where: str) -> ProcessConfig:
    """The job's per-video settings with one row's ``settings`` over them, checked as the CLI's are."""
    merged = replace(config.process, **settings)
    try:
        check_config(merged)
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    return merged


def _resource(value: Any) -> tuple[str, float]:
    """NAME or NAME=AMOUNT: a custom Ray resource each worker takes."""
    name, _, amount = values.text(value).partition("=")
    if not name:
        raise ValueError(f"expected NAME or NAME=AMOUNT, got {value!r}")
    return name, values.number(above=0.0)(amount) if amount else 1.0


ARCHIVE_KEYS: dict[str, Key] = {
    "segment_seconds": Key(values.number(above=0.0), "length of the segments long videos are cut into "
                           "(at keyframes; only for outputs coded frame by frame)", "S"),
    "warmup_frames": Key(values.integer(0, 1000), "frames decoded before each segment so smoothing starts warm",
                         "N"),
    "cpus_per_worker": Key(values.number(above=0.0), "CPUs each worker takes (decode, encode, a CPU model)", "F"),
    "worker_resource": Key(values.optional(_resource), "a custom Ray resource each worker takes (NAME[=AMOUNT])",
                           "NAME[=N]"),
}

KEYS: dict[str, Key] = {
    **{key: spec for key, spec in process.KEYS.items() if key not in NOT_IN_ARCHIVE},
    "workers": process.KEYS["workers"].with_help("workers at most (default: one per GPU, else one per CPU slot)"),
    "overwrite": process.KEYS["overwrite"].with_help("start the job again: redo every unit, replace outputs"),
    **ARCHIVE_KEYS,
}

ARCHIVE_SETTINGS = SettingsTable("archive", KEYS)


def default_values() -> dict[str, Any]:
    defaults = {key: value for key, value in vars(ProcessConfig()).items() if key in KEYS}
    archive = ArchiveConfig()
    return {**defaults, **{key: getattr(archive, key) for key in ARCHIVE_KEYS}}


def build_config(flags: dict[str, Any], preset: str | None = None) -> ArchiveConfig:
    """A validated ``ArchiveConfig`` from a preset (optional) and flag values (None = not given)."""
    settings = ARCHIVE_SETTINGS.values(flags, preset)
    own = {key: settings.pop(key) for key in ARCHIVE_KEYS if key in settings}
    config = ArchiveConfig(ProcessConfig(**settings), **own)
    check_config(config.process)
    return config
