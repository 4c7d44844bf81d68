"""PVT v2 backbone (Wang et al., "PVT v2: Improved Baselines with Pyramid Vision Transformer").

Module and parameter names follow the layout of BiRefNet's released ``pvt_v2_b*`` checkpoints (the
entries under ``bb.``), so those weights load with ``load_state_dict(strict=True)``. The network returns
the four stage outputs at strides 4, 8, 16 and 32 in NCHW, as BiRefNet's decoder expects.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

import torch.nn.functional as F
from torch import Tensor, nn

# Blocks and per-stage output norms use eps 1e-6; patch-embedding and spatial-reduction norms keep
# LayerNorm's default 1e-5 (as in the reference implementation the checkpoints were trained with).
BLOCK_NORM_EPS = 1e-6


@dataclass(frozen=True)
class PVTv2Config:
    """Per-stage widths and depths of one PVT v2 variant (four entries each, stage 1 first)."""

    embed_dims: tuple[int, int, int, int]
    depths: tuple[int, int, int, int]
    num_heads: tuple[int, int, int, int]
    mlp_ratios: tuple[int, int, int, int]
    sr_ratios: tuple[int, int, int, int]


PVT_V2_CONFIGS: dict[str, PVTv2Config] = {
    "pvt_v2_b0": PVTv2Config((32, 64, 160, 256), (2, 2, 2, 2), (1, 2, 5, 8), (8, 8, 4, 4), (8, 4, 2, 1)),
    "pvt_v2_b1": PVTv2Config((64, 128, 320, 512), (2, 2, 2, 2), (1, 2, 5, 8), (8, 8, 4, 4), (8, 4, 2, 1)),
    "pvt_v2_b2": PVTv2Config((64, 128, 320, 512), (3, 4, 6, 3), (1, 2, 5, 8), (8, 8, 4, 4), (8, 4, 2, 1)),
    "pvt_v2_b5": PVTv2Config((64, 128, 320, 512), (3, 6, 40, 3), (1, 2, 5, 8), (4, 4, 4, 4), (8, 4, 2, 1)),
}


def tokens_to_map(tokens: Tensor, hw: tuple[int, int]) -> Tensor:
    """(B, H*W, C) row-major tokens -> (B, C, H, W) feature map."""
    batch, _, channels = tokens.shape
    return tokens.transpose(1, 2).reshape(batch, channels, *hw)


def drop_path(x: Tensor, prob: float, training: bool) -> Tensor:
    """Stochastic depth: zero a residual branch for whole samples, rescaling the survivors."""
    if prob == 0.0 or not training:
        return x
    keep = 1.0 - prob
    mask = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(keep)
    return x * mask / keep


class OverlapPatchEmbed(nn.Module):
    """Strided conv whose kernel overlaps its neighbours, then LayerNorm over channels."""

    def __init__(self, in_channels: int, embed_dim: int, kernel_size: int, stride: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(in_channels, embed_dim, kernel_size, stride, padding=kernel_size // 2)
        self.norm = nn.LayerNorm(embed_dim)

    def forward(self, x: Tensor) -> tuple[Tensor, tuple[int, int]]:
        x = self.proj(x)
        hw = (x.shape[2], x.shape[3])
        return self.norm(x.flatten(2).transpose(1, 2)), hw


class SpatialReductionAttention(nn.Module):
    """Multi-head attention whose keys/values come from a grid downsampled by ``sr_ratio``."""

    def __init__(self, dim: int, num_heads: int, sr_ratio: int) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim {dim} is not divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(dim, dim * 2)
        self.proj = nn.Linear(dim, dim)
        self.sr: nn.Conv2d | None = None
        self.norm: nn.LayerNorm | None = None
        if sr_ratio > 1:
            self.sr = nn.Conv2d(dim, dim, kernel_size=sr_ratio, stride=sr_ratio)
            self.norm = nn.LayerNorm(dim)

    def forward(self, x: Tensor, hw: tuple[int, int]) -> Tensor:
        batch, length, dim = x.shape
        head_dim = dim // self.num_heads
        q = self.q(x).reshape(batch, length, self.num_heads, head_dim).transpose(1, 2)
        context = x
        if self.sr is not None:
            assert self.norm is not None  # built together with sr
            context = self.norm(self.sr(tokens_to_map(x, hw)).flatten(2).transpose(1, 2))
        # kv features are laid out (2, heads, head_dim): all keys first, then all values.
        kv = self.kv(context).reshape(batch, -1, 2, self.num_heads, head_dim).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(q, kv[0], kv[1])  # default scale is head_dim ** -0.5
        return self.proj(out.transpose(1, 2).reshape(batch, length, dim))


class TokenDepthwiseConv(nn.Module):
    """3x3 depthwise conv applied to a token sequence laid out on its (H, W) grid."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dwconv = nn.Conv2d(dim, dim, kernel_size=3, padding=1, groups=dim)

    def forward(self, x: Tensor, hw: tuple[int, int]) -> Tensor:
        return self.dwconv(tokens_to_map(x, hw)).flatten(2).transpose(1, 2)


