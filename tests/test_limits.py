"""Checks before anything expensive starts: memory limits from the device, inputs and outputs of every
job (issue 14 items 8 and 14), and one still image in, one image file out (issue 13).

The model named in the refused runs is a checkpoint that does not exist: a run that got as far as
loading the model would say so, so the message a test sees proves the check came first. Ray is never
initialised in this process by a refused run.
"""

from __future__ import annotations

import json
import os
from dataclasses import replace

import av
import cv2
import numpy as np
import pytest

import run_pipeline
from birefnet.memory import call_bytes, ram_budget
from birefnet.registry import get_variant
from pipeline.limits import check_memory
from pipeline.settings.process import ProcessConfig
from pipeline.sources import open_source
from tests.clips import make_clip

NO_MODEL = "/nonexistent/never-loaded.safetensors"  # loading it would be a CheckpointError
QUICK = ["--config", "cpu-test", "--quiet"]


@pytest.fixture
def clip(tmp_path):
    return make_clip(tmp_path / "clip.mp4", frames=3)


@pytest.fixture
def photo(tmp_path):
    rng = np.random.default_rng(0)
    picture = rng.integers(0, 256, (40, 56, 3), dtype=np.uint8)
    path = tmp_path / "photo.jpg"
    cv2.imwrite(str(path), picture)
    return path


def run(*args) -> int:
    return run_pipeline.main(["process", *map(str, args)])


def ray_started() -> bool:
    import ray

    return ray.is_initialized()


# --- memory limits (issue 14 item 8) ---

def test_huge_resolution_is_refused_in_one_line_before_ray_or_the_model(clip, tmp_path, capsys):
    code = run(clip, "-o", tmp_path / "o.mov", "--model", "demo", "--backend", "ray", "--resolution", "99968")
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "resolution 99968x99968" in err and "budget" in err and "lower --resolution to" in err
    assert not ray_started() and not (tmp_path / "o.mov").exists()


