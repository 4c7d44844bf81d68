"""One live run: start the engine, the capture and the display, stop them in order, return the report.

Kept apart from the command so tests and the benchmark drive exactly what ``birefnet-video webcam``
runs, with their own predictor and source.
"""

from __future__ import annotations

import sys
import threading
import time

from pipeline.webcam.capture import CaptureThread
from pipeline.webcam.display import consume_headless, show_in_window
from pipeline.webcam.engine import Engine
from pipeline.webcam.render import View
from pipeline.webcam.server import WebServer

CLOCK_TICK_S = 0.05


class LiveRun:
    """``display``: "window", "web" or "none"; ``capture`` None when a browser page sends the frames.

    The run ends after ``duration`` seconds, when the source ends, on q in the window, on ``stop()``
    from another thread, or on Ctrl-C, which here is the ordinary way to stop and still gives the report.
    """

    def __init__(self, engine: Engine, capture: CaptureThread | None, view: View, display: str = "none",
                 host: str = "127.0.0.1", port: int = 8765, duration: float | None = None,
                 source_name: str = "", quiet: bool = False) -> None:
        self.engine = engine
        self.capture = capture
        self.view = view
        self.display = display
        self.duration = duration
        self.quiet = quiet
        self.server = (WebServer(engine, view, host, port, browser_camera=capture is None, source_name=source_name)
                       if display == "web" else None)
        self.started = threading.Event()  # set once frames flow and the page is served
        self._stopping = threading.Event()
        self._deadline = float("inf")

    def stop(self) -> None:
        self._stopping.set()

    def _should_stop(self) -> bool:
        return self._stopping.is_set() or time.perf_counter() >= self._deadline

    def run(self) -> dict:
        self.engine.start()
        try:
            if self.server is not None:
                self.server.start()
                if not self.quiet:
                    print(f"live page: {self.server.url} (Ctrl-C stops)", file=sys.stderr)
            if self.capture is not None:
                self.capture.start()
            if self.duration is not None:
                self._deadline = time.perf_counter() + self.duration
            self.started.set()
            try:
                self._show()
            except KeyboardInterrupt:
                pass
        finally:
            if self.capture is not None:
                self.capture.stop()
            if self.server is not None:
                self.server.stop()
            self.engine.stop()
        if self.capture is not None and self.capture.error is not None:
            raise self.capture.error
        return self.engine.report()

    def _show(self) -> None:
        if self.display == "window":
            show_in_window(self.engine, self.view, self._should_stop)
        elif self.display == "none":
            consume_headless(self.engine, self._should_stop)
        else:  # the server's connections show the frames; this thread only keeps the clock
            while not self._should_stop() and not self.engine.results.closed:
                self._stopping.wait(CLOCK_TICK_S)
