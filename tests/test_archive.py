"""`archive` end to end on a real multi-node Ray cluster on this machine (``ray.cluster_utils.Cluster``,
a custom resource ``slot`` standing in for GPUs): generated clips with audio and timecode, one long
enough to be cut into segments, one corrupt; outputs decoded and compared with a single-process
`process` run of the same input, exactly with ``--temporal off``. Faults: a worker process killed
mid-unit, a node removed mid-job, the driver killed and the job rerun.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import av
import numpy as np
import pytest

import run_pipeline
from birefnet.errors import ConfigError, OutputError
from pipeline.archive.inputs import find_videos
from pipeline.archive.job import run_archive
from pipeline.archive.ledger import JobDir, UnitRow
from pipeline.archive.status import job_status
from pipeline.archive.units import VideoLayout, cut_points
from pipeline.jobs import InputsFailed
from pipeline.settings.archive import build_config
from tests.clips import audio_extent, decode_video, make_clip, probe
from tests.predictors import BrightnessFactory, FaultyFirstWorker

ROOT = Path(__file__).resolve().parent.parent
LONG_FRAMES, SHORT_FRAMES = 60, 15
# 25 fps, a keyframe every 10 frames, 1 s segments: the long clip is cut at frames 25 and 55 (3 units)
CUT = ["--segment-seconds", "1", "--warmup-frames", "4"]


def test_cut_points_fall_on_the_first_keyframe_after_each_segment_length():
    layout = VideoLayout(frame_count=100, fps=None, keyframes=[0, 10, 20, 30, 40, 50, 60, 70, 80, 90],
                         stream_start=0)
    assert cut_points(layout, 25) == [0, 30, 60, 90]
    assert cut_points(layout, 200) == [0]


def test_inputs_are_files_folders_and_lists(tmp_path):
    (tmp_path / "shots" / "day1").mkdir(parents=True)
    for name in ("shots/day1/a.mp4", "shots/b.mov", "c.mkv"):
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "list.txt").write_text("# one path a line\nc.mkv\n\n")
    found = find_videos([str(tmp_path / "shots"), str(tmp_path / "list.txt")])
    assert [(Path(f.path).name, f.relative) for f in found] == [("b.mov", "b"), ("a.mp4", "day1/a"), ("c.mkv", "c")]


def test_manifest_columns_are_checked_in_one_line(tmp_path):
    clip = make_clip(tmp_path / "a.mp4", frames=2)
    (tmp_path / "bad.csv").write_text("input,colour\na.mp4,red\n")
    with pytest.raises(ConfigError, match=r"bad.csv: unknown column 'colour' \(columns: input, name, frames"):
        find_videos([str(tmp_path / "bad.csv")])
    pyarrow = pytest.importorskip("pyarrow")
    import pyarrow.parquet as parquet

    parquet.write_table(pyarrow.table({"input": [clip.name, clip.name], "name": ["x", "y"],
                                       "temporal": ["off", "sideways"]}), tmp_path / "m.parquet")
    with pytest.raises(ConfigError, match=r"m.parquet row 2: column 'temporal': "):
        find_videos([str(tmp_path / "m.parquet")])
    parquet.write_table(pyarrow.table({"input": [clip.name], "Background-Fit": ["fill"], "frames": ["0:1"]}),
                        tmp_path / "ok.parquet")
    (video,) = find_videos([str(tmp_path / "ok.parquet")])
    assert (video.path, video.relative, video.settings) == (str(clip), "a", {"background_fit": "fill", "frames": "0:1"})


def test_a_row_a_killed_worker_left_half_committed_is_no_row_and_is_removed(tmp_path):
    """A worker killed between writing a row under its temporary name and renaming it must not leave a
    unit counted as done, nor the file behind."""
    job = JobDir(tmp_path)
    job.create({}, [], {}, overwrite=False)
    job.write_row(UnitRow("a", "a.mp4", "done", frames=3))
    stale = job.row_path("b").with_name(f".{job.row_path('b').stem}.partial-4242.json")
    stale.write_text(json.dumps(UnitRow("b", "b.mp4", "done", frames=3).as_dict()))
    assert set(job.rows()) == {"a"}
    job.discard_partials()
    assert not stale.exists() and set(job.rows()) == {"a"}


def test_status_tells_running_units_from_those_a_killed_run_left(tmp_path):
    """A unit's row says 'running' until its worker ends it; only the job's claim says whether a run is
    still there to end it. A second run on a held job is refused."""
    job = JobDir(tmp_path)
    job.create({}, [{"id": "a", "video": "a.mp4", "frames": 10}, {"id": "b", "video": "b.mp4", "frames": 10}],
               {}, overwrite=False)
    job.write_row(UnitRow("a", "a.mp4", "done", frames=10, seconds=1.0, started=100.0))
    job.write_row(UnitRow("b", "b.mp4", "running", started=101.0))
    stopped = job_status(tmp_path)
    assert stopped.units == {"done": 1, "running": 0, "stopped": 1, "failed": 0, "left": 0}
    assert stopped.eta_s is None and "1 stopped" in stopped.format()
    claim = job.claim()
    try:
        assert job_status(tmp_path).units["running"] == 1
        with pytest.raises(OutputError, match="being written by another run"):
            JobDir(tmp_path).claim()
    finally:
        claim.release()


def test_ray_data_logs_keep_warnings_and_drop_the_usage_pollers_debug_records():
    """The usage poller's per-poll DEBUG traceback once raced the exit's closing of Ray Data's log file
    and printed '--- Logging error ---' under --quiet (CI); it must not reach Ray Data's handlers."""
    import logging

    from workers.dataset import route_data_logs

    route_data_logs(quiet=True)
    seen: list[str] = []
    catcher = logging.Handler(logging.DEBUG)
    catcher.emit = lambda record: seen.append(record.name)  # type: ignore[method-assign]
    logging.getLogger("ray.data").addHandler(catcher)
    try:
        logging.getLogger("ray.data._internal.usage.util").debug("Failed to query Prometheus counter")
        logging.getLogger("ray.data._internal.execution").warning("an operator's warning")
        logging.getLogger("ray.data._internal.execution").debug("an operator's debug line")
    finally:
        logging.getLogger("ray.data").removeHandler(catcher)
    assert seen == ["ray.data._internal.execution", "ray.data._internal.execution"]


