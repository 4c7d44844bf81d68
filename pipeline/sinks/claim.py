"""A run owns its output name for its whole life, and clears what dead runs left next to it.

The claim is an exclusive ``flock`` on a hidden ``.NAME.lock`` beside the output, taken before anything
is encoded and released after the rename (or the abort). A second run on the same name fails at once
with one line, ``--overwrite`` or not: it never races the first for the rename. The kernel drops the
lock when its process dies, however it dies, so a SIGKILLed run never blocks the next one; holding the
claim also proves that no live run is writing this name, so partials of dead processes
(``birefnet.atomic``: ``.clip.partial-1234.mov``) can be removed safely.
"""

from __future__ import annotations

import fcntl
import logging
import os
import re
from pathlib import Path

from birefnet.atomic import PARTIAL_MARK
from birefnet.errors import OutputError
from pipeline.media import PRINTF_NUMBER

log = logging.getLogger("birefnet_video")

LOCK_SUFFIX = ".lock"
_PARTIAL = re.compile(rf"\.(?P<stem>.+){re.escape(PARTIAL_MARK)}(?P<pid>\d+)(?P<suffix>\.[^.]*)?")


def lock_path(final: Path) -> Path:
    return final.with_name(f".{final.name}{LOCK_SUFFIX}")


class OutputClaim:
    """The exclusive claim on ``final``; ``release()`` gives it up (and removes the lock file)."""

    def __init__(self, final: Path):
        self.final = final
        self.path = lock_path(final)
        self._fd: int | None = None
        while self._fd is None:
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as exc:
                raise OutputError(f"cannot create files beside {final}: {exc.strerror or exc}") from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                owner = os.pread(fd, 32, 0).decode(errors="replace").strip() or "another process"
                os.close(fd)
                raise OutputError(f"output {final} is being written by another run (pid {owner}); "
                                  "wait for it to finish or choose another name") from None
            except BaseException:
                os.close(fd)
                raise
            if self._same_file(fd):
                self._fd = fd
            else:  # the previous owner removed the lock file between our open and our lock: take the new one
                os.close(fd)
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, f"{os.getpid()}\n".encode(), 0)

    def _same_file(self, fd: int) -> bool:
        try:
            on_disk = os.stat(self.path)
        except FileNotFoundError:
            return False
        held = os.fstat(fd)
        return (on_disk.st_dev, on_disk.st_ino) == (held.st_dev, held.st_ino)

    def release(self) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        self.path.unlink(missing_ok=True)  # still locked: a waiting open sees a removed inode and retries
        os.close(fd)


def claim_owner(final: Path) -> str | None:
    """The pid of the live run that holds the claim on ``final`` (None: nobody), taking nothing."""
    try:
        fd = os.open(lock_path(final), os.O_RDONLY)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return os.pread(fd, 32, 0).decode(errors="replace").strip() or "another process"
    finally:
        os.close(fd)  # closing drops the shared lock we may have taken
    return None


def _is_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def _final_name_fits(name: str, final: Path, sequence: bool) -> bool:
    if not sequence:
        return name == final.name
    pattern = final.name
    match = PRINTF_NUMBER.search(pattern)
    if match is None:
        return False
    regex = re.escape(pattern[:match.start()]) + r"\d+" + re.escape(pattern[match.end():])
    audio = (PRINTF_NUMBER.split(pattern)[0].rstrip("_.- ") or "audio") + ".wav"
    return re.fullmatch(regex, name) is not None or name == audio


def remove_stale_partials(final: Path, sequence: bool) -> int:
    """Remove partials of ``final`` (every frame and the WAV of a sequence) left by dead processes;
    returns how many. Call with the claim held."""
    folder = final.parent
    if not folder.is_dir():
        return 0
    removed = 0
    for path in folder.iterdir():
        hit = _PARTIAL.fullmatch(path.name)
        if hit is None or not path.is_file():
            continue
        pid = int(hit["pid"])
        if pid == os.getpid() or _is_alive(pid):
            continue
        if _final_name_fits(hit["stem"] + (hit["suffix"] or ""), final, sequence):
            path.unlink(missing_ok=True)
            removed += 1
    if removed:
        log.warning("removed %d partial file(s) of %s left by a run that died", removed, final.name)
    return removed
