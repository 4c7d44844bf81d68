"""Swin Transformer v1 backbone (Liu et al. 2021), in the layout BiRefNet's checkpoints use.

Tokens are kept as (B, H, W, C) maps throughout, so window partitioning is a reshape. Attention goes
through ``scaled_dot_product_attention``. The additive masks (relative position bias plus the shifted
window mask) depend only on the map size and the bias table, so they are built once per shape and
cached until the table changes.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn


@dataclass(frozen=True)
class SwinConfig:
    embed_dim: int
    depths: tuple[int, ...]
    num_heads: tuple[int, ...]
    window_size: int
    mlp_ratio: float = 4.0
    patch_size: int = 4

    @property
    def out_channels(self) -> tuple[int, ...]:
        return tuple(self.embed_dim * 2**i for i in range(len(self.depths)))


SWIN_CONFIGS = {
    "swin_v1_t": SwinConfig(96, (2, 2, 6, 2), (3, 6, 12, 24), 7),
    "swin_v1_s": SwinConfig(96, (2, 2, 18, 2), (3, 6, 12, 24), 7),
    "swin_v1_b": SwinConfig(128, (2, 2, 18, 2), (4, 8, 16, 32), 12),
    "swin_v1_l": SwinConfig(192, (2, 2, 18, 2), (6, 12, 24, 48), 12),
}


def _relative_position_index(window: int) -> Tensor:
    """Index into the (2w-1)^2 bias table for every (query, key) pair of a window, row-major tokens."""
    coords = torch.stack(torch.meshgrid(torch.arange(window), torch.arange(window), indexing="ij")).flatten(1)
    relative = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0) + (window - 1)
    return relative[..., 0] * (2 * window - 1) + relative[..., 1]


def _shift_region_ids(window: int, shift: int, last: bool) -> Tensor:
    """Region label of each row (or column) of a window: the last window of a shifted map straddles
    the wrap-around seam, every other window lies inside one region."""
    ids = torch.zeros(window, dtype=torch.long)
    if last:
        ids[window - shift:] = 1
    return ids


class WindowAttention(nn.Module):
    """Multi-head self-attention inside non-overlapping windows, with a learned relative position bias."""

    relative_position_index: Tensor  # registered buffer

    def __init__(self, dim: int, window_size: int, num_heads: int) -> None:
        super().__init__()
        self.window_size = window_size
        self.num_heads = num_heads
        self.relative_position_bias_table = nn.Parameter(torch.zeros((2 * window_size - 1) ** 2, num_heads))
        self.register_buffer("relative_position_index", _relative_position_index(window_size), persistent=True)
        self.qkv = nn.Linear(dim, dim * 3, bias=True)
        self.proj = nn.Linear(dim, dim)
        nn.init.trunc_normal_(self.relative_position_bias_table, std=0.02)
        self._mask_cache: dict = {}

    def _masks(self, shifted: bool, dtype: torch.dtype) -> dict[tuple[bool, bool], Tensor]:
        """Additive attention masks keyed by (last window row?, last window column?).

        Without a shift every window shares the bias alone. With a shift only the last row and column
        of windows mix regions, so there are at most four distinct masks, each (heads, N, N); building
        one per window would cost gigabytes at 2048 px.
        """
        table = self.relative_position_bias_table
        key = (shifted, dtype, table.device, table._version, table.data_ptr())
        cached = self._mask_cache.get(key)
        if cached is not None and not torch.is_grad_enabled():
            return cached
        n = self.window_size**2
        bias = table[self.relative_position_index.view(-1)].view(n, n, -1).permute(2, 0, 1)
        if not shifted:
            masks = {(False, False): bias.to(dtype).contiguous()}
        else:
            shift = self.window_size // 2
            masks = {}
            for last_row in (False, True):
                for last_col in (False, True):
                    rows = _shift_region_ids(self.window_size, shift, last_row)
                    cols = _shift_region_ids(self.window_size, shift, last_col)
                    region = (rows[:, None] * 2 + cols[None, :]).flatten().to(table.device)
                    blocked = region[:, None] != region[None, :]
                    mask = bias.masked_fill(blocked, float("-inf"))
                    masks[(last_row, last_col)] = mask.to(dtype).contiguous()
        if not torch.is_grad_enabled():
            self._mask_cache = {key: masks}
        return masks

    def forward(self, windows: Tensor, shifted: bool) -> Tensor:
        """windows: (B, nH, nW, N, C) tokens of each window -> same shape."""
        b, n_rows, n_cols, n, c = windows.shape
        head_dim = c // self.num_heads
        qkv = self.qkv(windows).view(b, n_rows, n_cols, n, 3, self.num_heads, head_dim)
        q, k, v = qkv.permute(4, 0, 1, 2, 5, 3, 6).unbind(0)  # each (B, nH, nW, heads, N, d)
        masks = self._masks(shifted, q.dtype)
        if not shifted:
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=masks[(False, False)])
        else:
            out = torch.empty_like(q)
            row_groups = ((False, slice(0, n_rows - 1)), (True, slice(n_rows - 1, n_rows)))
            col_groups = ((False, slice(0, n_cols - 1)), (True, slice(n_cols - 1, n_cols)))
            # no branch on the window counts: an empty group (a single row or column of windows) costs
            # nothing, and an ONNX trace then holds every group whatever size it was traced at
            for last_row, rows in row_groups:
                for last_col, cols in col_groups:
                    out[:, rows, cols] = F.scaled_dot_product_attention(
                        q[:, rows, cols], k[:, rows, cols], v[:, rows, cols],
                        attn_mask=masks[(last_row, last_col)],
                    )
        out = out.transpose(-3, -2).reshape(b, n_rows, n_cols, n, c)
        return self.proj(out)


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(F.gelu(self.fc1(x)))


class SwinBlock(nn.Module):
    """Pre-norm window attention (shifted on odd blocks) and MLP, both residual."""

    def __init__(self, dim: int, num_heads: int, window_size: int, shifted: bool, mlp_ratio: float) -> None:
        super().__init__()
        self.window_size = window_size
        self.shifted = shifted
        self.norm1 = nn.LayerNorm(dim)
        self.attn = WindowAttention(dim, window_size, num_heads)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x: Tensor) -> Tensor:
        b, h, w, c = x.shape
        ws = self.window_size
        y = self.norm1(x)
        pad_h, pad_w = (-h) % ws, (-w) % ws
        y = F.pad(y, (0, 0, 0, pad_w, 0, pad_h))  # padded tokens are zeros and take part unmasked
        hp, wp = h + pad_h, w + pad_w
        shift = ws // 2 if self.shifted else 0
        if shift:
            y = torch.roll(y, shifts=(-shift, -shift), dims=(1, 2))
        windows = y.view(b, hp // ws, ws, wp // ws, ws, c).permute(0, 1, 3, 2, 4, 5)
        windows = windows.reshape(b, hp // ws, wp // ws, ws * ws, c)
        windows = self.attn(windows, shifted=bool(shift))
        y = windows.view(b, hp // ws, wp // ws, ws, ws, c).permute(0, 1, 3, 2, 4, 5).reshape(b, hp, wp, c)
        if shift:
            y = torch.roll(y, shifts=(shift, shift), dims=(1, 2))
        x = x + y[:, :h, :w]
        return x + self.mlp(self.norm2(x))


class PatchMerging(nn.Module):
    """Halve the resolution: concatenate each 2x2 neighbourhood, normalise, project 4C -> 2C."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.reduction = nn.Linear(4 * dim, 2 * dim, bias=False)
        self.norm = nn.LayerNorm(4 * dim)

    def forward(self, x: Tensor) -> Tensor:
        _, h, w, _ = x.shape
        x = F.pad(x, (0, 0, 0, w % 2, 0, h % 2))
        x = torch.cat([x[:, 0::2, 0::2], x[:, 1::2, 0::2], x[:, 0::2, 1::2], x[:, 1::2, 1::2]], dim=-1)
        return self.reduction(self.norm(x))


