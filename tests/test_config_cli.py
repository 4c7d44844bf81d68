"""Settings of every command: presets, flags over presets, one-line errors that name the key."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from dataclasses import fields
from pathlib import Path

import pytest

import run_pipeline
from birefnet.errors import ConfigError
from pipeline.jobs import plan_jobs
from pipeline.progress import Progress, RunSummary, format_summary, totals, write_report
from pipeline.settings.demo import DEMO_SETTINGS, DemoSettings
from pipeline.settings.models import MODELS_SETTINGS
from pipeline.settings.presets import bundled_presets, presets_dir
from pipeline.settings.process import KEYS, PROCESS_SETTINGS, ProcessConfig, build_config
from pipeline.settings.table import flag_name
from pipeline.settings.webcam import WEBCAM_SETTINGS, WebcamSettings

ROOT = Path(__file__).resolve().parent.parent
TABLES = {t.command: t for t in (PROCESS_SETTINGS, DEMO_SETTINGS, WEBCAM_SETTINGS, MODELS_SETTINGS)}


def test_every_key_is_a_config_field():
    assert set(KEYS) == set(ProcessConfig.__dataclass_fields__)
    assert set(DEMO_SETTINGS.keys) == {f.name for f in fields(DemoSettings)}
    assert set(WEBCAM_SETTINGS.keys) == {f.name for f in fields(WebcamSettings)}


def test_presets_are_the_configs_folder_of_the_checkout():
    assert presets_dir() == ROOT / "configs"


@pytest.mark.parametrize("preset", sorted(bundled_presets(PROCESS_SETTINGS.command)))
def test_bundled_presets_are_valid(preset):
    config = build_config({}, preset=preset)
    assert config != ProcessConfig()


@pytest.mark.parametrize("preset", sorted(bundled_presets()))
def test_every_bundled_preset_names_its_command_and_parses(preset):
    import yaml

    command = yaml.safe_load((presets_dir() / f"{preset}.yaml").read_text())["command"]
    if command == "train":  # a run directory is always given with -o; tests/test_train.py trains from the preset
        from pipeline.settings.train import TRAIN_SETTINGS

        assert TRAIN_SETTINGS.values({"output": "run"}, preset)["data"] == "synthetic"
    elif command == "export":  # the file written is always given with -o
        from pipeline.settings.export import EXPORT_SETTINGS

        assert EXPORT_SETTINGS.values({"output": "m.onnx"}, preset)["model"] == "lite"
    else:
        assert TABLES[command].values({}, preset)


def test_every_command_has_a_bundled_preset_but_models():
    commands = {command for command in ("process", "demo", "webcam", "train", "models", "export")
                if bundled_presets(command)}
    assert commands == {"process", "demo", "webcam", "train", "export"}


def test_presets_that_the_issue_names_exist():
    names = set(bundled_presets("process"))
    assert {"prores-hr-matting", "web-green-screen", "preview-lite", "cpu-test"} <= names


def test_a_preset_of_another_command_is_a_one_line_error(capsys):
    assert run_pipeline.main(["webcam", "--config", "cpu-test", "--display", "none"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "a preset for `process`, not for `webcam`" in err
    with pytest.raises(ConfigError, match="a preset for `webcam`, not for `process`"):
        build_config({}, preset="webcam-browser")


def test_a_user_preset_without_a_command_serves_the_command_that_reads_it(tmp_path):
    preset = tmp_path / "mine.yaml"
    preset.write_text("temporal: off\nquiet: true\n")
    assert build_config({}, preset=str(preset)).temporal == "off"
    assert WEBCAM_SETTINGS.values({}, str(preset)) == {"temporal": "off", "quiet": True}


def test_flags_are_the_yaml_keys_in_every_command():
    parser = run_pipeline.build_parser()
    commands = parser._subparsers._group_actions[0].choices
    from pipeline.settings.train import TRAIN_SETTINGS

    for table in [*TABLES.values(), TRAIN_SETTINGS]:
        options = {s for action in commands[table.command]._actions for s in action.option_strings}
        assert {flag_name(key) for key in table.keys} | {"--config"} <= options, table.command
    # one name per idea: the same flag for the same setting in every command that has it
    for shared in ("--model", "--device", "--precision", "--temporal", "--quiet", "--overwrite", "--report"):
        having = [c for c, sub in commands.items() if shared in {s for a in sub._actions for s in a.option_strings}]
        assert len(having) >= 2, shared
    assert "--smoothing" not in {s for a in commands["webcam"]._actions for s in a.option_strings}


def test_help_imports_no_torch():
    code = ("import sys, contextlib, io, run_pipeline\n"
            "for argv in (['--help'], *([c, '--help'] for c in ('process', 'demo', 'webcam', 'train', 'models'))):\n"
            "    with contextlib.suppress(SystemExit), contextlib.redirect_stdout(io.StringIO()):\n"
            "        run_pipeline.main(argv)\n"
            "print('torch' in sys.modules)\n")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


def test_settings_for_the_other_stages_parse():
    config = build_config({"sequence_fps": "30000/1001", "background_fit": "stretch", "light_wrap": "0.4",
                           "blur_radius": "6"})
    assert (config.sequence_fps.numerator, config.sequence_fps.denominator) == (30000, 1001)
    assert (config.background_fit, config.light_wrap, config.blur_radius) == ("stretch", 0.4, 6.0)
    assert build_config({}).sequence_fps == 25 and build_config({}).blur_radius is None
    webcam = WEBCAM_SETTINGS.values({"resolution": "256", "colour": "#00ff80", "temporal": "off"})
    assert webcam == {"resolution": (256, 256), "colour": (0, 255, 128), "temporal": "off"}
    assert WEBCAM_SETTINGS.values({"resolution": "auto"}) == {"resolution": None}
    assert DEMO_SETTINGS.values({"size": "96x64", "length": "4"}) == {"size": (96, 64), "length": 4}


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
    ({"output": "png"}, "--output: expected one of rgba, matte, composite, foreground, picture+matte, got 'png'"),
    ({"background": "#12345"}, "--background: expected '#RRGGBB', got '#12345'"),
    ({"batch_size": "0"}, "--batch-size: expected 1 or more, got 0"),
    ({"gpus_per_worker": "-1"}, "--gpus-per-worker: must be above 0"),
    ({"frames": "9:3"}, "--frames: empty frame range"),
    ({"sequence_fps": "0"}, "--sequence-fps: must be above 0"),
    ({"light_wrap": "2"}, "--light-wrap: expected 0-1, got '2'"),
    ({"background_fit": "crop"}, "--background-fit: expected one of fill, fit, stretch, got 'crop'"),
    ({"upsample": "bicubic"}, "--upsample: expected one of guided, bilinear, got 'bicubic'"),
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
    preset.write_text("- a list\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml: expected a mapping"):
        build_config({}, preset=str(preset))


@pytest.mark.parametrize("argv, message", [
    (["demo", "--length", "1"], "error: --length: expected 2 or more, got 1"),
    (["demo", "--size", "33x64"], "error: --size: 33x64: width and height must be even and at least 32"),
    (["webcam", "--port", "70000"], "error: --port: expected 0-65535, got 70000"),
    (["webcam", "--colour", "blue"], "error: --colour: expected #rrggbb, got 'blue'"),
    (["webcam", "--resolution", "dynamic"], "error: --resolution: expected N, WxH or auto, got 'dynamic'"),
    (["webcam", "--duration", "0"], "error: --duration: must be above 0, got '0'"),
    (["webcam", "--upsample", "nearest"], "error: --upsample: expected one of guided, bilinear, got 'nearest'"),
    (["train", "-o", "run"], "error: train: --data required (as a flag or a preset key)"),
    (["train", "--data", "synthetic", "-o", "run", "--synthetic-scale", "2", "1"],
     "error: --synthetic-scale: expected 1 <= LOW <= HIGH, got 2 1"),
])
def test_every_command_reports_bad_values_in_one_line(argv, message, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert run_pipeline.main(argv) == 2
    assert capsys.readouterr().err == message + "\n"
    assert not any(tmp_path.iterdir())


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


def test_a_run_stopped_before_its_jobs_still_writes_its_report(tmp_path, monkeypatch, capsys):
    """Planning refused (two inputs, one output file), or Ctrl-C while torch is imported: the report says
    so, every input not run."""
    report = tmp_path / "r.json"
    args = ["process", "a.mp4", "b.mp4", "-o", str(tmp_path / "one.mov"), "--report", str(report)]
    assert run_pipeline.main(args) == 2
    written = json.loads(report.read_text())
    assert written["status"] == "failed" and "need an output directory" in written["error"]
    assert [(i["input"], i["status"]) for i in written["inputs"]] == [("a.mp4", "not run"), ("b.mp4", "not run")]

    def interrupted(*_):
        raise KeyboardInterrupt

    monkeypatch.setattr("pipeline.jobs.plan_jobs", interrupted)
    assert run_pipeline.main(["process", "a.mp4", "-o", str(tmp_path / "a.mov"), "--report", str(report)]) == 130
    written = json.loads(report.read_text())
    assert (written["status"], written["error"], written["inputs"][0]["status"]) == ("interrupted", None, "not run")
    assert capsys.readouterr().err.endswith("interrupted\n")


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
    # lines every 60 s: the last one comes at the close, with the frames since; no busy figures, no 'busy'
    slow = io.StringIO()
    progress = Progress("archive (2 units)", total=8, stream=slow, line_interval_s=60)
    for _ in range(4):
        progress.update(2, {})
    progress.close()
    assert slow.getvalue().splitlines()[-1].startswith("archive (2 units): 8/8 frames (100%), ETA 0 s, ")
    assert "busy" not in slow.getvalue()


def _video_rate_and_frames(path: Path):
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        return stream.average_rate, [f.to_ndarray(format="rgb24") for f in container.decode(stream)]


@pytest.mark.slow
def test_sequence_fps_and_compositor_flags_reach_the_pipeline(tmp_path, capsys):
    """An image sequence is read at --sequence-fps; --light-wrap and --blur-radius change the composite."""
    import numpy as np

    from tests.clips import make_image_sequence

    folder = make_image_sequence(tmp_path / "seq", frames=3)
    run = ["process", str(folder), "--config", "cpu-test", "--quiet", "--output", "composite", "--background", "blur"]
    assert run_pipeline.main([*run, "-o", str(tmp_path / "plain.mp4"), "--sequence-fps", "30"]) == 0
    assert run_pipeline.main([*run, "-o", str(tmp_path / "styled.mp4"), "--light-wrap", "1", "--blur-radius", "2"]) == 0
    assert capsys.readouterr().err == ""
    rate, plain = _video_rate_and_frames(tmp_path / "plain.mp4")
    default_rate, styled = _video_rate_and_frames(tmp_path / "styled.mp4")
    assert (rate, default_rate) == (30, 25) and len(plain) == len(styled) == 3
    assert not np.array_equal(np.stack(plain), np.stack(styled))


def test_quiet_silences_the_runs_notes_but_not_its_errors(tmp_path, capsys, caplog):
    """A created output directory and an option the codec ignores are notes: logged normally, not under
    --quiet; a warning about the data and an error still are."""
    from tests.clips import make_image_sequence

    folder = make_image_sequence(tmp_path / "seq", frames=2, width=32, height=32)
    run = ["process", str(folder), "--config", "cpu-test", "--output", "matte", "--codec", "ffv1",
           "--exr-depth", "float"]
    assert run_pipeline.main([*run, "-o", str(tmp_path / "loud" / "matte.mkv")]) == 0
    assert "created output directory" in caplog.text and "no effect on ffv1" in caplog.text
    caplog.clear()
    assert run_pipeline.main([*run, "-o", str(tmp_path / "quiet" / "matte.mkv"), "--quiet"]) == 0
    assert caplog.text == "" and (tmp_path / "quiet" / "matte.mkv").is_file()
    (tmp_path / "odd").mkdir()
    odd = make_image_sequence(tmp_path / "odd" / "seq", frames=2, width=33, height=32)
    assert run_pipeline.main(["process", str(odd), "--config", "cpu-test", "--output", "matte", "--codec", "h264",
                              "-o", str(tmp_path / "odd" / "matte.mp4"), "--quiet"]) == 0
    assert "padded" in caplog.text
    capsys.readouterr()
    missing = ["process", str(tmp_path / "missing.mp4"), "--config", "cpu-test", "--quiet"]
    assert run_pipeline.main([*missing, "-o", str(tmp_path / "never.mkv")]) != 0
    assert "missing.mp4" in capsys.readouterr().err
