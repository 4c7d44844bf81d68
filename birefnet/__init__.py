"""BiRefNet in pure PyTorch: checkpoint-compatible with the official release, batched inference.

Knows nothing of video; see ``pipeline`` for that. The errors are imported eagerly and everything else
on first use, so code that only needs ``birefnet.errors`` does not pay for importing torch.
"""

from importlib import import_module

from .errors import CheckpointError, ConfigError, InputError, OutputError, UserError

_LAZY = {
    "BiRefNet": ".model",
    "BiRefNetConfig": ".model",
    "Predictor": ".predictor",
    "VARIANTS": ".registry",
    "Variant": ".registry",
    "get_variant": ".registry",
    "build_model": ".weights",
    "load_model": ".weights",
}

__all__ = ["CheckpointError", "ConfigError", "InputError", "OutputError", "UserError", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
