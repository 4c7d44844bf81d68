"""How a run is stopped from outside: SIGTERM (``kill``, a batch scheduler) unwinds like Ctrl-C.

The CLI turns the signal into ``Terminated``; since it is a ``KeyboardInterrupt``, every stage cleans up
as it does for Ctrl-C (half-written outputs are removed), and the CLI then exits with 143. The Ray
backend keeps its blocking calls off the main thread, so the exception reaches the CLI as itself
(inside a Ray call it would become a plain KeyboardInterrupt).

A handler that runs while the main thread is inside a ctypes callback (numba compiling a kernel calls back
into Python) cannot raise: ctypes prints the exception and drops it, and the run would go on to the end.
So the handler also notes the request, and the streaming graph raises it again at its next batch
(``raise_if_requested``).
"""

from __future__ import annotations

import signal
import threading
from types import FrameType
from typing import Any


class Terminated(KeyboardInterrupt):
    """SIGTERM arrived; raised in the main thread by the CLI's signal handler."""


_requested = threading.Event()


def on_sigterm(signum: int, frame: FrameType | None) -> None:
    """The CLI's SIGTERM handler: notes the request and raises ``Terminated`` in the main thread."""
    _requested.set()
    raise Terminated


def install() -> Any:
    """``on_sigterm`` as SIGTERM's handler, with no request pending; returns the handler it replaced. Main
    thread only (Python sets signal handlers there alone)."""
    _requested.clear()
    return signal.signal(signal.SIGTERM, on_sigterm)


def raise_if_requested() -> None:
    """``Terminated`` if SIGTERM arrived and its exception was dropped on the way (see the module's note)."""
    if _requested.is_set():
        raise Terminated
