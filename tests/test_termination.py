"""SIGTERM stops a run even where its exception cannot propagate."""

import ctypes
import signal
import sys

import pytest

from pipeline import termination
from pipeline.termination import Terminated


def test_a_sigterm_dropped_inside_a_native_callback_is_raised_at_the_next_check(monkeypatch):
    """Inside a ctypes callback (numba compiling a kernel calls back into Python) the handler's exception is
    dropped as unraisable; the request it noted must still stop the run at the graph's next batch."""
    dropped = []
    monkeypatch.setattr(sys, "unraisablehook", lambda unraisable: dropped.append(unraisable.exc_type))
    previous = termination.install()
    try:
        termination.raise_if_requested()  # nothing pending yet
        native = ctypes.CFUNCTYPE(None)(lambda: signal.raise_signal(signal.SIGTERM))
        native()  # returns normally
        assert dropped == [Terminated]
        with pytest.raises(Terminated):
            termination.raise_if_requested()
        termination.install()  # a new run starts with no request pending
        termination.raise_if_requested()
    finally:
        signal.signal(signal.SIGTERM, previous)
