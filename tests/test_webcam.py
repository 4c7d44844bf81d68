"""The live demo's loop, driven by generated clips played as cameras, with the tiny demo model."""

from __future__ import annotations

import json
import socket
import time
from dataclasses import replace

import cv2
import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from birefnet import Predictor, build_model
from birefnet.errors import InputError
from pipeline.composite import NAMED_COLOURS, Compositor
from pipeline.sources import open_source
from pipeline.temporal.smoother import make_smoother
from pipeline.webcam.capture import CaptureThread
from pipeline.webcam.engine import Engine
from pipeline.webcam.live import LiveRun
from pipeline.webcam.render import BACKGROUNDS, View, render
from pipeline.webcam.stats import KEPT_TIMINGS, LatencyHistogram, RunStats
from run_pipeline import main
from tests.clips import make_clip

REPORT_KEYS = {"capture_fps", "inference_fps", "latency_ms_p50", "latency_ms_p95", "frames_shown", "frames_dropped"}


class SlowModel(torch.nn.Module):
    """The demo model behind a fixed sleep: inference far slower than the clip's frame rate."""

    def __init__(self, model: torch.nn.Module, delay_s: float):
        super().__init__()
        self.model = model
        self.delay_s = delay_s

    def forward(self, x):
        time.sleep(self.delay_s)
        return self.model(x)


@pytest.fixture(scope="module")
def demo_model():
    torch.manual_seed(0)
    return build_model("demo")


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """4 s at 30 fps, 128x96: longer than any run below, so those end on their duration."""
    return make_clip(tmp_path_factory.mktemp("webcam") / "clip.mp4", width=128, height=96, frames=120, fps=30)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory, demo_model):
    path = tmp_path_factory.mktemp("webcam") / "demo.safetensors"
    save_file(demo_model.state_dict(), str(path))
    return path


def live_run(source, predictor, duration=None, smoother=None):
    engine = Engine(predictor, smoother)
    run = LiveRun(engine, CaptureThread(source, engine), View(), display="none", duration=duration)
    return engine, run.run()


@pytest.mark.slow
def test_cli_plays_clip_for_bounded_time_and_reports(tmp_path, clip, checkpoint, capsys):
    report_path = tmp_path / "report.json"
    code = main(["webcam", "--source", str(clip), "--model", str(checkpoint), "--resolution", "64",
                 "--display", "none", "--duration", "1.5", "--report", str(report_path)])
    assert code == 0
    report = json.loads(report_path.read_text())
    assert REPORT_KEYS <= set(report)
    assert report["resolution"] == "64x64" and report["temporal"] == "ema"
    # stopped by --duration, not by the end of the 120-frame clip, and never faster than the clip's 30 fps
    assert 0 < report["frames_captured"] < 120
    assert report["frames_captured"] <= 30 * report["duration_s"] + 1
    assert 0 < report["frames_shown"] <= report["frames_matted"] <= report["frames_captured"]
    assert report["frames_shown"] + report["frames_dropped"] == report["frames_captured"]  # none unaccounted
    assert report["latency_ms_p50"] <= report["latency_ms_p95"]
    assert report["capture_fps"] == pytest.approx(report["frames_captured"] / report["duration_s"])
    assert "frames shown" in capsys.readouterr().err  # the closing summary line


@pytest.mark.slow
def test_cli_roi_auto_mattes_live_and_reports_its_crops(tmp_path, clip, checkpoint):
    report_path = tmp_path / "report.json"
    code = main(["webcam", "--source", str(clip), "--model", str(checkpoint), "--resolution", "64",
                 "--display", "none", "--duration", "1", "--roi", "auto", "--report", str(report_path)])
    assert code == 0
    report = json.loads(report_path.read_text())
    assert report["roi"] == "auto" and report["frames_matted"] > 0
    assert 0 < report["roi_coverage_mean"] <= 1 and 0 <= report["roi_frames_rematted"] <= report["frames_matted"]


def test_the_overlay_shows_the_live_crops_only_with_roi():
    from pipeline.webcam.display import overlay_lines

    live = {"capture_fps": 30.0, "inference_fps": 29.0, "latency_ms_p50": 40.0, "latency_ms_p95": 55.0,
            "frames_shown": 10, "frames_dropped": 1, "roi_crops": None, "roi_coverage": None}
    assert not any(line.startswith("ROI") for line in overlay_lines(live, True, "green"))
    lines = overlay_lines({**live, "roi_crops": 2, "roi_coverage": 0.18}, True, "green")
    assert lines[-1] == "ROI 2 crop(s), 18% of the frame"


