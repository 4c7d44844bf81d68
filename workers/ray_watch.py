"""A watcher for a local Ray that this process started: when its raylet dies mid-run, Ray's C++ core
ends this process at once (exit 1), before any Python handler can say why. A tiny separate process
watches both; if the raylet died while this process still lived and this process then ended without
releasing the watcher, the watcher writes the one line this process could not.

The watcher is this file run as a script, on the standard library only (it must not wait for torch).
"""

from __future__ import annotations

import os
import select
import subprocess
import sys
from typing import IO

RELEASE = b"done\n"
POLL_S = 0.02


class RayWatch:
    """The driver's side: ``start`` the watcher for ``raylet_pid``; ``release`` it on a normal end."""

    def __init__(self, raylet_pid: int, message: str):
        self._process: subprocess.Popen[bytes] | None = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), str(os.getpid()), str(raylet_pid), message],
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, close_fds=True)

    def release(self) -> None:
        """This process ends by itself (cleanly or with its own message): the watcher says nothing."""
        process, self._process = self._process, None
        if process is None:
            return
        stdin: IO[bytes] | None = process.stdin
        try:
            if stdin is not None:
                stdin.write(RELEASE)
                stdin.close()
        except OSError:
            pass
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()


def _alive(pid: int) -> bool:
    """Running (not gone, not a zombie waiting for its parent)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            state = stat.read().rsplit(b")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in (b"Z", b"X")


def watch(driver: int, raylet: int, message: str) -> None:
    """Until the driver releases us or ends: note whether the raylet died first; if so, and the driver
    then ended unreleased, print ``message``."""
    raylet_died_first = False
    while True:
        readable, _, _ = select.select([sys.stdin.buffer], [], [], POLL_S)
        if readable:
            data = os.read(sys.stdin.fileno(), 64)
            if RELEASE in data:
                return
            if not data:  # the driver is gone without releasing us
                break
        if not _alive(raylet) and _alive(driver):
            raylet_died_first = True
        elif not _alive(driver):
            break
    if raylet_died_first:
        print(f"error: {message}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    watch(int(sys.argv[1]), int(sys.argv[2]), sys.argv[3])
