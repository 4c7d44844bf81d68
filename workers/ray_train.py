"""Multi-GPU and multi-node training through Ray Train: the same ``Trainer`` (``birefnet.train.loop``)
placed on every worker.

Ray's ``TorchTrainer`` starts ``workers`` processes (one GPU each when the cluster has GPUs), sets up
the torch.distributed process group, and each worker runs ``Trainer`` with its rank: its share of
every epoch's batches, gradients averaged by DistributedDataParallel, rank 0 writing the checkpoints
and logs. The run directory must be on storage every node sees (a shared filesystem) for
``--resume`` to work across nodes. It lives with the other code that places work on Ray's devices, so
``ray`` stays out of ``birefnet`` (which runs where ray is not installed); it is imported only when this
path is taken.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from birefnet.errors import ConfigError
from birefnet.train.loop import TrainConfig, Trainer


def _worker_loop(config_dict: dict) -> None:
    """Runs inside each Ray Train worker."""
    import ray.train
    import ray.train.torch

    context = ray.train.get_context()
    config = TrainConfig(**config_dict)
    device = ray.train.torch.get_device()
    trainer = Trainer(config, rank=context.get_world_rank(), world_size=context.get_world_size(), device=device)
    record = trainer.fit()
    ray.train.report({"epoch": trainer.epoch, "step": trainer.step, **({"val": record["val"]} if record else {})})


def train_with_ray(config: TrainConfig, workers: int, address: str | None = None,
                   use_gpu: bool | None = None) -> None:
    """Train on ``workers`` Ray workers; GPUs are used when the cluster has at least one per worker."""
    try:
        import ray
        from ray.train import RunConfig, ScalingConfig
        from ray.train.torch import TorchTrainer
    except ImportError as exc:
        raise ConfigError(f"--workers {workers} needs Ray Train (pip install 'ray[train]'): {exc}") from None

    # without an address: a fresh local Ray on 127.0.0.1, never a cluster some other program left running
    local: dict[str, Any] = {"_node_ip_address": "127.0.0.1"} if address is None else {}
    ray.init(address=address or "local", ignore_reinit_error=True, include_dashboard=False,
             log_to_driver=not config.quiet, **local)
    try:
        if use_gpu is None:
            use_gpu = ray.cluster_resources().get("GPU", 0) >= workers
        from pathlib import Path

        storage = str(Path(config.output).expanduser().resolve() / "ray")
        trainer = TorchTrainer(
            _worker_loop,
            train_loop_config=asdict(config),
            scaling_config=ScalingConfig(num_workers=workers, use_gpu=use_gpu),
            run_config=RunConfig(name="birefnet-train", storage_path=storage),
        )
        result = trainer.fit()
        if result.error is not None:
            raise result.error
    finally:
        if address is None:
            ray.shutdown()
