"""Training and fine-tuning of BiRefNet: data checks, augmentation, the official losses, DIS and matting
validation metrics, a single-process trainer with resume, and a Ray Train path (``ray_train``, which
alone imports ray)."""

from .loop import TrainConfig, Trainer, train

__all__ = ["TrainConfig", "Trainer", "train"]
