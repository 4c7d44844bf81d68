"""`process` end to end: generated clips, a real checkpoint written here (random demo weights, 64 px),
the local backend and a real local Ray with two actors, outputs decoded and checked.

The matte outputs are FFV1 (lossless), so the pipeline's alpha can be compared exactly with the model
run directly on the same decoded frames.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import run_pipeline
from birefnet import Predictor
from birefnet.errors import OutputError
from pipeline.jobs import Job, run_job
from pipeline.settings.process import build_config
from pipeline.sources import open_source
from tests.clips import corrupt_copy, decode_video, make_clip, probe, truncated_copy
from tests.predictors import FaultyFirstWorker
from workers.base import BackendConfig
from workers.factory import create_backend
from workers.matting import PredictorSpec

FRAMES = 10
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def media(tmp_path_factory, checkpoint):
    root = tmp_path_factory.mktemp("e2e")
    clip = make_clip(root / "clip.mp4", width=64, height=48, frames=FRAMES, audio=True)
    return root, checkpoint, clip


def model_alpha(checkpoint: Path, clip: Path) -> np.ndarray:
    """The model run directly on the frames the pipeline's source decodes."""
    predictor = Predictor(str(checkpoint), device="cpu", resolution=64)
    with open_source(str(clip)) as source:
        frames = np.concatenate([b.images for b in source.batches(64)])
    return predictor.predict(frames, dtype="uint8")


def cli(*args: str) -> int:
    return run_pipeline.main(["process", *args])


def test_local_backend_matte_equals_the_model_and_keeps_time_and_audio(media, capsys):
    root, checkpoint, clip = media
    out, report = root / "matte.mkv", root / "report.json"
    code = cli(str(clip), "-o", str(out), "--model", str(checkpoint), "--resolution", "64", "--backend", "local",
               "--output", "matte", "--temporal", "off", "--batch-size", "3", "--report", str(report))
    assert code == 0
    assert f"{clip} -> {out}: {FRAMES} frames in, {FRAMES} out, 0 bad" in capsys.readouterr().out
    matte, times, _ = decode_video(out, format="gray")
    np.testing.assert_array_equal(matte, model_alpha(checkpoint, clip))
    assert times == probe(clip)["times"]
    assert probe(out)["audio"], "audio was copied"
    data = json.loads(report.read_text())
    assert (data["frames_in"], data["frames_out"], data["frames_bad"]) == (FRAMES, FRAMES, 0)
    assert data["fps"] > 0 and data["seconds"] > 0 and set(data["stages"]) >= {"decode", "matting", "encode"}


def test_rgba_output_has_alpha_and_every_frame(media, capsys):
    root, checkpoint, clip = media
    out = root / "rgba.mov"
    assert cli(str(clip), "-o", str(out), "--model", str(checkpoint), "--resolution", "64", "--backend", "local",
               "--temporal", "ema", "--quiet") == 0
    assert capsys.readouterr().out == ""
    info = probe(out)
    assert info["codec"] == "prores" and info["pix_fmt"].startswith("yuva") and info["frames"] == FRAMES
    assert info["times"] == probe(clip)["times"] and info["audio"]


def test_composite_over_a_video_background(media):
    root, checkpoint, clip = media
    background = make_clip(root / "background.mp4", width=80, height=60, frames=3, pattern="bars")
    out = root / "composite.mp4"
    assert cli(str(clip), "-o", str(out), "--model", str(checkpoint), "--resolution", "64", "--backend", "local",
               "--output", "composite", "--background", str(background), "--quiet") == 0
    info = probe(out)
    assert info["codec"] == "h264" and not info["pix_fmt"].startswith("yuva") and info["frames"] == FRAMES
    assert info["times"] == probe(clip)["times"] and info["audio"]


def test_one_pass_writes_several_outputs_from_the_same_mattes(media):
    root, checkpoint, clip = media
    matte_out, green_out = root / "shared_matte.mkv", root / "shared_green.mp4"
    common = {"model": str(checkpoint), "resolution": "64", "backend": "local", "temporal": "off", "quiet": True}
    config = build_config({**common, "output": "matte"})
    green = build_config({**common, "output": "composite", "background": "green"})
    spec = PredictorSpec(str(checkpoint), "fp32", 64)
    with create_backend(spec, BackendConfig(kind="local")) as backend:
        summary = run_job(Job(str(clip), str(matte_out)), config, backend, also=[(str(green_out), green)])
        assert backend.stats.frames == FRAMES  # each frame matted once for both files
    assert summary.frames_in == summary.frames_out == FRAMES
    assert summary.output == f"{matte_out}, {green_out}"
    matte, _, _ = decode_video(matte_out, format="gray")
    np.testing.assert_array_equal(matte, model_alpha(checkpoint, clip))
    assert probe(green_out)["frames"] == FRAMES and probe(green_out)["times"] == probe(clip)["times"]


