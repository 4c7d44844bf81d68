"""The live demo's web page in a real headless Chromium: frames arrive, backgrounds switch, and the
browser-camera mode (Chromium's fake camera) round-trips frames through the server's WebSocket."""

from __future__ import annotations

import shutil
import tempfile
import threading
import time
from pathlib import Path

import pytest
import torch

from birefnet import Predictor, build_model
from pipeline.sources import open_source
from pipeline.webcam.capture import CaptureThread
from pipeline.webcam.engine import Engine
from pipeline.webcam.live import LiveRun
from pipeline.webcam.render import View
from tests.clips import make_clip

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install -e '.[test]')")
pytestmark = [
    pytest.mark.skipif(not CHROMIUM.exists(),
                       reason="Chromium is not installed: apt-get install chromium chromium-driver"),
    pytest.mark.skipif(not Path(CHROMEDRIVER).exists(),
                       reason="chromedriver is not installed: apt-get install chromium-driver"),
    pytest.mark.slow,
]

CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync")
FAKE_CAMERA_FLAGS = ("--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream")
WAIT_S = 30  # upper bound for a page event on a loaded 2-core machine; tests never wait this long when healthy

# mean |R - G| over the canvas: 0 for the grey matte view, large for a colourful picture over green
CANVAS_COLOUR_SPREAD = """
const canvas = document.getElementById('view');
const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
let spread = 0, sum = 0, sumSq = 0;
for (let i = 0; i < data.length; i += 4) {
  spread += Math.abs(data[i] - data[i + 1]);
  const grey = (data[i] + data[i + 1] + data[i + 2]) / 3;
  sum += grey; sumSq += grey * grey;
}
const n = data.length / 4;
return {spread: spread / n, variance: sumSq / n - (sum / n) ** 2, frames: window.liveMatting.frames};
"""


@pytest.fixture
def chromium(request):
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in CHROMIUM_FLAGS + (FAKE_CAMERA_FLAGS if getattr(request, "param", False) else ()):
        options.add_argument(flag)
    profile = tempfile.mkdtemp(prefix="chromium-profile-")
    options.add_argument(f"--user-data-dir={profile}")
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(CHROMEDRIVER))
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture(scope="module")
def predictor():
    torch.manual_seed(0)
    return Predictor.from_model(build_model("demo"), device="cpu", resolution=64)


class Background:
    """A LiveRun with the web display in a thread, stopped and checked on exit."""

    def __init__(self, engine: Engine, capture: CaptureThread | None):
        self.run = LiveRun(engine, capture, View(), display="web", port=0, duration=WAIT_S * 3, quiet=True)
        self.report = None
        self.error = None
        self._thread = threading.Thread(target=self._main, daemon=True)

    def _main(self):
        try:
            self.report = self.run.run()
        except BaseException as exc:
            self.error = exc
            self.run.started.set()

    def __enter__(self):
        self._thread.start()
        assert self.run.started.wait(WAIT_S)
        assert self.error is None, self.error
        return self

    def __exit__(self, *exc):
        self.run.stop()
        self._thread.join()
        assert self.error is None, self.error

    @property
    def url(self) -> str:
        return self.run.server.url


def wait_for(driver, condition, what: str):
    """Poll ``condition(state)`` on the canvas state until true; fail with ``what`` after WAIT_S."""
    deadline = time.monotonic() + WAIT_S
    while True:
        state = driver.execute_script(CANVAS_COLOUR_SPREAD)
        if condition(state):
            return state
        if time.monotonic() > deadline:
            pytest.fail(f"page never {what}; last canvas state {state}")
        time.sleep(0.1)


def test_page_shows_live_frames_and_switches_background(tmp_path, chromium, predictor):
    clip = make_clip(tmp_path / "clip.mp4", width=128, height=96, frames=30, fps=15)
    engine = Engine(predictor)
    with Background(engine, CaptureThread(open_source(str(clip), loop=True), engine)) as live:
        chromium.get(live.url)
        first = wait_for(chromium, lambda s: s["frames"] >= 3, "drew 3 frames")
        assert first["variance"] > 10  # a picture, not a blank canvas
        assert first["spread"] > 10  # a colourful clip over green
        later = wait_for(chromium, lambda s: s["frames"] > first["frames"] + 2, "kept drawing frames")
        assert int(chromium.find_element("id", "frames").text) >= later["frames"]

        from selenium.webdriver.support.select import Select
        Select(chromium.find_element("id", "background")).select_by_value("matte")
        matte = wait_for(chromium, lambda s: s["spread"] < 2, "switched to the grey matte view")
        assert matte["frames"] > later["frames"]
        stats = chromium.find_element("id", "stats").text
        assert "inference" in stats and "latency" in stats
    assert live.report["frames_shown"] >= matte["frames"] - 1  # the page's frames are the ones counted


@pytest.mark.parametrize("chromium", [True], indirect=True)
def test_browser_camera_frames_come_back_matted(chromium, predictor):
    engine = Engine(predictor)
    with Background(engine, capture=None) as live:  # like --source browser
        chromium.get(live.url)
        state = wait_for(chromium, lambda s: s["frames"] >= 5, "showed 5 matted camera frames")
        assert state["variance"] > 10
        assert chromium.find_element("id", "message").text == ""
    assert live.report["frames_captured"] >= 5  # frames that came from the browser's camera
    assert live.report["frames_shown"] >= 5
