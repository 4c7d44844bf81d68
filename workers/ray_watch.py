"""A watcher for a local Ray that this process started. When its raylet dies mid-run, Ray's C++ core
ends this process at once (exit 1), before any Python handler can say why; when this process is
killed, Ray's agents outlive it for a minute or more. A tiny separate process watches both: if this
process ends without releasing the watcher, the watcher ends every process this one started (Ray's:
gcs, raylet, agents, workers; surveyed every second while it ran), and if the raylet had died first
it writes the one line this process could not.

The watcher is this file run as a script, on the standard library only (it must not wait for torch).
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time
from typing import IO

RELEASE = b"done\n"
POLL_S = 0.02
SURVEY_S = 1.0  # how often the processes under the driver are listed


class RayWatch:
    """The driver's side: ``start`` the watcher for ``raylet_pid``; ``release`` it on a normal end."""

    def __init__(self, raylet_pid: int, message: str):
        self._process: subprocess.Popen[bytes] | None = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), str(os.getpid()), str(raylet_pid), message],
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=_our_stderr(), close_fds=True)

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


def _our_stderr() -> int | None:
    """Where our own messages go (``sys.stderr``, which may no longer be descriptor 2: the archive driver
    points that at a log for Ray's C++ core); None: the descriptor 2 we have."""
    try:
        return sys.stderr.fileno()
    except (AttributeError, ValueError, OSError):  # a stream without a descriptor (a test's capture)
        return None


def _alive(pid: int) -> bool:
    """Running (not gone, not a zombie waiting for its parent)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            state = stat.read().rsplit(b")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in (b"Z", b"X")


def _process_table() -> dict[int, tuple[int, bytes]]:
    """pid -> (parent pid, start time) of every process, from /proc."""
    table = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", "rb") as stat:
                    fields = stat.read().rsplit(b")", 1)[1].split()
            except OSError:
                continue
            table[int(entry)] = (int(fields[1]), fields[19])
    return table


def descendants(root: int) -> dict[int, bytes]:
    """pid -> start time of every process under ``root`` (this one excepted)."""
    table = _process_table()
    children: dict[int, list[int]] = {}
    for pid, (parent, _) in table.items():
        children.setdefault(parent, []).append(pid)
    found, frontier = {}, [root]
    while frontier:
        for child in children.get(frontier.pop(), []):
            if child != os.getpid() and child not in found:
                found[child] = table[child][1]
                frontier.append(child)
    return found


def end_processes(processes: dict[int, bytes]) -> None:
    """SIGKILL those of ``processes`` still running as the same process (pid and start time)."""
    table = _process_table()
    for pid, started in processes.items():
        if pid in table and table[pid][1] == started:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass


def watch(driver: int, raylet: int, message: str) -> None:
    """Until the driver releases us or ends: keep a list of the processes it started (Ray's: gcs, raylet,
    agents, workers) and note whether the raylet died first. If the driver ended unreleased, end those
    processes, and print ``message`` if the raylet died first."""
    raylet_died_first = False
    started: dict[int, bytes] = {}
    next_survey = 0.0
    while True:
        now = time.monotonic()
        if now >= next_survey:
            started.update(descendants(driver))
            next_survey = now + SURVEY_S
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
    end_processes(started)
    if raylet_died_first:
        print(f"error: {message}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    watch(int(sys.argv[1]), int(sys.argv[2]), sys.argv[3])
