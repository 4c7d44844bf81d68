"""The bounded queue between two threads of a run (decode -> matting, graph -> encode).

A full channel makes the producer wait, so memory stays flat whatever stage is slowest; every wait
gives up when the run is cancelled, so one stage's failure stops the others. The producer ends the
stream with ``End`` or hands its error over with ``Failure``; the consumer iterates.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import Any

POLL_S = 0.1  # how often a waiting thread looks at the cancel flag


class Cancelled(Exception):
    """Raised in a stage whose run was stopped by another stage's failure."""


class End:
    """Marks the end of a stream in a channel."""


class Failure:
    """The producer's error, raised in the consumer when it reaches it."""

    def __init__(self, exc: BaseException):
        self.exc = exc


class Channel:
    """A bounded queue between two threads whose waits give up when the run is cancelled."""

    def __init__(self, cancelled: threading.Event, size: int):
        self._queue: queue.Queue = queue.Queue(maxsize=size)
        self._cancelled = cancelled

    def put(self, item: Any) -> None:
        while not self._cancelled.is_set():
            try:
                self._queue.put(item, timeout=POLL_S)
                return
            except queue.Full:
                continue
        raise Cancelled

    def __iter__(self) -> Iterator[Any]:
        while True:
            try:
                item = self._queue.get(timeout=POLL_S)
            except queue.Empty:
                if self._cancelled.is_set():
                    raise Cancelled from None
                continue
            if item is End:
                return
            if isinstance(item, Failure):
                raise item.exc
            yield item