def test_a_second_output_that_cannot_open_leaves_nothing(media):
    root, checkpoint, clip = media
    first = root / "never.mkv"
    taken = root / "taken.mp4"
    taken.write_bytes(b"keep me")
    common = {"model": str(checkpoint), "resolution": "64", "backend": "local", "quiet": True}
    spec = PredictorSpec(str(checkpoint), "fp32", 64)
    with create_backend(spec, BackendConfig(kind="local")) as backend, pytest.raises(OutputError):
        run_job(Job(str(clip), str(first)), build_config({**common, "output": "matte"}), backend,
                also=[(str(taken), build_config({**common, "output": "composite", "background": "green"}))])
    assert not first.exists() and not list(root.glob(".never*")) and taken.read_bytes() == b"keep me"


def test_ten_bit_source_takes_the_16_bit_path(media):
    root, checkpoint, _ = media
    clip = make_clip(root / "ten_bit.mov", width=64, height=48, frames=4, codec="prores_ks", pix_fmt="yuv422p10le")
    out = root / "ten_bit_rgba.mov"
    assert cli(str(clip), "-o", str(out), "--model", str(checkpoint), "--resolution", "64", "--backend", "local",
               "--quiet") == 0
    frames, _, _ = decode_video(out, format="rgba64le")
    assert frames.shape == (4, 48, 64, 4) and frames.dtype == np.uint16
    assert np.any(frames[..., 3] % 257 != 0), "alpha kept more than 8 bits"


def test_progress_on_media_time_follows_the_frames_written(media, monkeypatch):
    """A container's frame count is an estimate, so the bar runs on seconds; they are the seconds of
    the frames written, not of those decoded, which run ahead by every frame in the queues."""
    import io

    import pipeline.jobs
    from pipeline.progress import Progress

    root, checkpoint, clip = media
    lines = io.StringIO()
    monkeypatch.setattr(pipeline.jobs, "Progress",
                        lambda *a, **k: Progress(*a, **{**k, "quiet": False}, stream=lines, line_interval_s=0))
    config = build_config({"model": str(checkpoint), "resolution": "64", "backend": "local", "temporal": "off",
                           "output": "matte", "batch_size": "2"})
    with create_backend(PredictorSpec(str(checkpoint), "fp32", 64), BackendConfig(kind="local")) as backend:
        run_job(Job(str(clip), str(root / "progress.mkv")), config, backend)
    seen = [tuple(map(float, line.split(" frames, ")[1].split(" s")[0].split("/")))
            for line in lines.getvalue().splitlines()]
    frames = [int(line.split(": ")[1].split(" frames")[0]) for line in lines.getvalue().splitlines()]
    assert frames == list(range(2, FRAMES + 1, 2))
    for count, (done_s, span_s) in zip(frames, seen):
        assert done_s == pytest.approx(min(count / 25, span_s), abs=0.051)


def test_several_inputs_skip_done_report_bad_and_go_on(media, capsys):
    root, checkpoint, clip = media
    out_dir = root / "batch"
    bad = truncated_copy(clip, root / "bad.mp4", fraction=0.05)
    other = make_clip(root / "other.mp4", width=64, height=48, frames=4)
    args = ["--model", str(checkpoint), "--resolution", "64", "--backend", "local", "--output", "matte",
            "--temporal", "off"]
    assert cli(str(clip), "-o", str(out_dir), *args) == 0  # one input: out_dir is a PNG sequence folder
    assert len(list(out_dir.glob("*.png"))) == FRAMES
    out_dir = root / "many"
    (out_dir).mkdir()
    (out_dir / "clip.mp4").write_bytes(b"done before")  # a complete output from an earlier run
    report = root / "many.json"
    code = cli(str(clip), str(bad), str(other), "-o", str(out_dir), *args, "--report", str(report))
    captured = capsys.readouterr()
    assert code == 3
    assert f"{clip}: skipped, {out_dir / 'clip.mp4'} exists" in captured.out
    assert f"error: {bad}:" in captured.err and f"1 of 3 inputs failed: {bad}" in captured.err
    assert probe(out_dir / "other.mp4")["frames"] == 4
    assert (out_dir / "clip.mp4").read_bytes() == b"done before"
    totals = json.loads(report.read_text())
    assert totals["status"] == "failed" and totals["failed"] == [str(bad)] and totals["skipped"] == [str(clip)]
    assert [i["status"] for i in totals["inputs"]] == ["skipped", "failed", "done"]