def test_huge_batch_size_is_refused_naming_the_largest_that_fits(clip, tmp_path, capsys):
    code = run(clip, "-o", tmp_path / "o.mov", "--model", NO_MODEL, "--batch-size", "1000000")
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert err.startswith("error: batch_size 1000000:") and "RAM budget" in err and "lower --batch-size to" in err
    largest = int(err.split("lower --batch-size to ")[1].split()[0])
    assert 1 <= largest < 1000000
    # (the budget follows the RAM available at each start, so the checks keep a factor of 2 from the edge)
    assert run(clip, "-o", tmp_path / "o.mov", "--model", NO_MODEL, "--batch-size", 2 * largest) == 2
    assert "batch_size" in capsys.readouterr().err
    assert run(clip, "-o", tmp_path / "o.mov", "--model", NO_MODEL, "--batch-size", largest // 2) == 5  # model next
    assert "never-loaded" in capsys.readouterr().err


def test_the_model_gets_at_most_what_fits_per_call_on_the_cpu(clip):
    """A batch bigger than one model call may hold is split for the model (frames per call), not refused."""
    with open_source(str(clip)) as source:
        info = source.info
    config = ProcessConfig(model="demo", device="cpu", backend="local", resolution=2048, batch_size=10**6 // 64)
    one = call_bytes(get_variant("demo").config, (2048, 2048), (info.width, info.height), 1)
    plan = check_memory(config, [info])
    assert plan is not None and plan.inputs_per_call is not None
    assert 1 <= plan.inputs_per_call < config.batch_size
    assert plan.call_bytes == plan.inputs_per_call * one <= ram_budget().bytes
    assert check_memory(ProcessConfig(model="demo", device="cpu", batch_size=2), [info]).inputs_per_call is None


def test_every_box_of_a_frame_counts_as_a_model_input(clip, tmp_path):
    """Box-guided calls hand the model every box of a frame as an input of its own: a batch of 4 frames
    with three boxes is 12 inputs; a boxes file counts its tracks, ``--roi auto`` its ``--roi-subjects``;
    a batch too large for one call is capped in inputs."""
    with open_source(str(clip)) as source:
        info = source.info
    base = ProcessConfig(model="demo", device="cpu", backend="local", resolution=256, batch_size=4)
    per_input = call_bytes(get_variant("demo").config, (256, 256), (info.width, info.height), 1)
    boxes = ((0, 0, 8, 8), (8, 8, 16, 16), (0.5, 0.5, 1.0, 1.0))
    keyframes = tmp_path / "boxes.csv"
    keyframes.write_text("frame,x0,y0,x1,y1,id\n0,0,0,8,8,a\n2,1,1,9,9,a\n0,8,8,16,16,b\n0,0,0,4,4,c\n")
    for settings, inputs in (({"box": boxes[:1]}, 4), ({"box": boxes}, 12), ({"boxes": str(keyframes)}, 12),
                             ({"roi": "auto", "roi_subjects": 3}, 12), ({"roi": "auto", "roi_subjects": 1}, 4)):
        plan = check_memory(replace(base, **settings), [info])
        assert plan is not None and plan.inputs_per_call is None and plan.call_bytes == inputs * per_input, settings
    capped = check_memory(replace(base, box=boxes, batch_size=10**5), [info])
    assert capped is not None and capped.inputs_per_call
    assert capped.call_bytes == capped.inputs_per_call * per_input <= ram_budget().bytes


def test_the_coarse_pass_is_capped_like_the_crops_and_refused_only_when_one_thumbnail_cannot_fit(
        clip, tmp_path, capsys):
    """``--roi auto`` sends a batch and 3 frames either side to the coarse pass, chunked by the frames per
    call: on the CPU they are capped to what that pass needs too; only a thumbnail that cannot fit alone
    is refused."""
    from birefnet.memory import ACTIVATION_BYTES_PER_PIXEL

    with open_source(str(clip)) as source:
        info = source.info
    coarse = int((ram_budget().bytes / 4 / ACTIVATION_BYTES_PER_PIXEL["swin_demo"]) ** 0.5) // 32 * 32
    config = ProcessConfig(model="demo", device="cpu", backend="local", resolution=256, roi="auto",
                           roi_coarse=coarse, batch_size=4)
    assert check_memory(replace(config, roi="off"), [info]).inputs_per_call is None  # the crops alone fit
    plan = check_memory(config, [info])
    assert plan is not None and plan.inputs_per_call is not None and 1 <= plan.inputs_per_call < 4 + 2 * 3
    one_thumbnail = call_bytes(get_variant("demo").config, (coarse, coarse), (info.width, info.height), 1)
    assert plan.inputs_per_call * one_thumbnail <= ram_budget().bytes

    code = run(clip, "-o", tmp_path / "o.mov", "--model", NO_MODEL, "--roi", "auto", "--roi-coarse", "16384")
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert err.startswith("error: roi_coarse 16384: one thumbnail of the coarse pass needs about")
    assert err.endswith("lower --roi-coarse") and not (tmp_path / "o.mov").exists()


# --- inputs and outputs checked first (issue 14 item 14) ---

def test_missing_input_and_unwritable_output_are_reported_before_the_model_loads(clip, tmp_path, capsys):
    assert run(tmp_path / "missing.mp4", "-o", tmp_path / "o.mov", "--model", NO_MODEL) == 3
    assert "input not found" in capsys.readouterr().err
    blocker = tmp_path / "file"
    blocker.write_bytes(b"x")
    assert run(clip, "-o", blocker / "o.mov", "--model", NO_MODEL) == 4
    assert "not a directory" in capsys.readouterr().err
    assert run(clip, "-o", "/proc/o.mov", "--model", NO_MODEL) == 4  # root may write anywhere, not there
    assert "not writable: /proc" in capsys.readouterr().err
    assert run(clip, "-o", clip, "--model", NO_MODEL, "--overwrite", "--output", "composite") == 4
    assert "output is the input" in capsys.readouterr().err
    assert run(clip, "-o", tmp_path / "o.xyz", "--model", NO_MODEL) == 2
    assert "cannot tell the output format" in capsys.readouterr().err
    assert not ray_started() and not any(p.name.startswith(".") for p in tmp_path.iterdir())


def test_an_output_claimed_by_a_live_run_is_refused_before_the_model_loads(clip, tmp_path, capsys):
    from pipeline.sinks.claim import OutputClaim

    claim = OutputClaim(tmp_path / "o.mov")  # as a live run holds it
    try:
        assert run(clip, "-o", tmp_path / "o.mov", "--model", NO_MODEL, "--overwrite") == 4
        assert f"being written by another run (pid {os.getpid()})" in capsys.readouterr().err
    finally:
        claim.release()


@pytest.mark.slow
def test_one_bad_input_among_many_is_reported_and_the_others_run(clip, tmp_path, capsys):
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video at all")
    report = tmp_path / "report.json"
    code = run(clip, tmp_path / "missing.mp4", broken, "-o", tmp_path / "out", *QUICK, "--report", report)
    err = capsys.readouterr().err
    assert code == 3 and "2 of 3 inputs failed" in err and "missing.mp4" in err and "broken.mp4" in err
    with av.open(str(tmp_path / "out" / "clip.mov")) as container:
        assert sum(1 for _ in container.decode(video=0)) == 3
    statuses = {os.path.basename(j["input"]): j["status"] for j in json.loads(report.read_text())["inputs"]}
    assert statuses == {"clip.mp4": "done", "missing.mp4": "failed", "broken.mp4": "failed"}


# --- one image in, one image out (issue 13) ---

@pytest.mark.slow
def test_one_still_image_writes_exactly_one_rgba_file_atomically(photo, tmp_path, capsys):
    out = tmp_path / "photo_rgba.png"
    assert run(photo, "-o", out, *QUICK) == 0
    rgba = cv2.imread(str(out), cv2.IMREAD_UNCHANGED)
    assert rgba.shape == (40, 56, 4)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["photo.jpg", "photo_rgba.png"]  # no partial, no lock
    before = out.read_bytes()
    assert run(photo, "-o", out, *QUICK) == 0 and out.read_bytes() == before  # exists: skipped
    assert run(photo, "-o", out, *QUICK, "--overwrite", "--output", "matte") == 0
    assert cv2.imread(str(out), cv2.IMREAD_UNCHANGED).shape == (40, 56)


@pytest.mark.slow
@pytest.mark.parametrize("name,output,channels", [("comp.jpg", "composite", 3), ("matte.tif", "matte", 1),
                                                   ("plate.exr", "rgba", 4), ("plate.dpx", "rgba", 4)])
def test_one_still_image_to_each_image_format(photo, tmp_path, name, output, channels):
    out = tmp_path / name
    assert run(photo, "-o", out, *QUICK, "--output", output) == 0
    with av.open(str(out)) as container:
        frame = next(container.decode(video=0))
    assert (frame.width, frame.height) == (56, 40)
    assert len(frame.format.components) == channels
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["photo.jpg", name])


def test_a_video_or_sequence_into_one_image_file_is_one_line(clip, photo, tmp_path, capsys):
    assert run(clip, "-o", tmp_path / "x.png", "--model", NO_MODEL) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "pattern such as plate.####.png or a folder" in err
    folder = tmp_path / "seq"
    folder.mkdir()
    cv2.imwrite(str(folder / "a_0001.png"), cv2.imread(str(photo)))
    assert run(folder, "-o", tmp_path / "y.jpg", "--model", NO_MODEL) == 2
    assert "pattern such as plate.####.jpg" in capsys.readouterr().err
    assert not (tmp_path / "x.png").exists() and not (tmp_path / "y.jpg").exists()
