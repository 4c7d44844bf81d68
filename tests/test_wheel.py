"""The installed product, not the checkout: a wheel built from this tree carries the presets and runs.

The wheel goes into a fresh virtual environment that sees this machine's packages (torch, av, ray:
nothing to download) but not the checkout: the command runs from a folder outside it, without
PYTHONPATH, and the test checks that the package it imported is the wheel's.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import av
import pytest

from tests.clips import make_clip

ROOT = Path(__file__).resolve().parent.parent
# what a build reads; copied out so that the build's own build/ and *.egg-info never land in the checkout
BUILD_INPUTS = ("pyproject.toml", "setup.py", "README.md", "run_pipeline.py", "birefnet", "pipeline", "workers",
                "configs")


def _run(command: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, f"{command[:3]}... failed:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}"
    return result


@pytest.mark.slow
def test_wheel_installs_with_presets_and_processes_a_clip(tmp_path):
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    source = tmp_path / "source"
    source.mkdir()
    for name in BUILD_INPUTS:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(ROOT / name, source / name)
    wheels = tmp_path / "wheels"
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(wheels),
          str(source)], cwd=tmp_path, env=env)
    [wheel] = wheels.glob("birefnet_video-*.whl")
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], cwd=tmp_path, env=env)
    python, command = venv / "bin" / "python", venv / "bin" / "birefnet-video"
    # --ignore-installed: the machine may hold an editable install of the checkout; the venv gets its own copy
    _run([str(python), "-m", "pip", "install", "-q", "--no-deps", "--ignore-installed", str(wheel)],
         cwd=tmp_path, env=env)

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    where = _run([str(python), "-c", "import pipeline.settings.presets as p; print(p.presets_dir())"],
                 cwd=elsewhere, env=env).stdout.strip()
    assert Path(where).is_relative_to(venv) and (Path(where) / "prores-hr-matting.yaml").is_file()

    clip = make_clip(elsewhere / "clip.mp4", width=64, height=48, frames=4)
    _run([str(command), "process", str(clip), "-o", "out.mov", "--config", "cpu-test", "--quiet"],
         cwd=elsewhere, env=env)
    with av.open(str(elsewhere / "out.mov")) as container:
        frames = [f.to_ndarray(format="rgba") for f in container.decode(video=0)]
    assert len(frames) == 4 and frames[0].shape == (48, 64, 4)
