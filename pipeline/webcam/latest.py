"""A one-item mailbox where the newest item wins: the hand-off between the demo's threads.

Queues add latency; a real-time demo wants the stage downstream to see only the most recent item and
the items it never saw to be counted as dropped, which is all this class does.
"""

from __future__ import annotations

import threading
from typing import Generic, TypeVar

Item = TypeVar("Item")


class LatestSlot(Generic[Item]):
    """Holds the newest item; ``put`` replaces an untaken one and counts it as dropped."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._item: Item | None = None
        self._sequence = 0  # bumped on every put; readers remember the last sequence they took
        self._taken = True
        self._closed = False
        self.dropped = 0

    def put(self, item: Item) -> None:
        with self._changed:
            if not self._taken:
                self.dropped += 1
            self._item = item
            self._sequence += 1
            self._taken = False
            self._changed.notify_all()

    def take(self, after: int, timeout: float | None = None) -> tuple[int, Item] | None:
        """Wait for an item newer than sequence ``after``; None on timeout or once closed and drained."""
        with self._changed:
            if not self._changed.wait_for(lambda: self._sequence > after or self._closed, timeout):
                return None
            if self._sequence <= after:
                return None
            self._taken = True
            return self._sequence, self._item  # type: ignore[return-value]

    def close(self) -> None:
        """Wake every waiting reader; no more items will come."""
        with self._changed:
            self._closed = True
            self._changed.notify_all()

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def pending(self) -> int:
        """1 while the newest item has not been taken yet, else 0."""
        with self._changed:
            return 0 if self._taken else 1
