"""Every file the project writes goes through here: a hidden temporary name beside the final one, then a rename.

A crash, Ctrl-C or a full disk therefore never leaves a half-written file under a final name. The
temporary name carries the writer's process id (``.clip.partial-1234.mov``), so a later run can tell a
stale partial of a dead process from one a live run is still writing. It lives at the bottom of the
layers because training checkpoints, video outputs and reports all use it.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from types import TracebackType

PARTIAL_MARK = ".partial-"


def partial_path(final: Path) -> Path:
    """The hidden temporary name of ``final`` for this process, in the same directory (so the rename is atomic)."""
    return final.with_name(f".{final.stem}{PARTIAL_MARK}{os.getpid()}{final.suffix}")


def sync_to_disk(path: Path) -> None:
    """Flush a written file's data to the disk, so that a rename after it never exposes a short file.
    Cheap on a file already synced: writers that sync on their own threads make the commit quick."""
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


class AtomicPath:
    """A path to write under a temporary name; ``commit()`` renames it into place, ``discard()`` removes it.

    Works for a file or a directory written at ``temp``. As a context manager it commits when the block
    ends normally and discards on an exception.
    """

    def __init__(self, final: str | os.PathLike[str]):
        self.final = Path(final)
        self.temp = partial_path(self.final)

    def commit(self) -> Path:
        if self.temp.is_file():
            sync_to_disk(self.temp)
        os.replace(self.temp, self.final)
        return self.final

    def discard(self) -> None:
        if self.temp.is_dir():
            shutil.rmtree(self.temp, ignore_errors=True)
        else:
            self.temp.unlink(missing_ok=True)

    def __enter__(self) -> Path:
        return self.temp

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.discard()


def write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically."""
    with AtomicPath(path) as temp:
        temp.write_bytes(data)
    return Path(path)


def write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    return write_bytes(path, text.encode("utf-8"))