class ConvMlp(nn.Module):
    """fc1 -> depthwise 3x3 conv -> GELU -> fc2: the MLP that gives PVT v2 its positional cue."""

    def __init__(self, dim: int, hidden_dim: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden_dim)
        self.dwconv = TokenDepthwiseConv(hidden_dim)
        self.fc2 = nn.Linear(hidden_dim, dim)

    def forward(self, x: Tensor, hw: tuple[int, int]) -> Tensor:
        return self.fc2(F.gelu(self.dwconv(self.fc1(x), hw)))


class Block(nn.Module):
    """Pre-norm transformer block: x + attn(norm1(x)), then x + mlp(norm2(x))."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: int, sr_ratio: int, drop_path_prob: float) -> None:
        super().__init__()
        self.drop_path_prob = drop_path_prob
        self.norm1 = nn.LayerNorm(dim, eps=BLOCK_NORM_EPS)
        self.attn = SpatialReductionAttention(dim, num_heads, sr_ratio)
        self.norm2 = nn.LayerNorm(dim, eps=BLOCK_NORM_EPS)
        self.mlp = ConvMlp(dim, dim * mlp_ratio)

    def forward(self, x: Tensor, hw: tuple[int, int]) -> Tensor:
        x = x + drop_path(self.attn(self.norm1(x), hw), self.drop_path_prob, self.training)
        return x + drop_path(self.mlp(self.norm2(x), hw), self.drop_path_prob, self.training)


class PyramidVisionTransformerV2(nn.Module):
    """Four-stage PVT v2 encoder returning NCHW features at strides 4, 8, 16 and 32.

    Submodules are named ``patch_embed{i}``, ``block{i}`` and ``norm{i}`` (i = 1..4) to match the
    checkpoints. Input height and width must be multiples of 32. ``drop_path_rate`` (stochastic depth,
    training only) rises linearly from 0 over all blocks, as in the paper's training recipe.
    """

    def __init__(self, config: PVTv2Config, in_channels: int = 3, drop_path_rate: float = 0.0) -> None:
        super().__init__()
        self.config = config
        self.out_channels: tuple[int, ...] = tuple(config.embed_dims)
        stage_inputs = (in_channels,) + self.out_channels[:-1]
        for i, (cin, cout) in enumerate(zip(stage_inputs, self.out_channels, strict=True), start=1):
            kernel, stride = (7, 4) if i == 1 else (3, 2)
            self.add_module(f"patch_embed{i}", OverlapPatchEmbed(cin, cout, kernel, stride))
        total = sum(config.depths)  # plain floats: the model may be built on the meta device
        drop_probs = [drop_path_rate * i / max(1, total - 1) for i in range(total)]
        first = 0
        for i in range(4):
            depth = config.depths[i]
            blocks = [
                Block(config.embed_dims[i], config.num_heads[i], config.mlp_ratios[i], config.sr_ratios[i], p)
                for p in drop_probs[first : first + depth]
            ]
            first += depth
            self.add_module(f"block{i + 1}", nn.ModuleList(blocks))
            self.add_module(f"norm{i + 1}", nn.LayerNorm(config.embed_dims[i], eps=BLOCK_NORM_EPS))

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        features = []
        for i in range(1, 5):
            tokens, hw = self.get_submodule(f"patch_embed{i}")(x)
            for block in cast(nn.ModuleList, self.get_submodule(f"block{i}")):
                tokens = block(tokens, hw)
            tokens = self.get_submodule(f"norm{i}")(tokens)
            x = tokens_to_map(tokens, hw).contiguous()
            features.append(x)
        return cast("tuple[Tensor, Tensor, Tensor, Tensor]", tuple(features))
