"""BiRefNet's decoder: deformable ASPP blocks, the inward (image patches) and outward (gradient)
references, lateral connections and the multi-scale supervision heads."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .deform_conv import DeformableConv2d


def resize(x: Tensor, size: tuple[int, int] | torch.Size) -> Tensor:
    """Bilinear resize with align_corners=True, the only resize BiRefNet uses; a no-op at equal size."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    return F.interpolate(x, size=tuple(size), mode="bilinear", align_corners=True)


def image_to_patches(image: Tensor, size: tuple[int, int] | torch.Size) -> Tensor:
    """Cut the image into a grid of tiles of ``size`` and stack them on channels.

    Channel order is channel-major, then grid row, then grid column: c * (gh * gw) + row * gw + col.
    """
    b, c, h, w = image.shape
    th, tw = size
    gh, gw = h // th, w // tw
    tiles = image[:, :, : gh * th, : gw * tw].reshape(b, c, gh, th, gw, tw)
    return tiles.permute(0, 1, 2, 4, 3, 5).reshape(b, c * gh * gw, th, tw)


class ASPPBranch(nn.Module):
    """Deformable convolution, BatchNorm, ReLU."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int) -> None:
        super().__init__()
        self.atrous_conv = DeformableConv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2)
        self.bn = nn.BatchNorm2d(out_channels)

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(self.bn(self.atrous_conv(x)))


class ASPPDeformable(nn.Module):
    """Atrous-spatial-pyramid pooling with deformable 1x1, 1x1, 3x3 and 7x7 branches and an image-level
    pooling branch, fused back to ``in_channels``."""

    def __init__(self, in_channels: int, branch_channels: int = 256, kernel_sizes: tuple[int, ...] = (1, 3, 7)) -> None:
        super().__init__()
        self.aspp1 = ASPPBranch(in_channels, branch_channels, 1)
        self.aspp_deforms = nn.ModuleList(ASPPBranch(in_channels, branch_channels, k) for k in kernel_sizes)
        self.global_avg_pool = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),
            nn.Conv2d(in_channels, branch_channels, 1, bias=False),
            nn.BatchNorm2d(branch_channels),
            nn.ReLU(inplace=True),
        )
        self.conv1 = nn.Conv2d(branch_channels * (2 + len(kernel_sizes)), in_channels, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(in_channels)
        self.dropout = nn.Dropout(0.5)

    def forward(self, x: Tensor) -> Tensor:
        pooled = self.global_avg_pool(x).expand(-1, -1, *x.shape[-2:])
        branches = [self.aspp1(x), *(branch(x) for branch in self.aspp_deforms), pooled]
        return self.dropout(F.relu(self.bn1(self.conv1(torch.cat(branches, dim=1)))))


class BasicDecBlk(nn.Module):
    """conv 3x3 -> BN -> ReLU -> deformable ASPP -> conv 3x3 -> BN (no final activation)."""

    def __init__(self, in_channels: int, out_channels: int, inner_channels: int = 64, aspp_channels: int = 256) -> None:
        super().__init__()
        self.conv_in = nn.Conv2d(in_channels, inner_channels, 3, padding=1)
        self.dec_att = ASPPDeformable(inner_channels, aspp_channels)
        self.conv_out = nn.Conv2d(inner_channels, out_channels, 3, padding=1)
        self.bn_in = nn.BatchNorm2d(inner_channels)
        self.bn_out = nn.BatchNorm2d(out_channels)

    def forward(self, x: Tensor) -> Tensor:
        x = F.relu(self.bn_in(self.conv_in(x)))
        return self.bn_out(self.conv_out(self.dec_att(x)))


class SimpleConvs(nn.Module):
    """Two plain 3x3 convolutions: the encoder of the image patches (inward reference)."""

    def __init__(self, in_channels: int, out_channels: int, inner_channels: int = 64) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, inner_channels, 3, padding=1)
        self.conv_out = nn.Conv2d(inner_channels, out_channels, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv_out(self.conv1(x))


class LateralBlock(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(x)


def _gradient_branch(in_channels: int, width: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(in_channels, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(inplace=True))


def _head(in_channels: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(in_channels, 1, 1))


class Decoder(nn.Module):
    """Top-down decoder over the (doubled) backbone channels ``ch = [c4, c3, c2, c1]``.

    At each level the decoder sees the matching-size tiles of the input image (inward reference); at
    levels 4..2 a gradient branch gates the features (outward reference). ``forward`` returns the
    final logits and, in training mode, the side outputs the losses need.
    """

    # patch-grid side (in tiles) of the inward reference per level: strides 32, 16, 8, 4, 1
    def __init__(
        self, ch: list[int], inner_channels: int = 64, aspp_channels: int = 256, gdt_channels: int = 16
    ) -> None:
        super().__init__()
        ipt_out = [ch[0] // 8, ch[0] // 8, ch[1] // 8, ch[2] // 8, ch[3] // 8]
        self.ipt_blk5 = SimpleConvs(3 * 32**2, ipt_out[0], inner_channels)
        self.ipt_blk4 = SimpleConvs(3 * 16**2, ipt_out[1], inner_channels)
        self.ipt_blk3 = SimpleConvs(3 * 8**2, ipt_out[2], inner_channels)
        self.ipt_blk2 = SimpleConvs(3 * 4**2, ipt_out[3], inner_channels)
        self.ipt_blk1 = SimpleConvs(3, ipt_out[4], inner_channels)

        def block(i: int, out: int) -> BasicDecBlk:
            return BasicDecBlk(ch[i] + ipt_out[i], out, inner_channels, aspp_channels)

        self.decoder_block4 = block(0, ch[1])
        self.decoder_block3 = block(1, ch[2])
        self.decoder_block2 = block(2, ch[3])
        self.decoder_block1 = BasicDecBlk(ch[3] + ipt_out[3], ch[3] // 2, inner_channels, aspp_channels)
        self.conv_out1 = _head(ch[3] // 2 + ipt_out[4])
        self.lateral_block4 = LateralBlock(ch[1])
        self.lateral_block3 = LateralBlock(ch[2])
        self.lateral_block2 = LateralBlock(ch[3])
        self.conv_ms_spvn_4 = nn.Conv2d(ch[1], 1, 1)
        self.conv_ms_spvn_3 = nn.Conv2d(ch[2], 1, 1)
        self.conv_ms_spvn_2 = nn.Conv2d(ch[3], 1, 1)
        self.gdt_convs_4 = _gradient_branch(ch[1], gdt_channels)
        self.gdt_convs_3 = _gradient_branch(ch[2], gdt_channels)
        self.gdt_convs_2 = _gradient_branch(ch[3], gdt_channels)
        self.gdt_convs_pred_4 = _head(gdt_channels)
        self.gdt_convs_pred_3 = _head(gdt_channels)
        self.gdt_convs_pred_2 = _head(gdt_channels)
        self.gdt_convs_attn_4 = _head(gdt_channels)
        self.gdt_convs_attn_3 = _head(gdt_channels)
        self.gdt_convs_attn_2 = _head(gdt_channels)

    def _with_image(self, x: Tensor, image: Tensor, ipt_blk: nn.Module) -> Tensor:
        patches = resize(image_to_patches(image, x.shape[-2:]), x.shape[-2:])
        return torch.cat([x, ipt_blk(patches)], dim=1)

    def forward(
        self, image: Tensor, features: tuple[Tensor, Tensor, Tensor, Tensor]
    ) -> dict[str, Tensor | list[Tensor]]:
        f1, f2, f3, f4 = features
        side_logits, gradient_logits = [], []

        def gate(p: Tensor, level: int) -> Tensor:
            gdt = getattr(self, f"gdt_convs_{level}")(p)
            if self.training:
                side_logits.append(getattr(self, f"conv_ms_spvn_{level}")(p))
                gradient_logits.append(getattr(self, f"gdt_convs_pred_{level}")(gdt))
            return p * torch.sigmoid(getattr(self, f"gdt_convs_attn_{level}")(gdt))

        p4 = gate(self.decoder_block4(self._with_image(f4, image, self.ipt_blk5)), 4)
        q = resize(p4, f3.shape[-2:]) + self.lateral_block4(f3)
        p3 = gate(self.decoder_block3(self._with_image(q, image, self.ipt_blk4)), 3)
        q = resize(p3, f2.shape[-2:]) + self.lateral_block3(f2)
        p2 = gate(self.decoder_block2(self._with_image(q, image, self.ipt_blk3)), 2)
        q = resize(p2, f1.shape[-2:]) + self.lateral_block2(f1)
        q = self.decoder_block1(self._with_image(q, image, self.ipt_blk2))
        q = resize(q, image.shape[-2:])
        logits = self.conv_out1(self._with_image(q, image, self.ipt_blk1))
        return {"logits": logits, "side_logits": side_logits, "gradient_logits": gradient_logits}