def test_an_unwritable_report_is_refused_before_the_run(media, capsys):
    root, checkpoint, clip = media
    out = root / "never_rendered.mkv"
    code = cli(str(clip), "-o", str(out), "--model", str(checkpoint), "--resolution", "64", "--backend", "local",
               "--report", str(root))  # a directory
    assert code == 4 and f"cannot write report {root}: Is a directory" in capsys.readouterr().err
    assert not out.exists() and not list(root.glob(".never_rendered*"))


def test_corrupt_frames_are_counted_as_bad_in_the_report(media, capsys):
    root, checkpoint, clip = media
    damaged = corrupt_copy(clip, root / "damaged.mp4", packets=[4])
    report = root / "damaged.json"
    assert cli(str(damaged), "-o", str(root / "damaged.mkv"), "--model", str(checkpoint), "--resolution", "64",
               "--backend", "local", "--output", "matte", "--report", str(report)) == 0
    data = json.loads(report.read_text())
    assert data["frames_bad"] >= 1 and data["frames_out"] == data["frames_in"] == probe(root / "damaged.mkv")["frames"]
    assert f"{data['frames_bad']} bad" in capsys.readouterr().out


def _default_sigint() -> None:
    """A shell that starts this suite in the background hands it SIGINT ignored, and children inherit
    that; the CLI honours an ignored SIGINT, so the child under test gets the default back."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.slow
@pytest.mark.parametrize("signum, code, message, backend", [(signal.SIGINT, 130, "interrupted", "local"),
                                                            (signal.SIGTERM, 143, "terminated", "local"),
                                                            (signal.SIGTERM, 143, "terminated", "ray")])
def test_ctrl_c_or_sigterm_leaves_no_output(media, tmp_path, signum, code, message, backend):
    root, checkpoint, _ = media
    clip = make_clip(tmp_path / "long.mp4", width=64, height=48, frames=400)
    out = tmp_path / "out" / "o.mov"
    out.parent.mkdir()
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "run_pipeline.py"), "process", str(clip), "-o", str(out), "--model",
         str(checkpoint), "--resolution", "64", "--backend", backend, "--workers", "1", "--batch-size", "2",
         "--report", str(tmp_path / "report.json")],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=_default_sigint)
    deadline = time.monotonic() + 120
    while not any(out.parent.glob("*")) and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.2)  # the sink's hidden temporary file appears once frames are flowing
    assert process.poll() is None, process.communicate()
    process.send_signal(signum)
    _, err = process.communicate(timeout=60)
    assert process.returncode == code, err
    assert err.strip().splitlines()[-1] == message
    assert not out.parent.exists() or list(out.parent.iterdir()) == []  # the sink removes a folder it created
    report = json.loads((tmp_path / "report.json").read_text())  # written however the run ends
    assert report["status"] == message and [r["status"] for r in report["inputs"]] == ["interrupted"]


# ---- real local Ray, one session for these tests --------------------------------------------------------


def run_with_ray(checkpoint: Path, clip: Path, out: Path, crash_token: Path | None = None):
    config = build_config({"output": "matte", "temporal": "ema", "batch_size": "2", "quiet": True})
    spec = PredictorSpec(str(checkpoint), "fp32", 64)
    build = spec if crash_token is None else FaultyFirstWorker(spec, crash_token, exit_after_batches=1)
    with create_backend(build, BackendConfig(kind="ray", workers=2, in_flight=2)) as backend:
        summary = run_job(Job(str(clip), str(out)), config, backend)
        return summary, backend.stats


@pytest.mark.slow
def test_ray_two_actors_and_a_killed_actor_give_the_same_output(media, local_ray):
    root, checkpoint, clip = media
    clean, clean_stats = run_with_ray(checkpoint, clip, root / "ray.mkv")
    faulty, faulty_stats = run_with_ray(checkpoint, clip, root / "ray_fault.mkv",
                                        crash_token=root / "crash.token")
    assert clean_stats.restarts == 0 and faulty_stats.restarts == 1
    assert clean.frames_out == faulty.frames_out == FRAMES
    reference, times, _ = decode_video(root / "ray.mkv", format="gray")
    recovered, recovered_times, _ = decode_video(root / "ray_fault.mkv", format="gray")
    np.testing.assert_array_equal(recovered, reference)
    assert recovered_times == times == probe(clip)["times"]
    assert probe(root / "ray_fault.mkv")["audio"]
    # smoothing aside, the actors' alpha is the model's (one thread per actor: allow one level of rounding)
    unsmoothed = model_alpha(checkpoint, clip)
    assert np.abs(reference[0].astype(int) - unsmoothed[0]).max() <= 1
