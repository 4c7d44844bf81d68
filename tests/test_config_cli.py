"""Settings of `process`: presets, flags over presets, and one-line errors that name the key."""

from __future__ import annotations

import io
import json

import pytest

import run_pipeline
from birefnet.errors import ConfigError
from pipeline.config import CONFIGS_DIR, KEYS, ProcessConfig, build_config
from pipeline.jobs import plan_jobs
from pipeline.progress import Progress, RunSummary, format_summary, totals, write_report


def test_every_key_is_a_config_field():
    assert set(KEYS) == set(ProcessConfig.__dataclass_fields__)


@pytest.mark.parametrize("preset", sorted(p.stem for p in CONFIGS_DIR.glob("*.yaml")))
def test_bundled_presets_are_valid(preset):
    config = build_config({}, preset=preset)
    assert config != ProcessConfig()


def test_presets_that_the_issue_names_exist():
    names = {p.stem for p in CONFIGS_DIR.glob("*.yaml")}
    assert {"prores-hr-matting", "web-green-screen", "preview-lite", "cpu-test"} <= names


def test_flags_win_over_preset_and_preset_over_defaults(tmp_path):
    preset = tmp_path / "mine.yaml"
    preset.write_text("crf: 30\nbatch-size: 6\nresolution: 1024x576\ntemporal: flow\n")
    config = build_config({"crf": "18", "temporal": None, "workers": "3"}, preset=str(preset))
    assert config.crf == 18  # flag
    assert config.batch_size == 6 and config.resolution == (1024, 576) and config.temporal == "flow"  # preset
    assert config.workers == 3 and config.model == "hr-matting"  # flag, default


@pytest.mark.parametrize("flags, message", [
    ({"crf": "abc"}, "--crf: expected an integer, got 'abc'"),
    ({"crf": "99"}, "--crf: expected 0-63, got 99"),
    ({"resolution": "1000"}, "--resolution: sides must be positive multiples of 32, got 1000"),
    ({"resolution": "big"}, "--resolution: expected N, WxH or dynamic, got 'big'"),
    ({"output": "png"}, "--output: expected one of rgba, matte, composite, foreground, got 'png'"),
    ({"background": "#12345"}, "--background: expected '#RRGGBB', got '#12345'"),
    ({"batch_size": "0"}, "--batch-size: expected 1 or more, got 0"),
    ({"gpus_per_worker": "-1"}, "--gpus-per-worker: must be above 0"),
    ({"frames": "9:3"}, "--frames: empty frame range"),
    ({"crf": "20", "bitrate": "8M"}, "crf and bitrate: give one of them, not both"),
    ({"backend": "local", "workers": "2"}, "workers: the local backend runs one worker"),
])
def test_bad_flag_values_name_the_flag(flags, message):
    with pytest.raises(ConfigError) as info:
        build_config(flags)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_bad_preset_keys_and_values_name_key_and_file(tmp_path):
    preset = tmp_path / "bad.yaml"
    preset.write_text("model: lite\ncrff: 20\n")
    with pytest.raises(ConfigError, match=r"config .*bad\.yaml: unknown key 'crff'"):
        build_config({}, preset=str(preset))
    preset.write_text("temporal: sometimes\n")
    with pytest.raises(ConfigError, match=r"config key 'temporal' in .*bad\.yaml: expected one of off, ema, flow"):
        build_config({}, preset=str(preset))
    preset.write_text("crf: [1, 2\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml: not valid YAML \(line 2\)"):
        build_config({}, preset=str(preset))
    with pytest.raises(ConfigError, match="no such file or preset 'nope'.*cpu-test"):
        build_config({}, preset="nope")


def test_outputs_for_several_inputs_go_into_one_directory(tmp_path):
    out = tmp_path / "out"
    jobs = plan_jobs(["a/one.mp4", "b/two.mkv"], str(out), build_config({"output": "rgba"}))
    assert [j.output for j in jobs] == [str(out / "one.mov"), str(out / "two.mov")]
    jobs = plan_jobs(["a/one.mp4", "b/two.mkv"], str(out), build_config({"output": "composite"}))
    assert [j.output for j in jobs] == [str(out / "one.mp4"), str(out / "two.mp4")]
    jobs = plan_jobs(["a/one.mp4", "b/two.mkv"], str(out), build_config({"codec": "vp9"}))
    assert [j.output for j in jobs] == [str(out / "one.webm"), str(out / "two.webm")]
    single = plan_jobs(["a/one.mp4"], str(tmp_path / "x.webm"), build_config({}))
    assert [j.output for j in single] == [str(tmp_path / "x.webm")]
    with pytest.raises(ConfigError, match="would both write"):
        plan_jobs(["a/one.mp4", "b/one.mp4"], str(out), build_config({}))
    (tmp_path / "file.mov").write_bytes(b"")
    with pytest.raises(ConfigError, match="need an output directory"):
        plan_jobs(["a.mp4", "b.mp4"], str(tmp_path / "file.mov"), build_config({}))


def test_cli_errors_are_one_line_with_the_right_exit_code(tmp_path, capsys):
    out = str(tmp_path / "o.mov")
    assert run_pipeline.main(["process", "in.mp4", "-o", out, "--crf", "abc"]) == 2
    assert capsys.readouterr().err == "error: --crf: expected an integer, got 'abc'\n"
    assert run_pipeline.main(["process", "in.mp4", "-o", out, "--config", "missing-preset"]) == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_summary_and_report_carry_the_same_numbers(tmp_path):
    done = RunSummary("a.mp4", "a.mov", frames_in=50, frames_out=48, frames_bad=2, seconds=4.0,
                      stages={"decode": 1.0, "matting": 3.0, "temporal": 0.5, "composite": 0.2, "encode": 0.8})
    skipped = RunSummary("b.mp4", "b.mov", status="skipped")
    line = format_summary(done)
    assert "50 frames in, 48 out, 2 bad, 2 dropped; 4.0 s, 12.0 fps" in line and "matting 3.0s" in line
    assert "skipped" in format_summary(skipped) and "--overwrite" in format_summary(skipped)
    write_report(tmp_path / "r.json", [done, skipped])
    report = json.loads((tmp_path / "r.json").read_text())
    assert report == totals([done, skipped])
    assert (report["frames_in"], report["frames_out"], report["frames_bad"], report["fps"]) == (50, 48, 2, 12.0)
    assert report["stages"]["matting"] == 3.0 and report["seconds"] == 4.0 and report["skipped"] == ["b.mp4"]


def test_progress_prints_plain_lines_when_not_a_terminal():
    stream = io.StringIO()
    progress = Progress("clip.mp4", total=8, stream=stream, line_interval_s=0)
    progress.update(4, {"decode": 0.1, "matting": 0.95})
    progress.close()
    line = stream.getvalue().strip()
    assert line.startswith("clip.mp4: 4/8 frames (50%), ETA ") and line.endswith("busy decode 10% matting 95%")
    quiet = io.StringIO()
    Progress("clip.mp4", total=8, quiet=True, stream=quiet, line_interval_s=0).update(4, {})
    assert quiet.getvalue() == ""
