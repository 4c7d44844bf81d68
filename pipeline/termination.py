"""How a run is stopped from outside: SIGTERM (``kill``, a batch scheduler) unwinds like Ctrl-C.

The CLI turns the signal into ``Terminated``; since it is a ``KeyboardInterrupt``, every stage cleans up
as it does for Ctrl-C (half-written outputs are removed), and the CLI then exits with 143. The Ray
backend keeps its blocking calls off the main thread, so the exception reaches the CLI as itself
(inside a Ray call it would become a plain KeyboardInterrupt).
"""


class Terminated(KeyboardInterrupt):
    """SIGTERM arrived; raised in the main thread by the CLI's signal handler."""
