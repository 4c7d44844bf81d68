"""Local displays of the live demo: an OpenCV window with a speed overlay, or none at all.

Both take the newest result from the engine, mark it shown and return when the run is over (the
deadline passes, the source ends, or the user quits), so the latency figures mean the same for both.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

import cv2
import numpy as np

from birefnet.errors import ConfigError
from pipeline.webcam.engine import Engine
from pipeline.webcam.render import View, render

WINDOW_TITLE = "birefnet-video live (q quits, b background, s smoothing, m matte)"
KEY_WAIT_MS = 1


def overlay_lines(live: dict, smoothing: bool, background: str) -> list[str]:
    """The overlay's text, from ``Engine.live_stats()``."""
    def ms(value):
        return "-" if value is None else f"{value:.0f}"
    lines = [
        f"capture {live['capture_fps']:.1f} fps   inference {live['inference_fps']:.1f} fps",
        f"latency p50 {ms(live['latency_ms_p50'])} ms   p95 {ms(live['latency_ms_p95'])} ms",
        f"shown {live['frames_shown']}   dropped {live['frames_dropped']}",
        f"background {background}   smoothing {'on' if smoothing else 'off'}",
    ]
    if live.get("roi_crops") is not None:
        lines.append(f"ROI {live['roi_crops']} crop(s), {live['roi_coverage']:.0%} of the frame")
    return lines


def draw_overlay(bgr: np.ndarray, lines: list[str]) -> None:
    """Write ``lines`` in the top-left corner, white on a dark band so they read on any picture."""
    scale = max(bgr.shape[0] / 720, 0.4)
    step = int(24 * scale) + 4
    cv2.rectangle(bgr, (0, 0), (int(560 * scale), step * len(lines) + 8), (0, 0, 0), thickness=-1)
    for row, text in enumerate(lines):
        origin = (8, step * (row + 1))
        cv2.putText(bgr, text, origin, cv2.FONT_HERSHEY_SIMPLEX, 0.6 * scale, (255, 255, 255), 1, cv2.LINE_AA)


def open_window() -> None:
    """Create the window, or say in one line why this OpenCV or session cannot show one."""
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        raise ConfigError("--display window needs a desktop session (DISPLAY is not set); use --display web")
    try:
        cv2.namedWindow(WINDOW_TITLE, cv2.WINDOW_NORMAL)
    except cv2.error:
        raise ConfigError("this OpenCV has no GUI support (opencv-python-headless is installed); "
                          "use --display web, or install opencv-python") from None


def check_window_support() -> None:
    """Fail early, before the model loads, when no window can be shown."""
    open_window()
    cv2.destroyWindow(WINDOW_TITLE)


def show_in_window(engine: Engine, view: View, should_stop: Callable[[], bool]) -> None:
    """Show results until ``should_stop()``, the end of the input, or q."""
    open_window()
    sequence = 0
    try:
        while not should_stop():
            taken = engine.results.take(sequence, timeout=0.01)
            if taken is not None:
                sequence, result = taken
                bgr = cv2.cvtColor(render(result.frame.image, result.alpha, view), cv2.COLOR_RGB2BGR)
                draw_overlay(bgr, overlay_lines(engine.live_stats(), engine.smoothing, view.background))
                cv2.imshow(WINDOW_TITLE, bgr)
            elif engine.results.closed:
                return
            key = cv2.waitKey(KEY_WAIT_MS) & 0xFF
            if taken is not None:
                engine.mark_shown(result)  # imshow paints on waitKey
            if key == ord("q"):
                return
            if key == ord("b"):
                view.cycle()
            elif key == ord("s"):
                engine.smoothing = not engine.smoothing
            elif key == ord("m"):
                view.toggle_matte()
    finally:
        cv2.destroyAllWindows()


def consume_headless(engine: Engine, should_stop: Callable[[], bool]) -> None:
    """``--display none``: every result counts as shown the moment it is ready (benchmarks, tests)."""
    sequence = 0
    while not should_stop():
        taken = engine.results.take(sequence, timeout=0.05)
        if taken is not None:
            sequence, result = taken
            engine.mark_shown(result)
        elif engine.results.closed:
            return
