"""Training: loss goes down, resume is exact, checkpoints load in the predictor, bad data is reported."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import torch

from birefnet import Predictor
from birefnet.errors import ConfigError, InputError, OutputError
from birefnet.train.data import check_pairs, find_pairs
from birefnet.train.loop import BEST_WEIGHTS, LAST_WEIGHTS, LOG_FILE, STATE_FILE, TrainConfig, Trainer
from birefnet.train.losses import LOSS_PRESETS, BiRefNetLoss, ssim_loss
from birefnet.train.metrics import pair_metrics
from run_pipeline import main

SIZE = 64


def _write_dataset(root, count: int = 4, size: int = SIZE, sixteen_bit: bool = False):
    """Discs of varying position over seeded noise; gt as an 8- or 16-bit soft-edged matte."""
    (root / "im").mkdir(parents=True)
    (root / "gt").mkdir()
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:size, 0:size]
    for i in range(count):
        cy, cx = rng.uniform(0.3, 0.7, 2) * size
        alpha = np.clip((size * 0.25 - np.hypot(yy - cy, xx - cx)) / 2 + 0.5, 0, 1)
        background = rng.integers(0, 120, (size, size, 3)).astype(np.float32)
        image = alpha[..., None] * np.array([230, 200, 60]) + (1 - alpha[..., None]) * background
        cv2.imwrite(str(root / "im" / f"{i:03d}.jpg"), image.astype(np.uint8)[..., ::-1])
        gt = (alpha * 65535).astype(np.uint16) if sixteen_bit else (alpha * 255).astype(np.uint8)
        cv2.imwrite(str(root / "gt" / f"{i:03d}.png"), gt)
    return root


def _config(output, **changes) -> TrainConfig:
    base = dict(output=str(output), size=SIZE, val_size=SIZE, batch_size=2, epochs=1, synthetic_samples=8,
                val_samples=2, lr=1e-3, quiet=True, loader_workers=0, device="cpu")
    base.update(changes)
    return TrainConfig(**base)


def _batch_loss(trainer: Trainer, images: torch.Tensor, alphas: torch.Tensor) -> float:
    torch.manual_seed(123)  # same dropout masks for both measurements
    with torch.no_grad():
        x = trainer._normalise(images)
        loss, _ = trainer.loss(trainer.model.forward_train(x), alphas, x)
    return float(loss)


@pytest.mark.slow
def test_a_few_steps_on_a_tiny_dataset_lower_the_loss(tmp_path):
    data = _write_dataset(tmp_path / "data", sixteen_bit=True)
    config = _config(tmp_path / "run", data=str(data), epochs=6, crop_scale=(1.0, 1.0), jitter=0.0,
                     background_prob=0.0, batch_size=4, loss_weights="bce=30", lr=3e-3, schedule="constant")
    trainer = Trainer(config)
    images, alphas = next(iter(trainer._loader(trainer.train_set, [[0, 1, 2, 3]])))
    before = _batch_loss(trainer, images, alphas)
    trainer.fit()
    after = _batch_loss(trainer, images, alphas)
    assert after < 0.85 * before, (before, after)
    records = [json.loads(line) for line in (tmp_path / "run" / LOG_FILE).read_text().splitlines()]
    assert [r["epoch"] for r in records] == [1, 2, 3, 4, 5, 6]
    assert records[-1]["val"] is None and records[-1]["best_by"] == "train_loss"


@pytest.mark.slow
def test_resume_takes_the_same_next_step(tmp_path):
    config = _config(tmp_path / "run", synthetic_samples=8)  # 4 steps per epoch
    first = Trainer(config)
    first.fit(until_step=2)
    first.save_state()
    first.fit(until_step=3)
    expected = {k: v.clone() for k, v in first.model.state_dict().items()}

    resumed = Trainer(_config(tmp_path / "run", synthetic_samples=8, resume=True))
    assert (resumed.step, resumed.batch_in_epoch) == (2, 2)
    resumed.fit(until_step=3)
    for name, value in resumed.model.state_dict().items():
        assert torch.equal(value, expected[name]), name


@pytest.mark.slow
def test_resume_without_a_run_is_refused_not_started_afresh(tmp_path):
    with pytest.raises(OutputError, match="holds no run to resume"):
        Trainer(_config(tmp_path / "typo", synthetic_samples=8, resume=True))
    assert not (tmp_path / "typo").exists()


def test_weight_ema_is_validated_published_and_resumed(tmp_path):
    config = _config(tmp_path / "run", synthetic_samples=8, ema_decay=0.5)  # 4 steps per epoch
    trainer = Trainer(config)
    raw = []
    for step in (1, 2, 3):
        trainer.fit(until_step=step)
        raw.append({k: v.clone() for k, v in trainer.model.state_dict().items()})
    trainer.save_state()
    published = trainer.published_model.state_dict()
    name = "decoder.conv_out1.0.weight"
    expected = 0.25 * raw[0][name] + 0.25 * raw[1][name] + 0.5 * raw[2][name]  # first update copies
    torch.testing.assert_close(published[name], expected)
    assert not torch.equal(published[name], raw[2][name])

    record = trainer.fit()  # the epoch ends: validation and the checkpoints use the average
    saved = Predictor(str(tmp_path / "run" / LAST_WEIGHTS), device="cpu", resolution=SIZE).model.state_dict()
    torch.testing.assert_close(saved[name], trainer.published_model.state_dict()[name])
    assert record["val"] is not None

    resumed = Trainer(_config(tmp_path / "run", synthetic_samples=8, ema_decay=0.5, resume=True))
    torch.testing.assert_close(resumed.published_model.state_dict()[name], trainer.published_model.state_dict()[name])
    with pytest.raises(ConfigError, match="ema-decay"):
        Trainer(_config(tmp_path / "run", synthetic_samples=8, resume=True))


@pytest.mark.slow
def test_saved_checkpoints_load_in_the_predictor(tmp_path):
    config = _config(tmp_path / "run", synthetic_samples=4, save_dtype="fp16")
    trainer = Trainer(config)
    record = trainer.fit()
    run = tmp_path / "run"
    assert {p.name for p in run.iterdir()} >= {BEST_WEIGHTS, LAST_WEIGHTS, STATE_FILE, LOG_FILE}
    assert set(record["val"]) == {"mae", "s_measure", "weighted_f", "sad", "mse", "grad"}

    frames = np.random.default_rng(1).integers(0, 256, (2, SIZE, SIZE, 3), dtype=np.uint8)
    predictor = Predictor(str(run / BEST_WEIGHTS), device="cpu", resolution=SIZE)
    alpha = predictor.predict(frames)
    assert alpha.shape == (2, SIZE, SIZE) and alpha.dtype == np.float32
    reference = Predictor.from_model(trainer.model.float().eval(), device="cpu", resolution=SIZE).predict(frames)
    np.testing.assert_allclose(alpha, reference, atol=2e-2)  # weights were saved in fp16


def test_an_existing_run_needs_resume_or_overwrite(tmp_path):
    Trainer(_config(tmp_path / "run", synthetic_samples=2)).fit()
    with pytest.raises(OutputError, match="--resume"):
        Trainer(_config(tmp_path / "run", synthetic_samples=2))


def test_bad_datasets_are_reported_in_one_error(tmp_path):
    data = _write_dataset(tmp_path / "data", count=4)
    (data / "gt" / "001.png").unlink()
    (data / "im" / "002.jpg").write_bytes(b"not an image")
    cv2.imwrite(str(data / "gt" / "003.png"), np.zeros((SIZE, SIZE // 2), np.uint8))
    (data / "gt" / "orphan.png").write_bytes((data / "gt" / "000.png").read_bytes())

    with pytest.raises(InputError) as missing:
        find_pairs(data)
    assert "001.jpg has no ground truth" in str(missing.value) and "orphan.png has no image" in str(missing.value)

    (data / "gt" / "orphan.png").unlink()
    cv2.imwrite(str(data / "gt" / "001.png"), np.zeros((SIZE, SIZE), np.uint8))
    with pytest.raises(InputError) as bad:
        check_pairs(find_pairs(data))
    message = str(bad.value)
    assert "2 problem(s)" in message and "cannot read image" in message and "002.jpg" in message
    assert f"003.jpg is {SIZE}x{SIZE} but its ground truth 003.png is {SIZE // 2}x{SIZE}" in message

    listed = tmp_path / "pairs.txt"
    listed.write_text("data/im/000.jpg data/gt/000.png\ndata/im/404.jpg data/gt/000.png\n")
    with pytest.raises(InputError, match="line 2: .*404.jpg not found"):
        find_pairs(listed)


def test_train_command_reports_bad_data_in_one_line(tmp_path, capsys):
    code = main(["train", "--data", str(tmp_path / "nowhere"), "-o", str(tmp_path / "run"), "--quiet"])
    assert code == InputError.exit_code
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: dataset") and "does not exist" in err and "\n" not in err


def test_synthetic_render_scale_sets_how_fine_the_strands_are(tmp_path):
    from birefnet.train.augment import AugmentConfig, Augmenter
    from birefnet.train.synthetic_data import SyntheticMattingDataset

    # no crop, jitter or flip: a scene rendered larger and taken down to the crop has finer strands, so
    # its partial-coverage pixels are fainter on average
    augmenter = Augmenter(AugmentConfig((SIZE, SIZE), (1.0, 1.0), False, 0.0, 0.0))
    for samples in (augmenter, None):  # training, then validation (frames of one held-out scene)
        faintness = {}
        for scale in ((1.0, 1.0), (3.0, 3.0)):
            data = SyntheticMattingDataset(3, 16, (SIZE, SIZE), samples, scale)
            alphas = torch.stack([data[i][1] for i in range(16)])
            faintness[scale] = float(alphas[(alphas > 0.02) & (alphas < 0.98)].mean())
        assert faintness[(3.0, 3.0)] < 0.85 * faintness[(1.0, 1.0)], (samples, faintness)
    with pytest.raises(ConfigError, match="synthetic-scale"):
        _config(tmp_path / "run", synthetic_scale=(0.5, 2.0)).validate()


def test_loss_presets_and_overrides():
    assert LOSS_PRESETS["matting"].mae > 0 and LOSS_PRESETS["matting"].bce == 0
    assert LOSS_PRESETS["general"].bce > 0 and LOSS_PRESETS["general"].iou > 0
    assert LOSS_PRESETS["matting"].with_overrides("bce=3,gradient=0").bce == 3.0
    with pytest.raises(ConfigError, match="unknown loss 'dice'"):
        LOSS_PRESETS["matting"].with_overrides("dice=1")

    target = (torch.rand(2, 1, 32, 32) > 0.5).float()
    assert float(ssim_loss(target, target)) == pytest.approx(0.0, abs=1e-6)
    loss = BiRefNetLoss(LOSS_PRESETS["general"])
    good = {"logits": (target * 2 - 1) * 8, "side_logits": [], "gradient_logits": []}
    bad = {"logits": -good["logits"], "side_logits": [], "gradient_logits": []}
    image = torch.randn(2, 3, 32, 32)
    assert loss(good, target, image)[0] < loss(bad, target, image)[0]


def test_validation_metrics_rank_predictions():
    gt = np.zeros((48, 48), np.float32)
    gt[12:36, 12:36] = 1
    perfect, blurred = pair_metrics(gt, gt), pair_metrics(cv2.GaussianBlur(gt, (9, 9), 3), gt)
    assert perfect["s_measure"] == pytest.approx(1.0) and perfect["weighted_f"] == pytest.approx(1.0)
    assert perfect["mae"] == perfect["sad"] == perfect["mse"] == perfect["grad"] == 0
    assert 0.5 < blurred["s_measure"] < 1 and 0 < blurred["weighted_f"] < 1 and blurred["sad"] > 0
    assert pair_metrics(1 - gt, gt)["weighted_f"] < 0.05


@pytest.mark.slow
def test_ray_train_two_workers_share_each_epoch_and_rank0_writes(tmp_path):
    """The --workers path end to end on a real local Ray: TorchTrainer, gloo DDP on two CPU workers."""
    pytest.importorskip("ray.train")
    data = _write_dataset(tmp_path / "data", count=8)
    run = tmp_path / "run"
    code = main(["train", "--data", str(data), "--val-data", str(data), "-o", str(run),
                 "--size", str(SIZE), "--val-size", str(SIZE),
                 "--batch-size", "2", "--epochs", "1", "--val-samples", "2", "--loader-workers", "0",
                 "--device", "cpu", "--workers", "2", "--quiet"])
    assert code == 0
    records = [json.loads(line) for line in (run / LOG_FILE).read_text().splitlines()]
    # 8 pairs, 2 per batch, 2 ranks: each rank takes 2 of the epoch's 4 batches, so one epoch is 2 steps
    assert [(r["epoch"], r["step"]) for r in records] == [(1, 2)]
    assert set(records[0]["val"]) >= {"mae", "s_measure"}  # rank 0 validated
    frames = np.random.default_rng(2).integers(0, 256, (1, SIZE, SIZE, 3), dtype=np.uint8)
    alpha = Predictor(str(run / BEST_WEIGHTS), device="cpu", resolution=SIZE).predict(frames)
    assert alpha.shape == (1, SIZE, SIZE) and np.isfinite(alpha).all()


@pytest.mark.slow
def test_train_command_reads_a_preset_under_its_flags(tmp_path):
    """The bundled synthetic-demo preset, shortened by flags: what the run recorded is preset < flags."""
    run = tmp_path / "run"
    code = main(["train", "--config", "train-synthetic-demo", "-o", str(run), "--size", str(SIZE),
                 "--val-size", str(SIZE), "--epochs", "1", "--synthetic-samples", "2", "--val-samples", "1",
                 "--batch-size", "2", "--loader-workers", "0", "--device", "cpu", "--no-check-data", "--quiet"])
    assert code == 0
    recorded = torch.load(run / STATE_FILE, map_location="cpu", weights_only=True)["config"]
    assert (recorded["data"], recorded["arch"], recorded["lr"], recorded["loss_weights"]) == \
        ("synthetic", "demo", 1e-3, "bce=30,iou=0.5")  # the preset
    assert (recorded["size"], recorded["epochs"], recorded["check_data"]) == (SIZE, 1, False)  # the flags
    assert tuple(recorded["crop_scale"]) == TrainConfig(output="").crop_scale  # no key: TrainConfig's default


def test_train_settings_cover_train_config_with_its_own_choices():
    from birefnet.train.loop import _SAVE_DTYPES
    from birefnet.train.metrics import HIGHER_IS_BETTER
    from pipeline.settings import train as settings

    keys = set(settings.TRAIN_SETTINGS.keys) - set(settings.PLACEMENT_KEYS)
    assert keys == set(TrainConfig.__dataclass_fields__) - {"crop_scale"}
    assert set(settings.LOSS_PRESET_NAMES) == set(LOSS_PRESETS)
    assert set(settings.SAVE_DTYPES) == set(_SAVE_DTYPES) and set(settings.BEST_METRICS) == set(HIGHER_IS_BETTER)
    assert settings.SYNTHETIC == TrainConfig(output="").data