@pytest.mark.parametrize("count", [1, 2, 7, 1000])
def test_latency_percentiles_in_fixed_memory_match_numpys(count):
    latencies = np.random.default_rng(count).lognormal(np.log(40.0), 0.8, count)  # ms, a long tail
    histogram = LatencyHistogram()
    for latency in latencies:
        histogram.add(float(latency))
    for q in (0, 50, 95, 100):
        assert histogram.percentile(q) == pytest.approx(np.percentile(latencies, q), rel=1e-3)
    assert histogram.max_ms == latencies.max()
    assert LatencyHistogram().percentile(50) is None


def test_a_long_session_keeps_bounded_stats_and_counts_a_second_viewer_once():
    stats = RunStats()
    frames = 3 * KEPT_TIMINGS
    for index in range(frames):
        assert stats.frame_shown(index, 0.0, 0.01, at=0.04)
        assert not stats.frame_shown(index, 0.0, 0.01, at=0.05)  # another viewer, the same frame
    assert not stats.frame_shown(frames - KEPT_TIMINGS, 0.0, 0.01, at=0.05)  # the oldest still kept
    assert len(stats.shown) == KEPT_TIMINGS and len(stats._shown_indices) == KEPT_TIMINGS
    report = stats.summary(frames_dropped=0)
    assert report["frames_shown"] == frames
    assert report["latency_ms_p50"] == pytest.approx(40.0, rel=1e-3)


def test_slow_model_drops_frames_instead_of_queueing(clip, demo_model):
    delay_s = 0.15  # ~5 frames of the 30 fps clip arrive during each inference
    predictor = Predictor.from_model(SlowModel(demo_model, delay_s), device="cpu", resolution=64)
    engine, report = live_run(open_source(str(clip)), predictor, duration=2.0, smoother=make_smoother("ema"))

    # every frame inference did not take was dropped and counted; none waits in a queue
    assert report["frames_dropped"] > 0
    assert report["frames_matted"] < report["frames_captured"]
    assert report["frames_shown"] + report["frames_dropped"] == report["frames_captured"]  # none unaccounted
    shown = engine.stats.shown
    indices = [t.index for t in shown]
    assert indices == sorted(set(indices))
    assert max(np.diff(indices)) > 1  # later frames overtook the ones inference was too busy for

    # the reported figures are the ones the per-frame timestamps give
    latencies = [t.latency_ms for t in shown]
    assert report["frames_shown"] == len(shown)
    assert report["latency_ms_p50"] == pytest.approx(np.percentile(latencies, 50), rel=1e-3)
    assert report["latency_ms_p95"] == pytest.approx(np.percentile(latencies, 95), rel=1e-3)
    for timing in shown:
        assert timing.captured_at <= timing.matted_at <= timing.shown_at
        assert timing.matted_at - timing.captured_at >= delay_s  # inference sits inside the latency
    assert report["inference_fps"] == pytest.approx(report["frames_matted"] / report["duration_s"])


def test_end_of_file_ends_the_run(tmp_path, demo_model):
    short = make_clip(tmp_path / "short.mp4", width=96, height=64, frames=12, fps=30)
    predictor = Predictor.from_model(demo_model, device="cpu", resolution=64)
    engine, report = live_run(open_source(str(short)), predictor)  # no duration: the file ends it
    assert report["frames_captured"] == 12
    assert report["frames_shown"] + report["frames_dropped"] == 12
    assert engine.stats.shown[-1].index == 11  # the last frame is always shown


def test_a_web_display_nobody_watches_drops_every_frame_and_says_so(tmp_path, demo_model):
    short = make_clip(tmp_path / "short.mp4", width=96, height=64, frames=12, fps=30)
    engine = Engine(Predictor.from_model(demo_model, device="cpu", resolution=64))
    report = LiveRun(engine, CaptureThread(open_source(str(short)), engine), View(), display="web", port=0,
                     quiet=True).run()  # the file ends the run; no browser ever connects
    assert report["frames_captured"] == 12 and report["frames_matted"] > 0
    assert (report["frames_shown"], report["frames_dropped"]) == (0, 12)  # the last result and frame too


