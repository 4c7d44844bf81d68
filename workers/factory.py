"""Picks and builds the matting backend a configuration names."""

from __future__ import annotations

from birefnet.errors import ConfigError
from workers.base import BACKENDS, BackendConfig, MattingBackend
from workers.matting import PredictorFactory


def ray_available() -> bool:
    try:
        import ray  # noqa: F401
    except ImportError:
        return False
    return True


def local_gpus() -> int:
    """GPUs this process sees (0 without CUDA); torch is imported only to count them."""
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def choose_backend(config: BackendConfig) -> tuple[str, str]:
    """(kind, why) for ``config.kind``. "auto" runs in-process where there is one device to run on and no
    cluster address (Ray's start-up and transfers only cost there), and Ray for several devices or a
    cluster; without Ray installed it is in-process."""
    kind = config.kind
    if kind not in BACKENDS:
        raise ConfigError(f"backend: expected one of {', '.join(BACKENDS)}, got {kind!r}")
    if kind != "auto":
        return kind, "asked for"
    if config.ray_address:
        return ("ray", f"cluster at {config.ray_address}") if ray_available() else ("local", "ray not installed")
    gpus = 0 if config.device == "cpu" else local_gpus()
    wanted = config.workers or 1
    if (gpus > 1 or wanted > 1) and ray_available():
        return "ray", f"{max(gpus, wanted)} workers" if wanted > 1 else f"{gpus} GPUs"
    return "local", "one device: " + ("GPU" if gpus else "CPU")


def create_backend(build_predictor: PredictorFactory, config: BackendConfig) -> MattingBackend:
    """The backend ``choose_backend`` picks for ``config``."""
    kind = choose_backend(config)[0]
    if kind == "local":
        from workers.local import LocalBackend

        return LocalBackend(build_predictor, config)
    if not ray_available():
        raise ConfigError("backend: 'ray' is not installed here; pip install ray, or use --backend local")
    from workers.ray_actors import RayBackend

    return RayBackend(build_predictor, config)
