"""`birefnet-video train`: fine-tune BiRefNet on a folder of pairs (or train on synthetic composites).

One process on one device by default; ``--workers N`` runs the same training on N Ray Train workers
(GPUs when the cluster has them, multi-node with ``--ray-address``).
"""

from __future__ import annotations

import argparse

EXAMPLES = """examples:
  birefnet-video train --data shoot/ --val-data shoot_val/ --init hr-matting -o runs/costume --preset matting
  birefnet-video train --data pairs.txt --init general -o runs/product --preset general --epochs 20 --workers 4
  birefnet-video train --data synthetic --arch demo -o runs/demo --size 256 --val-size 512
  then: birefnet-video process clip.mp4 -o out.mov --model runs/costume/best.safetensors
"""


def add_parser(subparsers) -> None:
    from birefnet.train.loop import SYNTHETIC, TrainConfig

    d = TrainConfig(output="")
    parser = subparsers.add_parser(
        "train", help="fine-tune BiRefNet on your own image/matte pairs",
        description="Train or fine-tune BiRefNet. Data: a folder with im/ and gt/ (same stems; gt a mask or "
                    "alpha matte, 8/16-bit), a list file of 'IMAGE GT' lines, or 'synthetic'. Writes "
                    "best.safetensors / last.safetensors (loadable with --model), last.pt (resume) and log.jsonl.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help=f"training folder, list file, or '{SYNTHETIC}'")
    parser.add_argument("--val-data", help="validation folder or list file (synthetic data: held-out frames)")
    parser.add_argument("-o", "--output", required=True, help="run directory")
    parser.add_argument("--init", help="model source to start from: variant (hr-matting, ...), file or hub repo")
    parser.add_argument("--arch", default=d.arch, help="architecture for fresh weights when --init is not given")
    parser.add_argument("--preset", default=d.preset, choices=("matting", "general"), help="loss weights")
    parser.add_argument("--loss-weights", help="override preset weights, e.g. 'bce=30,iou=0.5,gradient=1'")
    parser.add_argument("--size", type=int, default=d.size, help="training crop side (multiple of 32)")
    parser.add_argument("--val-size", type=int, default=d.val_size, help="validation side (multiple of 32)")
    parser.add_argument("--batch-size", type=int, default=d.batch_size, help="per worker")
    parser.add_argument("--accumulate", type=int, default=d.accumulate, help="gradient accumulation steps")
    parser.add_argument("--epochs", type=int, default=d.epochs)
    parser.add_argument("--synthetic-samples", type=int, default=d.synthetic_samples, help="synthetic samples per epoch")
    parser.add_argument("--synthetic-scale", type=float, nargs=2, default=d.synthetic_scale, metavar=("LOW", "HIGH"),
                        help="synthetic scenes are rendered at LOW..HIGH times the crop size, then cropped")
    parser.add_argument("--val-samples", type=int, default=d.val_samples, help="synthetic validation frames")
    parser.add_argument("--val-seed", type=int, default=d.val_seed, help="held-out synthetic scene")
    parser.add_argument("--lr", type=float, default=d.lr)
    parser.add_argument("--weight-decay", type=float, default=d.weight_decay)
    parser.add_argument("--ema-decay", type=float, default=d.ema_decay,
                        help="validate and save a moving average of the weights (e.g. 0.998; 0: off)")
    parser.add_argument("--schedule", default=d.schedule, choices=("cosine", "step", "constant"))
    parser.add_argument("--warmup-steps", type=int, default=d.warmup_steps)
    parser.add_argument("--step-epochs", type=int, default=d.step_epochs, help="step schedule: decay every N epochs")
    parser.add_argument("--step-gamma", type=float, default=d.step_gamma)
    parser.add_argument("--background-prob", type=float, default=d.background_prob,
                        help="chance of compositing a sample over another background")
    parser.add_argument("--jitter", type=float, default=d.jitter, help="colour jitter amplitude (0: off)")
    parser.add_argument("--device", default=d.device)
    parser.add_argument("--precision", default=d.precision, choices=("auto", "fp32", "fp16", "bf16"))
    parser.add_argument("--save-dtype", default=d.save_dtype, choices=("fp32", "fp16", "bf16"))
    parser.add_argument("--best-metric", default=d.best_metric,
                        choices=("mae", "s_measure", "weighted_f", "sad", "mse", "grad"))
    parser.add_argument("--save-every", type=int, default=d.save_every, help="also save state every N steps")
    parser.add_argument("--loader-workers", type=int, default=d.loader_workers, help="-1: auto")
    parser.add_argument("--seed", type=int, default=d.seed)
    parser.add_argument("--resume", action="store_true", help="continue the run in --output")
    parser.add_argument("--overwrite", action="store_true", help="start again in a directory holding a run")
    parser.add_argument("--no-check", dest="check_data", action="store_false",
                        help="skip opening every file before training")
    parser.add_argument("--workers", type=int, default=1, help="N > 1: Ray Train with N workers")
    parser.add_argument("--ray-address", help="Ray cluster to join (default: start a local one)")
    parser.add_argument("--quiet", action="store_true")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from birefnet.errors import ConfigError
    from birefnet.train.loop import TrainConfig, train

    fields = TrainConfig.__dataclass_fields__
    config = TrainConfig(**{k: v for k, v in vars(args).items() if k in fields})
    config.validate()
    if args.workers < 1:
        raise ConfigError("--workers must be at least 1")
    if args.workers == 1 and not args.ray_address:
        train(config)
    else:
        from birefnet.train.ray_train import train_with_ray

        train_with_ray(config, workers=args.workers, address=args.ray_address)
    return 0
