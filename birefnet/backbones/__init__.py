"""Backbones by name. Each returns four NCHW feature maps at strides 4, 8, 16, 32 and exposes
``out_channels``."""

from __future__ import annotations

from .pvt_v2 import PVT_V2_CONFIGS, PVTv2Config, PyramidVisionTransformerV2
from .swin import SWIN_CONFIGS, SwinConfig, SwinTransformer

BackboneConfig = SwinConfig | PVTv2Config

BACKBONE_CONFIGS: dict[str, BackboneConfig] = {**SWIN_CONFIGS, **PVT_V2_CONFIGS}


def build_backbone(config: BackboneConfig) -> SwinTransformer | PyramidVisionTransformerV2:
    if isinstance(config, SwinConfig):
        return SwinTransformer(config)
    if isinstance(config, PVTv2Config):
        return PyramidVisionTransformerV2(config)
    raise TypeError(f"unknown backbone config {config!r}")


__all__ = ["BACKBONE_CONFIGS", "BackboneConfig", "PVTv2Config", "SwinConfig", "build_backbone"]
