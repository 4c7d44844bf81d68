"""BiRefNet: a backbone run at full and half resolution, a context squeeze, and the bilateral-reference
decoder. Module names follow the official checkpoints so their state dicts load with strict=True."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from .backbones import BackboneConfig, build_backbone
from .modules.decoder import BasicDecBlk, Decoder, resize

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class BiRefNetConfig:
    """Architecture of one BiRefNet. The released weights all use the decoder defaults; the bundled
    demo model shrinks them."""

    backbone: str
    backbone_config: BackboneConfig
    decoder_channels: int = 64
    aspp_channels: int = 256
    gradient_channels: int = 16


class BiRefNet(nn.Module):
    """Input: ImageNet-normalised RGB (B, 3, H, W), H and W multiples of 32. Output: logits (B, 1, H, W).

    In training mode ``forward_train`` also returns the multi-scale side logits and the gradient
    logits that the auxiliary losses supervise.
    """

    def __init__(self, config: BiRefNetConfig) -> None:
        super().__init__()
        self.config = config
        self.bb = build_backbone(config.backbone_config)
        c1, c2, c3, c4 = (2 * c for c in self.bb.out_channels)  # full- and half-resolution features concatenated
        self.squeeze_module = nn.Sequential(
            BasicDecBlk(c1 + c2 + c3 + c4, c4, config.decoder_channels, config.aspp_channels)
        )
        self.decoder = Decoder(
            [c4, c3, c2, c1], config.decoder_channels, config.aspp_channels, config.gradient_channels
        )

    def encode(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Backbone features at full and half resolution, fused, plus the squeezed global context."""
        h, w = x.shape[-2:]
        full = self.bb(x)
        half = self.bb(resize(x, (h // 2, w // 2)))
        f1, f2, f3, f4 = (torch.cat([f, resize(g, f.shape[-2:])], dim=1) for f, g in zip(full, half, strict=True))
        context = [resize(f, f4.shape[-2:]) for f in (f1, f2, f3)]
        f4 = self.squeeze_module(torch.cat([*context, f4], dim=1))
        return f1, f2, f3, f4

    def forward_train(self, x: Tensor) -> dict[str, Tensor | list[Tensor]]:
        """Final logits plus side logits (levels 4, 3, 2) and gradient logits, for the training losses."""
        return self.decoder(x, self.encode(x))

    def forward(self, x: Tensor) -> Tensor:
        if x.shape[-1] % 32 or x.shape[-2] % 32:
            raise ValueError(f"BiRefNet input height and width must be multiples of 32, got {tuple(x.shape[-2:])}")
        return self.decoder(x, self.encode(x))["logits"]
