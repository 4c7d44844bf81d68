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


def create_backend(build_predictor: PredictorFactory, config: BackendConfig) -> MattingBackend:
    """The backend ``config.kind`` names; "auto" is Ray where it is installed, in-process otherwise."""
    kind = config.kind
    if kind not in BACKENDS:
        raise ConfigError(f"backend: expected one of {', '.join(BACKENDS)}, got {kind!r}")
    if kind == "auto":
        kind = "ray" if ray_available() else "local"
    if kind == "local":
        from workers.local import LocalBackend

        return LocalBackend(build_predictor, config)
    if not ray_available():
        raise ConfigError("backend: 'ray' is not installed here; pip install ray, or use --backend local")
    from workers.ray_actors import RayBackend

    return RayBackend(build_predictor, config)
