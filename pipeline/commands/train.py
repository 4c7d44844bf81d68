"""`birefnet-video train`: fine-tune BiRefNet on a folder of pairs (or train on synthetic composites).

One process on one device by default; ``--workers N`` runs the same training on N Ray Train workers
(GPUs when the cluster has them, multi-node with ``--ray-address``).
"""

from __future__ import annotations

import argparse

from pipeline.commands import add_command

EXAMPLES = """examples:
  birefnet-video train --data shoot/ --val-data shoot_val/ --init hr-matting -o runs/costume --loss-preset matting
  birefnet-video train --data pairs.txt --init general -o runs/product --loss-preset general --epochs 20 --workers 4
  birefnet-video train --config train-synthetic-demo -o runs/demo
  then: birefnet-video process clip.mp4 -o out.mov --model runs/costume/best.safetensors
"""


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    from pipeline.settings.train import TRAIN_SETTINGS

    parser = add_command(
        subparsers, "train", help="fine-tune BiRefNet on your own image/matte pairs",
        description="Train or fine-tune BiRefNet. Data: a folder with im/ and gt/ (same stems; gt a mask or "
                    "alpha matte, 8/16-bit), a list file of 'IMAGE GT' lines, or 'synthetic'. Writes "
                    "best.safetensors / last.safetensors (loadable with --model), last.pt (resume) and log.jsonl.",
        examples=EXAMPLES, run=run)
    TRAIN_SETTINGS.add_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from birefnet.train.loop import TrainConfig, train
    from pipeline.settings.train import TRAIN_SETTINGS, split_placement

    options, placement = split_placement(TRAIN_SETTINGS.values_of(args))
    config = TrainConfig(**options)
    config.validate()
    if placement.on_ray:
        from workers.ray_train import train_with_ray

        train_with_ray(config, workers=placement.workers, address=placement.ray_address)
    else:
        train(config)
    return 0
