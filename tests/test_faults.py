"""Fault injection: every place a run can be broken, and what it gets.

Ray faults run against a real local Ray with ``tests.predictors.FaultyFirstWorker`` (the first actor
exits while starting, exits mid-run, freezes with SIGSTOP, or kills its raylet); every output is
compared with a fault-free run. CLI faults run ``run_pipeline.py`` in a subprocess with the bundled
demo model on generated clips. docs/reliability.md lists each case with the test that checks it.
"""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from birefnet.errors import OutputError
from pipeline.sinks import open_sink
from pipeline.sources import open_source
from tests.clips import make_clip, probe
from tests.predictors import (
    BrightnessFactory,
    FaultyEveryWorker,
    FaultyFirstWorker,
    expected_alpha,
    random_batches,
)
from workers.base import BackendConfig, WorkersLost
from workers.factory import create_backend

ROOT = Path(__file__).resolve().parent.parent


def keyed_batches(count: int) -> list[tuple[int, np.ndarray]]:
    return [(i, images) for i, images in enumerate(random_batches(count))]


def matte_all(backend, batches) -> list[tuple[int, np.ndarray]]:
    return list(backend.matte(iter(batches)))


def assert_same_as_fault_free(out, batches) -> None:
    """The fault-free result of a BrightnessPredictor is exact: the mean brightness of each frame."""
    assert [key for key, _ in out] == [key for key, _ in batches]
    for (_, alpha), (_, images) in zip(out, batches, strict=True):
        np.testing.assert_array_equal(alpha, expected_alpha(images))


# ---- Ray actors: start-up, mid-run, hang ----------------------------------------------------------------


@pytest.mark.slow
def test_actor_dying_while_it_starts_is_replaced(local_ray, tmp_path):
    dies_at_start = FaultyFirstWorker(BrightnessFactory(), tmp_path / "token", exit_at_start=True)
    batches = keyed_batches(6)
    with create_backend(dies_at_start, BackendConfig(kind="ray", workers=2)) as backend:
        out = matte_all(backend, batches)
        assert backend.stats.restarts == 1
    assert_same_as_fault_free(out, batches)


@pytest.mark.slow
def test_hung_actor_is_replaced_and_its_batches_resent(local_ray, tmp_path):
    freezes = FaultyFirstWorker(BrightnessFactory(), tmp_path / "token", exit_after_batches=1, fault="stop")
    batches = keyed_batches(8)
    config = BackendConfig(kind="ray", workers=2, hang_floor_s=1.0)
    with create_backend(freezes, config) as backend:
        out = matte_all(backend, batches)
        assert backend.stats.restarts == 1
    assert_same_as_fault_free(out, batches)


@pytest.mark.slow
def test_actors_that_keep_dying_end_the_run_in_one_line(local_ray):
    config = BackendConfig(kind="ray", workers=1, max_restarts=1)
    with create_backend(FaultyEveryWorker(BrightnessFactory()), config) as backend:
        with pytest.raises(WorkersLost, match=r"^matting actors were lost 2 times; last: \w+") as lost:
            matte_all(backend, keyed_batches(3))
    assert "\n" not in str(lost.value)


# ---- outputs: two writers, a killed driver, a full disk at close ----------------------------------------


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return make_clip(tmp_path_factory.mktemp("faults") / "clip.mp4", width=32, height=24, frames=8)


def write_all(sink, source) -> None:
    for batch in source.batches(4):
        sink.write(batch, batch.images, np.full((len(batch), 24, 32), 200, np.uint8))


def test_a_second_run_on_the_same_output_fails_at_start_even_with_overwrite(clip, tmp_path):
    final = tmp_path / "out.mov"
    with open_source(str(clip)) as source:
        first = open_sink(str(final), source.info)
        for overwrite in (False, True):
            with pytest.raises(OutputError, match=rf"^output {final} is being written by another run "
                                                  rf"\(pid {os.getpid()}\)"):
                open_sink(str(final), source.info, overwrite=overwrite)
        write_all(first, source)
        first.close()
        with pytest.raises(OutputError, match="output exists"):
            open_sink(str(final), source.info)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mov"]  # no lock, no partial left


def test_disk_full_when_the_file_is_closed_is_one_line(clip, tmp_path):
    final = tmp_path / "out.mov"
    with open_source(str(clip)) as source:
        sink = open_sink(str(final), source.info)
        write_all(sink, source)
        deadline = time.monotonic() + 30
        while sink.frames_written < 8 and time.monotonic() < deadline:
            time.sleep(0.05)
        written = sum(p.stat().st_size for p in tmp_path.iterdir())
        limits = resource.getrlimit(resource.RLIMIT_FSIZE)
        previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG
        resource.setrlimit(resource.RLIMIT_FSIZE, (written, limits[1]))
        try:
            with pytest.raises(OutputError, match=rf"^finishing {final} failed: ") as failed:
                sink.close()
        finally:
            resource.setrlimit(resource.RLIMIT_FSIZE, limits)
            signal.signal(signal.SIGXFSZ, previous)
    assert "\n" not in str(failed.value)
    assert list(tmp_path.iterdir()) == []  # the partial and the claim are gone