@pytest.mark.slow
def test_ray_job_submit_against_a_head_started_here(media, tmp_path):
    """`ray job submit --working-dir . -- birefnet-video archive ...` on a real head (127.0.0.1), on ports
    of its own: under ``pytest -n`` another test's cluster may be up beside it."""
    pytest.importorskip("ray")
    pytest.importorskip("aiohttp", reason="ray job submit needs the dashboard of ray[default]")
    _, checkpoint, inputs = media
    port, dashboard = 6391, 8291
    temp_dir = Path(tempfile.mkdtemp(prefix="rayjob", dir="/tmp"))  # Ray's socket paths must stay under 108 bytes
    # Ray 2.60 turns token authentication on for a head when a token file exists (~/.ray/auth_token):
    # this head and its client share a token of their own
    env = {**os.environ, "RAY_ADDRESS": "", "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32)}
    env.pop("PYTHONPATH", None)  # the job must run the code it uploaded
    subprocess.run(["ray", "start", "--head", "--node-ip-address", "127.0.0.1", "--port", str(port),
                    "--num-cpus", "2", "--resources", '{"slot": 2}', "--include-dashboard", "true",
                    "--dashboard-host", "127.0.0.1", "--dashboard-port", str(dashboard), "--disable-usage-stats",
                    # ports of its own for the job agent: a cluster of another test may run beside it (pytest -n)
                    "--dashboard-agent-listen-port", "52391", "--dashboard-agent-grpc-port", "52392",
                    "--temp-dir", str(temp_dir)],
                   env=env, check=True, capture_output=True, timeout=120)
    try:
        out = tmp_path / "out"
        deadline = time.monotonic() + 120
        while True:
            job = subprocess.run(
                ["ray", "job", "submit", "--address", f"http://127.0.0.1:{dashboard}", "--working-dir", str(ROOT),
                 "--", "python", "-m", "run_pipeline", "archive", str(inputs / "day1"), "-o", str(out),
                 "--temporal", "off", "--worker-resource", "slot", *CUT, *model_flags(checkpoint)],
                env=env, capture_output=True, text=True, timeout=300)
            if "No available agent to submit job" not in job.stderr or time.monotonic() > deadline:
                break
            time.sleep(2)  # the head's job agent is still starting (a loaded machine)
        assert job.returncode == 0, job_failure(job, out)
        assert (out / "long.mov").is_file()
        assert run_pipeline.main(["archive", "--status", str(out)]) == 0
    finally:
        stop_processes_of(temp_dir)
        shutil.rmtree(temp_dir, ignore_errors=True)


def job_failure(job: subprocess.CompletedProcess, out: Path) -> str:
    """What a failed `ray job submit` says without Ray's own INFO lines (the job's output, a crash's
    stacks), and the log the driver's Ray core wrote."""
    said = [line for line in (job.stdout + job.stderr).splitlines() if "\tINFO " not in line]
    log = JobDir(out).ray_log
    return "\n".join(said)[-4000:] + (f"\n{log}:\n{log.read_text()[-2000:]}" if log.is_file() else "")


def decode_wav(path: Path) -> np.ndarray:
    with av.open(str(path)) as container:
        return np.concatenate([frame.to_ndarray() for frame in container.decode(audio=0)], axis=1)


@pytest.mark.slow
def test_manifest_rows_with_their_own_settings_from_the_cli_quietly(cluster, media, tmp_path, capsys):
    """A CSV manifest through the CLI, joining the test cluster: one row a PNG sequence cut into segments
    (frames and the WAV beside them as `process` writes), one a frame range as a matte; nothing from
    Ray on stderr under --quiet; a changed row is refused at the rerun."""
    root, checkpoint, inputs = media
    manifest = inputs / "manifest.csv"
    manifest.write_text("input,name,codec,frames,output\n"
                        "day1/long.mp4,seq/long,png,,\n"
                        "short.mp4,cut/short,ffv1,2:9,matte\n")
    out = tmp_path / "out"
    args = [sys.executable, "-m", "run_pipeline", "archive", str(manifest), "-o", str(out), "--temporal", "off",
            "--worker-resource", "slot", "--ray-address", cluster.address, *CUT, *model_flags(checkpoint)]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    run = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stderr == "" and run.stdout == ""
    assert len(JobDir(out).read_job()["units"]) == 4  # the sequence in 3 segments, the range whole

    single = tmp_path / "single"
    assert run_pipeline.main(["process", str(inputs / "day1" / "long.mp4"), "-o", str(single / "long") + "/",
                              "--codec", "png", "--backend", "local", "--temporal", "off",
                              *model_flags(checkpoint)]) == 0
    got = sorted(p.name for p in (out / "seq" / "long").iterdir())
    assert got == sorted(p.name for p in (single / "long").iterdir()) and "frame.wav" in got
    for name in got[:: max(1, len(got) // 7)]:
        if name.endswith(".png"):
            assert (out / "seq" / "long" / name).read_bytes() == (single / "long" / name).read_bytes()
    np.testing.assert_array_equal(decode_wav(out / "seq" / "long" / "frame.wav"),
                                  decode_wav(single / "long" / "frame.wav"))
    ranged = tmp_path / "ranged.mkv"  # lossless, so equal mattes decode equal
    assert run_pipeline.main(["process", str(inputs / "short.mp4"), "-o", str(ranged), "--frames", "2:9",
                              "--output", "matte", "--codec", "ffv1", "--backend", "local", "--temporal", "off",
                              *model_flags(checkpoint)]) == 0
    matte, matte_times, _ = decode_video(out / "cut" / "short.mkv")
    want, want_times, _ = decode_video(ranged)
    assert len(matte) == 7 and matte_times == want_times
    np.testing.assert_array_equal(matte, want)

    manifest.write_text("input,name,codec,frames,output\n"
                        "day1/long.mp4,seq/long,png,,\n"
                        "short.mp4,cut/short,ffv1,3:9,matte\n")
    capsys.readouterr()
    assert run_pipeline.main(args[3:]) == 2  # refused before Ray is used: in-process is enough
    assert f"({out / 'cut' / 'short.mkv'}: frames: '2:9' then, '3:9' now); use --overwrite" in capsys.readouterr().err


def stop_processes_of(temp_dir: Path) -> None:
    """End the head this test started, by process id (its processes name its temp dir; `ray stop`
    would end every Ray on the machine)."""
    for entry in Path("/proc").iterdir():
        try:
            command = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if entry.name.isdigit() and str(temp_dir).encode() in command:
            try:
                os.kill(int(entry.name), signal.SIGKILL)
            except OSError:
                pass


@pytest.fixture(scope="module")
def cluster():
    """Two nodes with one CPU and one ``slot`` each; the test process is the driver."""
    ray = pytest.importorskip("ray")
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "resources": {"slot": 1},
                                                            "include_dashboard": False})
    cluster.add_node(num_cpus=1, resources={"slot": 1})
    cluster.wait_for_nodes()
    ray.init(address=cluster.address, include_dashboard=False, log_to_driver=False)
    yield cluster
    ray.shutdown()
    cluster.shutdown()


@pytest.fixture(scope="module")
def media(tmp_path_factory, checkpoint):
    root = tmp_path_factory.mktemp("archive")
    inputs = root / "in"
    (inputs / "day1").mkdir(parents=True)
    make_clip(inputs / "day1" / "long.mp4", frames=LONG_FRAMES, audio=True, timecode="01:00:00:00",
              options={"g": "10"})
    make_clip(inputs / "short.mp4", frames=SHORT_FRAMES, audio=True)
    (inputs / "broken.mp4").write_bytes(b"not a video" * 64)
    return root, checkpoint, inputs


def model_flags(checkpoint: Path) -> list[str]:
    return ["--model", str(checkpoint), "--resolution", "64", "--device", "cpu", "--quiet"]


def process_output(root: Path, checkpoint: Path, clip: Path, temporal: str) -> Path:
    out = root / f"process_{temporal}" / (clip.stem + ".mov")
    if not out.exists():
        assert run_pipeline.main(["process", str(clip), "-o", str(out), "--backend", "local", "--temporal", temporal,
                                  *model_flags(checkpoint)]) == 0
    return out


def assert_same_video(joined: Path, single: Path, alpha_tolerance: float = 0.0) -> None:
    """Frames, timestamps, audio, timecode and colour of ``joined`` are those of ``single``."""
    got, got_times, _ = decode_video(joined, format="rgba")
    want, want_times, _ = decode_video(single, format="rgba")
    assert got_times == want_times
    if alpha_tolerance:
        np.testing.assert_array_equal(got[..., :3], want[..., :3])
        assert np.abs(got[..., 3].astype(int) - want[..., 3].astype(int)).mean() <= alpha_tolerance
    else:
        np.testing.assert_array_equal(got, want)
    assert audio_extent(joined) == audio_extent(single)
    assert probe(joined) == probe(single)  # codec, pixel format, colour tags, rate, streams, timecode


@pytest.mark.slow
def test_archive_equals_process_resumes_and_reports(cluster, media, tmp_path, capsys):
    root, checkpoint, inputs = media
    out, report = tmp_path / "out", tmp_path / "report.json"
    args = ["archive", str(inputs), "-o", str(out), "--temporal", "off", "--worker-resource", "slot", *CUT,
            *model_flags(checkpoint)]
    assert run_pipeline.main([*args, "--report", str(report)]) == 3  # the broken file fails alone
    assert "1 of 3 inputs failed: " + str(inputs / "broken.mp4") in capsys.readouterr().err
    for clip, output in ((inputs / "day1" / "long.mp4", out / "day1" / "long.mov"),
                         (inputs / "short.mp4", out / "short.mov")):
        assert_same_video(output, process_output(root, checkpoint, clip, "off"))
    first = json.loads(report.read_text())
    assert (first["units_run"], first["units_skipped"], first["units_failed"]) == (4, 0, 0)
    assert (first["videos_done"], first["videos_skipped"], first["videos_failed"]) == (2, 0, 1)
    assert {row["node"] for row in first["units"]} <= {n["NodeID"] for n in __import__("ray").nodes()}
    assert [v["status"] for v in first["videos"]] == ["failed", "done", "done"]
    for video in first["videos"][1:]:  # the units' own stage times and alpha, summed per video
        assert video["stages"]["matting"] > 0 and video["stages"]["encode"] > 0 and video["alpha"] == "straight"
    assert not list(out.rglob(".*partial-*"))

    assert run_pipeline.main(["archive", "--status", str(out)]) == 0
    status = capsys.readouterr().out
    assert "4 done, 0 running, 0 stopped, 0 failed, 0 left" in status and "broken.mp4" in status

    assert run_pipeline.main([*args, "--report", str(report)]) == 3  # resumes: nothing left to run
    again = json.loads(report.read_text())
    assert (again["units_run"], again["units_skipped"]) == (0, 4)

    assert run_pipeline.main([*args[:-len(model_flags(checkpoint))], "--temporal", "flow",
                              *model_flags(checkpoint)]) == 2
    assert "other settings (temporal: 'off' then, 'flow' now); use --overwrite" in capsys.readouterr().err


@pytest.mark.slow
def test_smoothed_segments_join_within_tolerance(cluster, media, tmp_path):
    root, checkpoint, inputs = media
    clip = inputs / "day1" / "long.mp4"
    out = tmp_path / "out"
    assert run_pipeline.main(["archive", str(clip), "-o", str(out), "--temporal", "flow", "--worker-resource",
                              "slot", *CUT, *model_flags(checkpoint)]) == 0
    # warm-up frames start each segment's smoother close to the state one pass has there
    assert_same_video(out / "long.mov", process_output(root, checkpoint, clip, "flow"), alpha_tolerance=1.0)


class SleepyBrightness:
    """The brightness model, slowed down: ``delay_s`` before every batch, so a fault can land mid-unit."""

    def __init__(self, delay_s: float):
        self.delay_s = delay_s

    def __call__(self, device: str) -> object:
        inner = BrightnessFactory()(device)
        delay = self.delay_s

        class Sleepy:
            def predict(self, frames: np.ndarray, dtype: str = "float32") -> np.ndarray:
                time.sleep(delay)
                return inner.predict(frames, dtype)

        return Sleepy()


def brightness_config(report: Path | None = None, ray_address: str | None = None):
    """The archive's settings for the brightness model: segments of 25 frames, batches of 2."""
    flags = {"temporal": "off", "device": "cpu", "quiet": True, "worker_resource": "slot", "segment_seconds": 1,
             "warmup_frames": 4, "batch_size": 2, "report": str(report) if report else None,
             "ray_address": ray_address}
    return build_config(flags)


def outputs_of(out: Path) -> dict[str, np.ndarray]:
    return {str(p.relative_to(out)): decode_video(p, format="rgba")[0] for p in sorted(out.rglob("*.mov"))
            if "birefnet-archive" not in str(p)}


@pytest.fixture(scope="module")
def fault_free(cluster, media, tmp_path_factory):
    """The archive with the brightness model and no faults: what every faulty run must equal."""
    _, _, inputs = media
    out = tmp_path_factory.mktemp("fault_free")
    with pytest.raises(InputsFailed):
        run_archive([str(inputs)], str(out), brightness_config(), BrightnessFactory())
    return outputs_of(out)


def assert_outputs_equal(out: Path, expected: dict[str, np.ndarray]) -> None:
    got = outputs_of(out)
    assert got.keys() == expected.keys()
    for name in got:
        np.testing.assert_array_equal(got[name], expected[name])
    assert not list(out.rglob(".*partial-*"))


@pytest.mark.slow
def test_worker_killed_mid_unit_is_rerun_elsewhere(cluster, media, tmp_path, fault_free):
    _, _, inputs = media
    factory = FaultyFirstWorker(BrightnessFactory(), tmp_path / "token", exit_after_batches=3)
    with pytest.raises(InputsFailed):
        run_archive([str(inputs)], str(tmp_path / "out"), brightness_config(), factory)
    assert (tmp_path / "token").exists()  # the first worker claimed the fault, and exited mid-unit
    assert_outputs_equal(tmp_path / "out", fault_free)


def wait_for_row(job: JobDir, matches, timeout_s: float = 120) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if job.units_dir.exists() and any(matches(row) for row in job.rows().values()):
            return True
        time.sleep(0.1)
    return False


@pytest.mark.slow
def test_node_removed_mid_job(cluster, media, tmp_path, fault_free):
    _, _, inputs = media
    extra = cluster.add_node(num_cpus=1, resources={"slot": 1})
    cluster.wait_for_nodes()
    out = tmp_path / "out"
    errors: list[BaseException] = []

    def drive() -> None:
        try:
            run_archive([str(inputs)], str(out), brightness_config(), SleepyBrightness(0.3))
        except BaseException as exc:  # InputsFailed for the broken file is expected
            errors.append(exc)

    driver = threading.Thread(target=drive)
    driver.start()
    on_extra = wait_for_row(JobDir(out), lambda row: row.state == "running" and row.node == extra.node_id)
    cluster.remove_node(extra)
    driver.join(timeout=300)
    assert on_extra and not driver.is_alive()
    assert len(errors) == 1 and isinstance(errors[0], InputsFailed)
    assert_outputs_equal(out, fault_free)


DRIVER = """
import sys
from pipeline.archive.job import run_archive
from tests.test_archive import SleepyBrightness, brightness_config
run_archive([sys.argv[1]], sys.argv[2], brightness_config(ray_address=sys.argv[3]), SleepyBrightness(0.3))
"""


@pytest.mark.slow
def test_driver_killed_then_rerun_redoes_only_unfinished_units(cluster, media, tmp_path, fault_free):
    _, _, inputs = media
    out, report = tmp_path / "out", tmp_path / "report.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    driver = subprocess.Popen([sys.executable, "-c", DRIVER, str(inputs), str(out), cluster.address], env=env,
                              cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    job = JobDir(out)
    assert wait_for_row(job, lambda row: row.state == "done")
    driver.send_signal(signal.SIGKILL)
    driver.wait()
    time.sleep(3)  # the job's actors die with their driver
    done = sum(row.state == "done" for row in job.rows().values())
    total = len(job.read_job()["units"])
    assert 0 < done < total
    with pytest.raises(InputsFailed):
        run_archive([str(inputs)], str(out), brightness_config(report), BrightnessFactory())
    counts = json.loads(report.read_text())
    assert (counts["units_run"], counts["units_skipped"]) == (total - done, done)
    assert_outputs_equal(out, fault_free)
