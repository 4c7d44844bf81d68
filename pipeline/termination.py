"""How a run is stopped from outside: SIGTERM (``kill``, a batch scheduler) unwinds like Ctrl-C.

The CLI turns the signal into ``Terminated``; since it is a ``KeyboardInterrupt``, every stage cleans up
as it does for Ctrl-C (half-written outputs are removed), and the CLI then exits with 143.
"""


import threading

# set by the CLI's SIGTERM handler: a blocking Ray call (ray.wait) turns the Terminated raised in the handler
# into a plain KeyboardInterrupt, so the exception alone cannot tell SIGTERM from Ctrl-C
sigterm_received = threading.Event()


def was_terminated(exc: KeyboardInterrupt) -> bool:
    """Whether this interruption came from SIGTERM rather than Ctrl-C."""
    return isinstance(exc, Terminated) or sigterm_received.is_set()


class Terminated(KeyboardInterrupt):
    """SIGTERM arrived; raised in the main thread by the CLI's signal handler."""
