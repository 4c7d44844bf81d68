"""Numbered file names: the printf pattern (``shot_%05d.png``) image sequences are read and written with."""

from __future__ import annotations

import re
from pathlib import Path

PRINTF_NUMBER = re.compile(r"%0?(\d*)d")


def numbered_files(folder: Path, pattern: str) -> list[tuple[int, Path]]:
    """(number, path) of the files in ``folder`` whose names fit the printf ``pattern`` (e.g.
    'shot_%05d.png'), by number."""
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