def test_camera_that_stops_delivering_is_a_one_line_error(tmp_path, demo_model):
    short = make_clip(tmp_path / "cam.mp4", width=96, height=64, frames=6, fps=30)
    source = open_source(str(short))
    source.info = replace(source.info, kind="camera")  # a camera unplugged after 6 frames
    with pytest.raises(InputError, match="stopped delivering frames after 6"):
        live_run(source, Predictor.from_model(demo_model, device="cpu", resolution=64), duration=5.0)


@pytest.mark.parametrize("extra, code, message", [
    (["--source", "/dev/video77"], 3, "/dev/video77"),
    (["--source", "missing.mp4"], 3, "not found"),
    (["--display", "window"], 2, "--display web"),
    (["--source", "browser", "--display", "none"], 2, "needs --display web"),
    (["--resolution", "100"], 2, "multiples of 32"),
])
def test_user_mistakes_are_one_line_errors(tmp_path, clip, checkpoint, capsys, monkeypatch, extra, code, message):
    monkeypatch.chdir(tmp_path)
    args = ["webcam", "--source", str(clip), "--model", str(checkpoint), "--display", "none",
            "--resolution", "64", "--duration", "1", *extra]
    assert main(args) == code
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and message in err


def test_port_in_use_is_a_one_line_error(clip, checkpoint, capsys):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code = main(["webcam", "--source", str(clip), "--model", str(checkpoint), "--resolution", "64",
                     "--display", "web", "--port", str(port), "--duration", "1"])
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == f"error: port {port} on 127.0.0.1 is already in use; choose another with --port"


def test_existing_report_is_kept_without_overwrite(tmp_path, clip, checkpoint, capsys):
    report = tmp_path / "report.json"
    report.write_text("keep")
    assert main(["webcam", "--source", str(clip), "--model", str(checkpoint), "--display", "none",
                 "--report", str(report)]) == 4
    assert report.read_text() == "keep"


def test_views_show_the_frame_over_each_background_or_the_matte():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
    alpha = np.zeros((48, 64), np.float32)
    alpha[:, :32] = 1.0  # left half foreground, right half background
    pictures = {}
    for name in BACKGROUNDS:
        picture = render(image, alpha, View(background=name))
        assert picture.shape == image.shape and picture.dtype == np.uint8
        if name != "matte":
            assert np.array_equal(picture[:, :32], image[:, :32])  # the foreground is untouched
        pictures[name] = picture
    assert np.all(pictures["green"][:, 32:] == NAMED_COLOURS["green"])
    assert np.array_equal(pictures["matte"][..., 0], (alpha * 255).astype(np.uint8))
    assert len({pictures[name][:, 32:].tobytes() for name in BACKGROUNDS}) == len(BACKGROUNDS)

    view = View(background="blur")
    view.toggle_matte()
    assert view.background == "matte"
    view.toggle_matte()
    assert view.background == "blur"
    seen = set()
    for _ in BACKGROUNDS:
        view.cycle()
        seen.add(view.background)
    assert seen == set(BACKGROUNDS)


def test_the_preview_shows_what_the_written_output_composites(tmp_path):
    """Each preview view equals the written output's composite of the same frame and alpha, the
    blur view included (the output's blur leaves the subject out), pixel for pixel."""
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
    alpha = rng.random((48, 64)).astype(np.float32)
    alpha[:, :8], alpha[:, 8:16] = 0.0, 1.0
    picture = rng.integers(0, 256, (30, 50, 3), dtype=np.uint8)
    cv2.imwrite(str(tmp_path / "bg.png"), cv2.cvtColor(picture, cv2.COLOR_RGB2BGR))
    views_and_specs = [
        (View(background="green"), "green"),
        (View(background="colour", colour=(40, 90, 200)), "#285ac8"),
        (View(background="blur"), "blur"),
        (View(background="image", image=picture), str(tmp_path / "bg.png")),
    ]
    for view, spec in views_and_specs:
        written = Compositor(spec).composite(image[None], alpha[None], original=image[None])[0]
        assert np.array_equal(render(image, alpha, view), written), view.background
