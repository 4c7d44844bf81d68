"""ONNX export (dynamic and static shapes, fp32 and int8) and the onnx/tensorrt runtimes.

Exports are real: the demo model and a random-weight lite model go through torch.onnx.export and are run
by ONNX Runtime on the CPU, compared with PyTorch on the same normalised frames. Each export costs tens of
seconds on two cores, so the dynamic demo export is made once for the module (through the on-demand
cache, which ``--runtime onnx`` then finds) and the rest are marked slow.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import run_pipeline
from birefnet import CheckpointError, ConfigError, InputError, Predictor, build_model
from birefnet.export.cache import CACHE_ENV, cached_export
from birefnet.runtimes import RUNTIMES
from birefnet.upsampling import UPSAMPLING_MODES
from pipeline.settings.common import RUNTIMES as SETTINGS_RUNTIMES
from pipeline.settings.common import UPSAMPLING_MODES as SETTINGS_UPSAMPLING
from tests.clips import decode_video, make_clip

onnx = pytest.importorskip("onnx", reason="the onnx extra is not installed (pip install 'birefnet-video[onnx]')")
ort = pytest.importorskip("onnxruntime", reason="the onnx extra is not installed (pip install 'birefnet-video[onnx]')")

from birefnet.export.metadata import FORMAT, INPUT_NAME, OUTPUT_NAME, read_metadata  # noqa: E402
from birefnet.export.to_onnx import ExportOptions, export_onnx  # noqa: E402
from birefnet.runtimes.onnx_runtime import OnnxRuntime  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
CPU = torch.device("cpu")


def normalised(frames: np.ndarray) -> torch.Tensor:
    x = torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 255.0
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    return (x - mean) / std


def max_logit_error(model: torch.nn.Module, path: Path, batch: int, width: int, height: int, seed: int = 0) -> float:
    frames = np.random.default_rng(seed).integers(0, 256, (batch, height, width, 3), dtype=np.uint8)
    x = normalised(frames)
    with torch.inference_mode():
        expected = model.eval()(x)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run([OUTPUT_NAME], {INPUT_NAME: x.numpy()})[0]
    assert got.shape == (batch, 1, height, width)
    return float(np.abs(got - expected.numpy()).max())


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """A private export cache for the module, seen by in-process runs and by CLI subprocesses."""
    folder = tmp_path_factory.mktemp("onnx-cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(CACHE_ENV, str(folder))
        yield folder


@pytest.fixture(scope="module")
def demo_dynamic(cache) -> Path:
    """The demo model exported with dynamic batch and size, as ``--runtime onnx`` makes it on first use."""
    return cached_export("demo", "fp32")


def test_runtime_and_upsampling_names_agree():
    assert SETTINGS_RUNTIMES == RUNTIMES
    assert SETTINGS_UPSAMPLING == UPSAMPLING_MODES


def test_dynamic_export_runs_at_sizes_and_batches_it_was_not_exported_at(demo_dynamic):
    from birefnet.weights import load_model

    model = load_model("demo")
    for batch, width, height in ((3, 160, 96), (1, 96, 160), (2, 32, 32)):
        assert max_logit_error(model, demo_dynamic, batch, width, height) < 1e-3


def test_metadata_names_variant_resolution_and_normalisation(demo_dynamic):
    graph = onnx.load(str(demo_dynamic))
    assert [i.name for i in graph.graph.input] == [INPUT_NAME] and [o.name for o in graph.graph.output] == [OUTPUT_NAME]
    assert graph.opset_import[0].version >= 17
    props = {p.key: p.value for p in graph.metadata_props}
    assert props["birefnet_video.format"] == FORMAT
    assert props["variant"] == "demo" and props["resolution"] == "dynamic" and props["batch"] == "dynamic"
    assert "0.485" in props["normalisation"] and "0.229" in props["normalisation"]
    meta = read_metadata(demo_dynamic)
    assert (meta.variant, meta.variant_resolution, meta.dynamic_base) == ("demo", (288, 288), 256)
    assert meta.resolution is None and meta.batch is None and meta.precision == "fp32"


def test_onnx_predictor_matches_torch_predictor(demo_dynamic):
    frames = np.random.default_rng(1).integers(0, 256, (3, 50, 70, 3), dtype=np.uint8)
    on_onnx = Predictor(str(demo_dynamic), device="cpu", resolution=64)
    assert on_onnx.runtime.name == "onnx" and on_onnx.model is None
    on_torch = Predictor("demo", device="cpu", resolution=64)
    np.testing.assert_allclose(on_onnx.predict(frames), on_torch.predict(frames), atol=1e-4)
    tensor_alpha = on_onnx.predict(torch.from_numpy(frames))
    assert isinstance(tensor_alpha, torch.Tensor) and tensor_alpha.device == on_onnx.device
    # the default resolution of an .onnx file comes from its metadata: the variant's own
    assert Predictor(str(demo_dynamic), device="cpu").resolution == (288, 288)


def test_process_runtime_onnx_matches_runtime_torch(demo_dynamic, tmp_path, capsys):
    clip = make_clip(tmp_path / "clip.mp4", width=80, height=48, frames=6)
    outputs = {}
    for runtime in ("torch", "onnx"):
        out = tmp_path / f"{runtime}.mkv"
        code = run_pipeline.main(["process", str(clip), "-o", str(out), "--model", "demo", "--runtime", runtime,
                                  "--resolution", "64", "--backend", "local", "--device", "cpu", "--output", "matte",
                                  "--temporal", "off", "--quiet"])
        assert code == 0, capsys.readouterr().err
        outputs[runtime] = decode_video(out, format="gray")[0].astype(int)
    assert outputs["onnx"].shape == (6, 48, 80)
    assert np.abs(outputs["onnx"] - outputs["torch"]).max() <= 1
    assert "exporting" not in capsys.readouterr().err  # the module's export was found in the cache


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: "), err
    return err


def test_an_onnx_file_that_is_not_ours_is_one_line(tmp_path, capsys):
    from onnx import TensorProto, helper

    foreign = tmp_path / "foreign.onnx"
    node = helper.make_node("Identity", ["x"], ["y"])
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
    onnx.save(helper.make_model(graph), str(foreign))
    with pytest.raises(CheckpointError, match="not a birefnet-video export"):
        Predictor(str(foreign), device="cpu")
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"not a protobuf at all \xff\xfe")
    with pytest.raises(CheckpointError, match="not a readable ONNX model"):
        Predictor(str(garbage), device="cpu")
    clip = make_clip(tmp_path / "clip.mp4", frames=2)
    assert run_pipeline.main(["process", str(clip), "-o", str(tmp_path / "o.mkv"), "--model", str(foreign),
                              "--backend", "local", "--device", "cpu"]) == CheckpointError.exit_code
    assert "not a birefnet-video export" in one_error_line(capsys)


def test_torch_runtime_refuses_an_onnx_file_and_tensorrt_needs_its_provider(demo_dynamic, capsys):
    with pytest.raises(ConfigError, match="is an ONNX export; run it with runtime onnx"):
        Predictor(str(demo_dynamic), device="cpu", runtime="torch")
    with pytest.raises(ConfigError, match=r"runtime tensorrt needs .*birefnet-video\[tensorrt\]"):
        Predictor(str(demo_dynamic), device="cpu", runtime="tensorrt")
    assert run_pipeline.main(["webcam", "--model", "demo", "--runtime", "tensorrt", "--device", "cpu",
                              "--display", "none"]) == ConfigError.exit_code
    assert "tensorrt needs a CUDA GPU" in one_error_line(capsys)
    with pytest.raises(ConfigError, match="holds an fp32 graph"):
        Predictor(str(demo_dynamic), device="cpu", precision="fp16")


def test_a_missing_onnxruntime_is_one_line_naming_the_extra(tmp_path):
    clip = make_clip(tmp_path / "clip.mp4", frames=2)
    blocked = ("import sys; sys.modules['onnxruntime'] = None; sys.modules['onnx'] = None; import run_pipeline; "
               "sys.exit(run_pipeline.main(sys.argv[1:]))")
    runs = {
        "process": ["process", str(clip), "-o", str(tmp_path / "o.mkv"), "--model", "demo", "--runtime", "onnx",
                    "--backend", "local", "--device", "cpu"],
        "export": ["export", "--model", "demo", "-o", str(tmp_path / "demo.onnx")],
    }
    for args in runs.values():
        done = subprocess.run([sys.executable, "-c", blocked, *args], cwd=ROOT, capture_output=True, text=True,
                              timeout=300)
        assert done.returncode == ConfigError.exit_code, done.stderr
        assert done.stderr.count("\n") == 1 and "pip install 'birefnet-video[onnx]'" in done.stderr, done.stderr
        assert not (tmp_path / "demo.onnx").exists()


@pytest.mark.slow
def test_cli_static_export_of_demo_at_two_sizes_checks_itself_and_refuses_other_sizes(tmp_path, capsys):
    from birefnet.weights import load_model

    model = load_model("demo")
    square = tmp_path / "demo64.onnx"
    assert run_pipeline.main(["export", "--model", "demo", "-o", str(square), "--resolution", "64",
                              "--batch", "2"]) == 0
    out = capsys.readouterr().out
    verified = [line for line in out.splitlines() if line.startswith("verified: ONNX Runtime vs PyTorch")]
    assert len(verified) == 1 and "(limit 1e-03)" in verified[0] and "64x64" in verified[0]
    assert max_logit_error(model, square, 2, 64, 64) < 1e-3
    meta = read_metadata(square)
    assert (meta.resolution, meta.batch) == ((64, 64), 2)

    # a static batch of 2 takes any number of frames through the Predictor (the last call is filled up)
    frames = np.random.default_rng(2).integers(0, 256, (3, 40, 50, 3), dtype=np.uint8)
    np.testing.assert_allclose(Predictor(str(square), device="cpu").predict(frames),
                               Predictor("demo", device="cpu", resolution=64).predict(frames), atol=1e-4)
    # the wrong input size for a static export: one line from the Predictor, the runtime and the CLI
    with pytest.raises(ConfigError, match="static export at 64x64"):
        Predictor(str(square), device="cpu", resolution=96)
    with pytest.raises(InputError, match="static export at 64x64 and cannot take 96x64"):
        OnnxRuntime(square, CPU)(torch.zeros(2, 3, 64, 96))
    clip = make_clip(tmp_path / "clip.mp4", frames=2)
    assert run_pipeline.main(["process", str(clip), "-o", str(tmp_path / "o.mkv"), "--model", str(square),
                              "--resolution", "96", "--backend", "local", "--device", "cpu"]) == ConfigError.exit_code
    assert "static export at 64x64" in one_error_line(capsys)
    before = square.stat().st_mtime_ns, square.read_bytes()
    assert run_pipeline.main(["export", "--model", "demo", "-o", str(square)]) == 0  # kept, as `process` keeps
    assert "skipped" in capsys.readouterr().out and (square.stat().st_mtime_ns, square.read_bytes()) == before


@pytest.mark.slow
def test_int8_export_at_a_second_static_size_is_verified_and_reports_its_accuracy_cost(tmp_path, capsys):
    path = tmp_path / "demo-int8.onnx"
    assert run_pipeline.main(["export", "--model", "demo", "-o", str(path), "--resolution", "96x64",
                              "--quantize", "int8", "--quiet"]) == 0
    lines = capsys.readouterr().out.splitlines()
    # the fp32 graph is checked before it is quantised: within 1e-3 of PyTorch at this second size
    assert lines[0].startswith("verified: ONNX Runtime vs PyTorch") and "96x64" in lines[0]
    cost = [line for line in lines if line.startswith("int8 cost: alpha MAD vs fp32")]
    assert len(cost) == 1 and "generated frames" in cost[0] and "synthetic matting scenes" in cost[0]
    meta = read_metadata(path)
    assert meta.quantization == "int8" and meta.precision == "fp32"
    graph = onnx.load(str(path))
    assert any(node.op_type in ("MatMulInteger", "DynamicQuantizeLinear") for node in graph.graph.node)
    # every weight product is int8, and no fp32 copy of a quantised weight stays behind an Identity
    weights = {t.name for t in graph.graph.initializer if t.data_type == onnx.TensorProto.FLOAT}
    assert not [n.name for n in graph.graph.node if n.op_type == "MatMul" and set(n.input) & weights]
    assert not [n.name for n in graph.graph.node if n.op_type == "Identity" and set(n.input) & weights]
    frames = np.random.default_rng(3).integers(0, 256, (2, 64, 96, 3), dtype=np.uint8)
    int8 = Predictor(str(path), device="cpu").predict(frames)
    fp32 = Predictor("demo", device="cpu", resolution="96x64").predict(frames)
    assert np.abs(int8 - fp32).mean() < 0.05  # close, not equal: int8 weights


@pytest.mark.slow
def test_random_weight_lite_dynamic_export_matches_torch_at_four_sizes(tmp_path):
    """One export (each lite export costs about a minute here), checked at two sizes by the export
    itself and at two more, with other batches, by ONNX Runtime here."""
    torch.manual_seed(0)
    model = build_model("lite")
    dynamic = export_onnx(model, None, tmp_path / "lite.onnx", ExportOptions())
    assert dynamic.verification is not None and dynamic.verification.passed
    assert dynamic.verification.sizes == ((256, 256), (320, 192))
    for batch, width, height in ((2, 160, 96), (1, 64, 128)):
        assert max_logit_error(model, dynamic.path, batch, width, height) < 1e-3
    assert read_metadata(dynamic.path).backbone == "swin_v1_t"


@pytest.mark.slow
def test_gpu_check_smoke_runs_every_section_on_the_cpu(tmp_path):
    from benchmarks.gpu_check import SECTIONS, main

    report = tmp_path / "smoke.md"
    assert main(["--smoke", "-o", str(report)]) == 0
    text = report.read_text()
    for title in SECTIONS:
        assert f"## {title}\n\n| " in text, title  # every section ran and wrote its table
    assert "n/a: runtime tensorrt needs" in text and "CPUExecutionProvider" in text


@pytest.mark.slow
def test_random_weight_lite_static_export_matches_torch_and_keeps_its_size(tmp_path):
    """The lite architecture (Swin-T) exported at a fixed size, batch 1: logits within 1e-3 of PyTorch, and
    the file states the size it takes, width before height (a non-square size, so an order swapped shows;
    a square one was a second export of ~20 s that checked nothing more)."""
    size = (96, 64)
    torch.manual_seed(1)
    model = build_model("lite")
    static = export_onnx(model, None, tmp_path / "lite_static.onnx", ExportOptions(resolution=size, batch=1))
    assert static.verification is not None and static.verification.passed
    assert max_logit_error(model, static.path, 1, *size, seed=3) < 1e-3
    assert read_metadata(static.path).resolution == size
