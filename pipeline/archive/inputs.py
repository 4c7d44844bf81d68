"""What an archive's inputs name: video files, folders searched recursively, and text lists of paths."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from birefnet.errors import InputError

VIDEO_EXTENSIONS = (".mp4", ".mov", ".mkv", ".avi", ".mxf", ".webm", ".m4v", ".mts", ".ts", ".mpg")
LIST_EXTENSIONS = (".txt", ".list")


@dataclass(frozen=True)
class FoundVideo:
    """One video and the path of its output relative to the output directory (without extension):
    a video found in a folder keeps its place in the folder's tree, so equal names do not collide."""

    path: str
    relative: str


def find_videos(inputs: list[str]) -> list[FoundVideo]:
    """Every video the inputs name, in a stable order; a missing input is an ``InputError``."""
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
        elif path.is_file():
            found.append(FoundVideo(str(path), path.stem))
        else:
            raise InputError(f"input not found: {spec}")
    return found
