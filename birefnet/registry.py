"""Named BiRefNet variants: which backbone, which working resolution, where the weights live.

Like timm's pretrained configs: a variant name is enough to build the right architecture and fetch its
checkpoint. Every released checkpoint shares the decoder; they differ in backbone and resolution.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .backbones import BACKBONE_CONFIGS, SwinConfig
from .errors import CheckpointError
from .model import BiRefNetConfig

BIREFNET_LICENCE = "MIT"
BUNDLED_WEIGHTS_DIR = Path(__file__).parent / "bundled"


@dataclass(frozen=True)
class Variant:
    name: str
    config: BiRefNetConfig
    resolution: tuple[int, int] | None  # (W, H) the weights were trained at; None: any multiple of 32
    hub_repo: str | None
    licence: str
    description: str
    bundled_file: str | None = None  # weights shipped inside the package
    dynamic_base: int = 1024  # side of the square whose area a dynamic resolution keeps
    # the largest subject, in model pixels, the weights learned from; a crop that magnifies the subject past
    # it loses more than the extra detail gives (docs/roi.md), so ``--roi auto`` frames no subject larger.
    # None: trained at the working size, no limit.
    subject_pixels: int | None = None

    @property
    def backbone(self) -> str:
        return self.config.backbone

    @property
    def bundled_path(self) -> Path | None:
        return BUNDLED_WEIGHTS_DIR / self.bundled_file if self.bundled_file else None


def _config(backbone: str) -> BiRefNetConfig:
    return BiRefNetConfig(backbone, BACKBONE_CONFIGS[backbone])


# Small enough to train on two CPU cores in under an hour (2.1 M parameters, ~4 MB in fp16).
DEMO_CONFIG = BiRefNetConfig(
    "swin_demo",
    SwinConfig(embed_dim=16, depths=(2, 2, 2, 2), num_heads=(1, 2, 4, 8), window_size=7),
    decoder_channels=16,
    aspp_channels=16,
    gradient_channels=8,
)

_VARIANTS = [
    Variant("general", _config("swin_v1_l"), (1024, 1024), "ZhengPeng7/BiRefNet", BIREFNET_LICENCE,
            "general-use dichotomous segmentation"),
    Variant("hr", _config("swin_v1_l"), (2048, 2048), "ZhengPeng7/BiRefNet_HR", BIREFNET_LICENCE,
            "general use at high resolution"),
    Variant("hr-matting", _config("swin_v1_l"), (2048, 2048), "ZhengPeng7/BiRefNet_HR-matting", BIREFNET_LICENCE,
            "alpha matting at high resolution (pipeline default)"),
    Variant("matting", _config("swin_v1_l"), (1024, 1024), "ZhengPeng7/BiRefNet-matting", BIREFNET_LICENCE,
            "alpha matting"),
    Variant("portrait", _config("swin_v1_l"), (1024, 1024), "ZhengPeng7/BiRefNet-portrait", BIREFNET_LICENCE,
            "people and portraits"),
    Variant("dynamic", _config("swin_v1_l"), None, "ZhengPeng7/BiRefNet_dynamic", BIREFNET_LICENCE,
            "any resolution (trained 256..2304), follows the frame's aspect ratio"),
    Variant("lite", _config("swin_v1_t"), (1024, 1024), "ZhengPeng7/BiRefNet_lite", BIREFNET_LICENCE,
            "small and fast (Swin-T)"),
    Variant("lite-2k", _config("swin_v1_t"), (2560, 1440), "ZhengPeng7/BiRefNet_lite-2K", BIREFNET_LICENCE,
            "small and fast at 2560x1440"),
    Variant("dis", _config("swin_v1_l"), (1024, 1024), "ZhengPeng7/BiRefNet-DIS5K", BIREFNET_LICENCE,
            "trained on DIS5K only (benchmark model)"),
    Variant("cod", _config("swin_v1_l"), (1024, 1024), "ZhengPeng7/BiRefNet-COD", BIREFNET_LICENCE,
            "camouflaged object detection"),
    Variant("hrsod", _config("swin_v1_l"), (1024, 1024), "ZhengPeng7/BiRefNet-HRSOD", BIREFNET_LICENCE,
            "high-resolution salient object detection"),
    Variant("rmbg-2.0", _config("swin_v1_l"), (1024, 1024), "briaai/RMBG-2.0",
            "CC BY-NC 4.0 (non-commercial; commercial use needs a licence from BRIA)",
            "BRIA background removal, same architecture"),
    Variant("demo", DEMO_CONFIG, (288, 288), None, BIREFNET_LICENCE,
            "tiny model trained on synthetic composites; offline smoke runs and tests, not real footage",
            bundled_file="demo.safetensors", dynamic_base=256, subject_pixels=192),
]

VARIANTS: dict[str, Variant] = {v.name: v for v in _VARIANTS}


def get_variant(name: str) -> Variant | None:
    return VARIANTS.get(name.lower())


def subject_pixels_of(model: str) -> int | None:
    """The largest subject (model pixels) ``model`` learned from; None for a released variant or a file."""
    variant = get_variant(model)
    return variant.subject_pixels if variant is not None else None


def model_config(name: str) -> BiRefNetConfig:
    """Architecture for a variant or backbone name."""
    variant = get_variant(name)
    if variant is not None:
        return variant.config
    if name in BACKBONE_CONFIGS:
        return _config(name)
    known = ", ".join(list(VARIANTS) + list(BACKBONE_CONFIGS))
    raise CheckpointError(f"unknown model name {name!r}; known: {known}")
