"""Settings of `demo`: the synthetic clip it generates and the model it runs through the pipeline."""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.settings import common, process, values
from pipeline.settings.table import Key, SettingsTable


@dataclass
class DemoSettings:
    """One demo run: the clip to generate, the model to run on it, where the files go."""

    output_dir: str = "birefnet-demo"
    length: int = 48
    size: tuple[int, int] = (512, 512)
    fps: int = 24
    seed: int = 11
    model: str = "demo"
    resolution: int | tuple[int, int] | str | None = None  # None: the model's own
    device: str = "auto"
    sheet_frames: int = 4
    overwrite: bool = False
    quiet: bool = False


DEMO_SETTINGS = SettingsTable("demo", {
    "output_dir": Key(values.text, "directory for the demo's files", "DIR", aliases=("-o",)),
    "length": Key(values.integer(2), "frames in the clip (at least 2: dtSSD compares consecutive frames)", "N"),
    "size": Key(values.frame_size, "clip size WxH", "WxH"),
    "fps": Key(values.integer(1), "frame rate of the clip", "N"),
    "seed": Key(values.integer(0), "synthetic scene (held out: the demo model never trained or was selected on it)",
                "N"),
    "model": common.MODEL,
    "resolution": process.KEYS["resolution"],
    "device": process.KEYS["device"],
    "sheet_frames": Key(values.integer(1), "frames on the contact sheet", "N"),
    "overwrite": common.OVERWRITE.with_help("replace the files of an earlier demo in the directory"),
    "quiet": common.QUIET.with_help("print only the scores"),
})


def default_values() -> dict:
    return vars(DemoSettings())