def descendants(pid: int) -> set[int]:
    """Process ids under ``pid``, read from /proc (Linux)."""
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            parents[int(entry.name)] = int(fields[1])
    found, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.slow
def test_sigkilled_driver_leaves_no_ray_and_a_rerun_clears_its_partial(tmp_path):
    """Ray's gcs and raylet follow a killed driver, and the watcher ends the rest of its session (agents,
    workers) at once instead of a minute later."""
    long_clip = make_clip(tmp_path / "long.mp4", width=64, height=48, frames=400)
    out = tmp_path / "out" / "o.mkv"
    command = [sys.executable, str(ROOT / "run_pipeline.py"), "process", str(long_clip), "-o", str(out),
               "--model", "demo", "--resolution", "64", "--workers", "1", "--batch-size", "2",
               "--output", "matte", "--temporal", "off"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    driver = subprocess.Popen([*command, "--backend", "ray"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not list(out.parent.glob(".o.partial-*")) and time.monotonic() < deadline and driver.poll() is None:
        time.sleep(0.2)  # the hidden partial appears once frames flow
    names = {pid: Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode() for pid in descendants(driver.pid)}
    ray_processes = [pid for pid, name in names.items() if name.endswith(("raylet", "gcs_server"))]
    assert len(ray_processes) == 2 and driver.poll() is None
    driver.kill()
    driver.wait()
    assert list(out.parent.glob(".o.partial-*"))  # what a SIGKILL leaves
    deadline = time.monotonic() + 15  # agents used to linger for about a minute
    while any(running(pid) for pid in names) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert {pid: names[pid] for pid in names if running(pid)} == {}
    rerun = subprocess.run([*command, "--backend", "local", "--quiet"], cwd=ROOT, env=env, capture_output=True,
                           text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert "removed 1 partial file(s) of o.mkv left by a run that died" in rerun.stderr
    assert sorted(p.name for p in out.parent.iterdir()) == ["o.mkv"]
    assert probe(out)["frames"] == 400


def listening_addresses(pids) -> dict[str, str]:
    """Address:port -> command of every TCP socket the processes ``pids`` listen on (from /proc)."""
    import ipaddress

    owners = {}
    for pid in pids:
        try:
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                target = os.readlink(fd)
                if target.startswith("socket:["):
                    owners[target[8:-1]] = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode()
        except OSError:
            continue
    found = {}
    for table in ("tcp", "tcp6"):
        for line in Path(f"/proc/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] != "0A" or fields[9] not in owners:  # 0A: LISTEN
                continue
            raw, port = fields[1].split(":")
            packed = b"".join(bytes.fromhex(raw[i:i + 8])[::-1] for i in range(0, len(raw), 8))
            address = ipaddress.ip_address(packed)
            mapped = getattr(address, "ipv4_mapped", None)  # ::ffff:127.0.0.1 is IPv4's loopback too
            found[f"{mapped or address}:{int(port, 16)}"] = owners[fields[9]]
    return found


@pytest.mark.slow
def test_local_ray_listens_on_loopback_and_raylet_loss_ends_in_one_line(tmp_path):
    """Every Ray port of a local run listens on 127.0.0.1 only. Then the raylet is killed: either the
    driver sees it gone (its own line, exit 2) or Ray's core ends it first (exit 1) and the watcher
    (``workers/ray_watch.py``) says it; never Ray's log dump or a traceback, nothing under the output name."""
    long_clip = make_clip(tmp_path / "long.mp4", width=64, height=48, frames=400)
    out = tmp_path / "out" / "o.mkv"
    command = [sys.executable, str(ROOT / "run_pipeline.py"), "process", str(long_clip), "-o", str(out),
               "--model", "demo", "--resolution", "64", "--workers", "1", "--batch-size", "2",
               "--output", "matte", "--temporal", "off", "--backend", "ray", "--quiet"]
    driver = subprocess.Popen(command, cwd=ROOT, env={**os.environ, "OMP_NUM_THREADS": "1"},
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not list(out.parent.glob(".o.partial-*")) and time.monotonic() < deadline and driver.poll() is None:
        time.sleep(0.2)  # frames flow
    names = {pid: Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode() for pid in descendants(driver.pid)}
    (raylet,) = [pid for pid, name in names.items() if name.endswith("raylet")]
    listening = listening_addresses([driver.pid, *names])
    assert any(command.endswith("gcs_server") for command in listening.values())
    assert {a: c for a, c in listening.items() if not a.startswith(("127.0.0.1:", "::1:"))} == {}
    os.kill(raylet, signal.SIGKILL)
    stdout, stderr = driver.communicate(timeout=120)
    assert driver.returncode != 0 and stdout == ""
    about_ray = [line for line in stderr.replace(str(tmp_path), "").splitlines() if "ray" in line.lower()]
    assert len(about_ray) == 1 and f"raylet, pid {raylet}" in about_ray[0].replace("raylet (pid", "raylet, pid")
    assert "Traceback" not in stderr and "state-dump" not in stderr
    assert not out.exists()


WATCHED_DRIVER = """
import os, signal, subprocess, sys, time
from workers.ray_watch import RayWatch
raylet = subprocess.Popen(["sleep", "5"], stderr=subprocess.DEVNULL)
watch = RayWatch(raylet.pid, "the raylet died")
time.sleep(0.5)
if sys.argv[1] == "raylet-first":
    raylet.kill()
    time.sleep(0.3)
    os._exit(1)  # as Ray's core does
elif sys.argv[1] == "released":
    watch.release()
    raylet.kill()
    os._exit(0)
else:
    os.kill(os.getpid(), signal.SIGKILL)  # the driver killed: not Ray's doing, nothing to say
"""


@pytest.mark.parametrize("case, said", [("raylet-first", "error: the raylet died\n"), ("released", ""),
                                        ("driver-killed", "")])
def test_the_watcher_speaks_only_when_the_raylet_died_first(case, said):
    done = subprocess.run([sys.executable, "-c", WATCHED_DRIVER, case], cwd=ROOT, capture_output=True, text=True,
                          timeout=60, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.stderr == said


# ---- bad inputs: checkpoints, presets, tiny frames -------------------------------------------------------


def run_cli(*args: str) -> tuple[int, str]:
    done = subprocess.run([sys.executable, str(ROOT / "run_pipeline.py"), *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    return done.returncode, done.stderr


class Payload:
    """Unpickling this calls ``print``: what a malicious checkpoint does with something worse."""

    def __reduce__(self):
        return (print, ("code ran",))


def test_bad_checkpoints_are_one_line_each(tmp_path):
    import torch
    from safetensors.torch import save_file

    from birefnet import build_model
    from birefnet.errors import CheckpointError
    from birefnet.weights import load_model

    state = build_model("demo").state_dict()
    save_file({"bb.patch_embed.proj.weight": state["bb.patch_embed.proj.weight"]}, str(tmp_path / "embed.safetensors"))
    save_file({k: torch.full_like(v, float("nan")) if v.is_floating_point() else v for k, v in state.items()},
              str(tmp_path / "nan.safetensors"))
    torch.save({"weight": Payload()}, tmp_path / "evil.pth")
    expected = {
        "embed.safetensors": "is not a complete BiRefNet checkpoint: its backbone stages are missing",
        "nan.safetensors": "holds non-finite weights (NaN or infinity)",
        "evil.pth": "holds code or Python objects besides tensors, which we refuse to load; if you trust",
    }
    for name, message in expected.items():
        with pytest.raises(CheckpointError) as failed:
            load_model(tmp_path / name)
        assert message in str(failed.value) and "\n" not in str(failed.value)
        assert "weights_only=False" not in str(failed.value).split("convert")[0]  # not torch's advice to re-run


def test_binary_yaml_preset_is_one_line(tmp_path, clip):
    preset = tmp_path / "preset.yaml"
    preset.write_bytes(bytes(range(256)))
    code, err = run_cli("process", str(clip), "-o", str(tmp_path / "o.mov"), "--config", str(preset))
    assert code != 0
    assert err.strip().splitlines() == [f"error: config {preset}: not a text file (YAML must be UTF-8 text)"]


@pytest.mark.parametrize("size", [(1, 1), (2, 2), (11, 40)])
def test_frames_under_12_px_smooth_without_flow(size, caplog):
    from pipeline.temporal.smoother import make_smoother

    smoother = make_smoother("flow")
    frames = np.full((6, *size, 3), 100, np.uint8)  # still frames: no scene cut, so flow is asked for
    alphas = np.full((6, *size), 0.5, np.float32)
    out = [smoother.smooth(frames, alphas), smoother.flush()]
    assert sum(len(part) for part in out if part is not None) == 6
    assert "too small for optical flow" in caplog.text


CRASH_IN_A_COMMAND = """
import ctypes, os, sys
import pipeline.commands.models as models
import run_pipeline

def crash(args):
    os.dup2(os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT), 2)  # as the archive does while Ray runs
    ctypes.string_at(0)

models.run = crash
run_pipeline.main(["models"])
"""


def test_a_native_crash_names_where_it_happened_on_the_terminal(tmp_path):
    """A segfault (PyAV, Ray's core, torch) prints the Python stack of the command on the terminal, even
    while descriptor 2 points at a log file."""
    log = tmp_path / "ray.log"
    crashed = subprocess.run([sys.executable, "-c", CRASH_IN_A_COMMAND, str(log)], cwd=ROOT, capture_output=True,
                             text=True, timeout=120, env={**os.environ, "PYTHONFAULTHANDLER": ""})
    assert crashed.returncode == -signal.SIGSEGV
    assert "Fatal Python error: Segmentation fault" in crashed.stderr
    assert "in crash" in crashed.stderr and "run_pipeline.py" in crashed.stderr
    assert log.read_text() == ""