class SwinStage(nn.Module):
    def __init__(self, dim: int, depth: int, num_heads: int, window_size: int, mlp_ratio: float,
                 downsample: bool) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(
            SwinBlock(dim, num_heads, window_size, shifted=i % 2 == 1, mlp_ratio=mlp_ratio) for i in range(depth)
        )
        self.downsample = PatchMerging(dim) if downsample else None


class PatchEmbed(nn.Module):
    def __init__(self, patch_size: int, embed_dim: int) -> None:
        super().__init__()
        self.patch_size = patch_size
        self.proj = nn.Conv2d(3, embed_dim, patch_size, stride=patch_size)
        self.norm = nn.LayerNorm(embed_dim)

    def forward(self, x: Tensor) -> Tensor:
        h, w = x.shape[-2:]
        p = self.patch_size
        x = F.pad(x, (0, (-w) % p, 0, (-h) % p))
        return self.norm(self.proj(x).permute(0, 2, 3, 1))


class SwinTransformer(nn.Module):
    """Four-stage Swin backbone returning NCHW feature maps at strides 4, 8, 16 and 32."""

    def __init__(self, config: SwinConfig) -> None:
        super().__init__()
        self.config = config
        self.out_channels = config.out_channels
        self.patch_embed = PatchEmbed(config.patch_size, config.embed_dim)
        last = len(config.depths) - 1
        self.layers = nn.ModuleList(
            SwinStage(dim, depth, heads, config.window_size, config.mlp_ratio, downsample=i < last)
            for i, (dim, depth, heads) in enumerate(
                zip(config.out_channels, config.depths, config.num_heads, strict=False)
            )
        )
        for i, dim in enumerate(config.out_channels):
            self.add_module(f"norm{i}", nn.LayerNorm(dim))

    def forward(self, x: Tensor) -> tuple[Tensor, ...]:
        x = self.patch_embed(x)
        features = []
        for i, stage in enumerate(cast(Iterable[SwinStage], self.layers)):
            for block in stage.blocks:
                x = block(x)
            features.append(getattr(self, f"norm{i}")(x).permute(0, 3, 1, 2).contiguous())
            if stage.downsample is not None:
                x = stage.downsample(x)
        return tuple(features)
