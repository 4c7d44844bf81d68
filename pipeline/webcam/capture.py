"""The capture thread: reads a camera, or plays a file or stream at its own frame rate as if it were one.

It hands every frame to ``Engine.submit`` the moment it has it and never waits for inference, so a
slow model makes the engine drop frames instead of letting stale ones pile up in a buffer.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Iterator

from birefnet.errors import InputError, UserError
from pipeline.sources import DecodedFrame, VideoSource
from pipeline.webcam.engine import Engine


def source_spec(text: str) -> str:
    """``--source`` as ``open_source`` spells it: a bare camera index N becomes ``webcam:N``."""
    return f"webcam:{text}" if text.isdigit() else text


def paced(frames: Iterable[DecodedFrame], seconds_per_tick: float, stopping: threading.Event) -> Iterator[DecodedFrame]:
    """Yield each frame no earlier than its presentation time, counted from the first frame.

    When decoding falls behind, frames come out as fast as they decode (the engine drops the stale
    ones). A timestamp that goes backwards (a looped file starting over) restarts the clock.
    """
    start_wall: float | None = None
    start_pts = last_pts = 0  # read only once start_wall is set, by then both hold real timestamps
    for frame in frames:
        if start_wall is None or frame.pts < last_pts:
            start_wall, start_pts = time.perf_counter(), frame.pts
        last_pts = frame.pts
        delay = start_wall + (frame.pts - start_pts) * seconds_per_tick - time.perf_counter()
        if delay > 0 and stopping.wait(delay):
            return
        yield frame


class CaptureThread:
    """Feeds ``engine`` from ``source`` until the source ends, fails or ``stop()`` is called.

    A camera paces itself; any other source is played at the rate of its timestamps. A camera that
    stops delivering (unplugged) and any read error end the run with ``error`` set to a one-line
    ``UserError``; the end of a file just ends the run.
    """

    def __init__(self, source: VideoSource, engine: Engine) -> None:
        self.source = source
        self.engine = engine
        self.live = source.info.kind == "camera"
        self.error: UserError | None = None
        self.frames_read = 0
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="webcam-capture", daemon=True)

    def start(self) -> CaptureThread:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join()

    def _run(self) -> None:
        name = self.source.info.path
        frames = self.source.frames()
        if not self.live:
            frames = paced(frames, float(self.source.info.time_base), self._stopping)
        try:
            for frame in frames:
                self.engine.submit(frame.image)
                self.frames_read += 1
                if self._stopping.is_set():
                    return
            if self.live and not self._stopping.is_set():
                raise InputError(f"camera {name} stopped delivering frames after {self.frames_read}")
        except UserError as exc:
            self.error = exc
        except Exception as exc:  # a stream that broke mid-run: end the run and say why, in one line
            self.error = InputError(f"{name} stopped delivering frames after {self.frames_read}: "
                                    f"{type(exc).__name__}: {exc}")
        finally:
            self.engine.end_of_input()
