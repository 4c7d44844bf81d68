"""Numbered file names: the printf pattern (``shot_%05d.png``) image sequences are read and written with,
the ``plate.####.exr`` spelling VFX tools use for the same thing, and the frame number each file carries."""

from __future__ import annotations

import re
from pathlib import Path

PRINTF_NUMBER = re.compile(r"%0?(\d*)d")
HASH_NUMBER = re.compile(r"#+")
TRAILING_NUMBER = re.compile(r"(\d+)(?=\D*$)")
DEFAULT_START_NUMBER = 1001  # first frame of a shot in VFX (room for handles before it)


def printf_name(name: str) -> str:
    """``plate.####.exr`` -> ``plate.%04d.exr`` (the last run of '#'); other names unchanged."""
    if PRINTF_NUMBER.search(name):
        return name
    runs = list(HASH_NUMBER.finditer(name))
    if not runs:
        return name
    last = runs[-1]
    return f"{name[:last.start()]}%0{len(last.group())}d{name[last.end():]}"


def is_numbered_name(name: str) -> bool:
    return PRINTF_NUMBER.search(printf_name(name)) is not None


def file_number(name: str) -> int | None:
    """The frame number a file name carries: its last run of digits (``plate.1001.exr`` -> 1001)."""
    match = TRAILING_NUMBER.search(name)
    return int(match.group(1)) if match else None


def numbered_files(folder: Path, pattern: str) -> list[tuple[int, Path]]:
    """(number, path) of the files in ``folder`` whose names fit the printf ``pattern`` (e.g.
    'shot_%05d.png' or 'plate.####.exr'), by number."""
    pattern = printf_name(pattern)
    match = PRINTF_NUMBER.search(pattern)
    if match is None or not folder.is_dir():
        return []
    digits = rf"\d{{{int(match.group(1))},}}" if match.group(1) else r"\d+"
    regex = re.compile(re.escape(pattern[:match.start()]) + f"({digits})" + re.escape(pattern[match.end():]))
    found = []
    for path in folder.iterdir():
        hit = regex.fullmatch(path.name)
        if hit:
            found.append((int(hit.group(1)), path))
    return sorted(found)
