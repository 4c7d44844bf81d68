"""What an archive's inputs name: video files, folders searched recursively, text lists of paths, and
CSV/Parquet manifests whose rows name a video and, optionally, its output name and its own settings."""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from birefnet.errors import ConfigError, InputError
from pipeline.settings.archive import ROW_KEYS, row_settings

VIDEO_EXTENSIONS = (".mp4", ".mov", ".mkv", ".avi", ".mxf", ".webm", ".m4v", ".mts", ".ts", ".mpg")
LIST_EXTENSIONS = (".txt", ".list")
MANIFEST_EXTENSIONS = (".csv", ".parquet")
# a manifest's columns: the video (required), its output's path under OUT_DIR without extension, settings
INPUT_COLUMN, NAME_COLUMN = "input", "name"


@dataclass(frozen=True)
class FoundVideo:
    """One video, the path of its output relative to the output directory (without extension): a video
    found in a folder keeps its place in the folder's tree, so equal names do not collide; and the
    settings its manifest row gives (parsed values by key; empty: the job's)."""

    path: str
    relative: str
    settings: dict[str, Any] = field(default_factory=dict)
    where: str = ""  # the manifest row it came from, for messages


def find_videos(inputs: list[str]) -> list[FoundVideo]:
    """Every video the inputs name, in a stable order; a missing input is an ``InputError``, a bad
    manifest a ``ConfigError``."""
    found: list[FoundVideo] = []
    for spec in inputs:
        path = Path(spec)
        if path.is_dir():
            for video in sorted(p for p in path.rglob("*") if p.suffix.lower() in VIDEO_EXTENSIONS and p.is_file()):
                found.append(FoundVideo(str(video), str(video.relative_to(path).with_suffix(""))))
        elif path.suffix.lower() in LIST_EXTENSIONS and path.is_file():
            lines = [line.strip() for line in path.read_text().splitlines()]
            listed = [line for line in lines if line and not line.startswith("#")]
            found.extend(find_videos([str(path.parent / line) for line in listed]))
        elif path.suffix.lower() in MANIFEST_EXTENSIONS and path.is_file():
            found.extend(read_manifest(path))
        elif path.is_file():
            found.append(FoundVideo(str(path), path.stem))
        else:
            raise InputError(f"input not found: {spec}")
    return found


def read_manifest(path: Path) -> list[FoundVideo]:
    """The rows of a CSV (with a header line) or Parquet manifest; relative inputs are relative to the
    manifest's folder."""
    rows = _parquet_rows(path) if path.suffix.lower() == ".parquet" else _csv_rows(path)
    columns = list(rows[0]) if rows else []
    settings_columns = {column: column.strip().lower().replace("-", "_") for column in columns}
    unknown = [c for c, key in settings_columns.items() if key not in (INPUT_COLUMN, NAME_COLUMN, *ROW_KEYS)]
    if unknown:
        raise ConfigError(f"manifest {path}: unknown column {unknown[0]!r} (columns: {INPUT_COLUMN}, "
                          f"{NAME_COLUMN}, {', '.join(ROW_KEYS)})")
    if INPUT_COLUMN not in settings_columns.values():
        raise ConfigError(f"manifest {path}: no {INPUT_COLUMN!r} column")
    found = []
    for number, row in enumerate(rows, start=1):
        cells = {settings_columns[column]: value for column, value in row.items()}
        where = f"manifest {path} row {number}"
        video = str(cells.pop(INPUT_COLUMN) or "").strip()
        if not video:
            raise ConfigError(f"{where}: no {INPUT_COLUMN}")
        video_path = path.parent / video
        if not video_path.is_file():
            raise InputError(f"{where}: input not found: {video}")
        name = str(cells.pop(NAME_COLUMN, None) or "").strip() or video_path.stem
        relative = PurePosixPath(name)
        if relative.is_absolute() or ".." in relative.parts:
            raise ConfigError(f"{where}: {NAME_COLUMN} {name!r} must be a path inside OUT_DIR")
        found.append(FoundVideo(str(video_path), str(relative), row_settings(cells, where), where))
    return found


def _csv_rows(path: Path) -> list[dict[str, Any]]:
    try:
        with path.open(newline="") as file:
            return list(csv.DictReader(file))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise ConfigError(f"manifest {path}: cannot read it as CSV ({exc})") from None


def _parquet_rows(path: Path) -> list[dict[str, Any]]:
    try:
        import pyarrow.parquet as parquet
    except ImportError:
        raise ConfigError(f"manifest {path}: reading Parquet needs pyarrow (pip install pyarrow)") from None
    try:
        return parquet.read_table(path).to_pylist()
    except (OSError, ValueError) as exc:  # pyarrow's errors derive from these
        raise ConfigError(f"manifest {path}: cannot read it as Parquet ({exc})") from None
