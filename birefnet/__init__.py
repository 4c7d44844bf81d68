"""BiRefNet in pure PyTorch: checkpoint-compatible with the official release, batched inference.

Knows nothing of video; see ``pipeline`` for that.
"""

from .errors import CheckpointError, ConfigError, InputError, OutputError, UserError
from .model import BiRefNet, BiRefNetConfig
from .predictor import Predictor
from .registry import VARIANTS, Variant, get_variant
from .weights import build_model, load_model

__all__ = [
    "BiRefNet", "BiRefNetConfig", "CheckpointError", "ConfigError", "InputError", "OutputError", "Predictor",
    "UserError", "VARIANTS", "Variant", "build_model", "get_variant", "load_model",
]
