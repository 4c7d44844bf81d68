"""The smoothed matte's soft pixels rebuilt along the frame's own colour edges.

The smoothed state is a thumbnail, so what it can say about an edge is no finer than a thumbnail cell:
added back to the frame as an upsampled change (``carry.with_correction``), it steadies the level of a
soft region but cannot hold an edge still within its cell, and most of a network's flicker is there (an
edge that moves and softens from frame to frame; docs/benchmarks.md). The guided filter's local linear
fit of alpha against colour (``birefnet.upsampling.linear_fit``, as the predictor's guided upsampling
uses it) is taken between the smoothed alpha thumbnail and the frame's colour thumbnail, brought to full
size and applied to the frame's own colours at its soft pixels. The edge then sits where the frame's
colours put it, at full resolution, with the smoothed state's steadiness; where the colours do not
explain the alpha (a subject the colour of what is behind it), a pixel keeps its corrected value in
proportion. Sure pixels (0 or 1) are never touched, as in the correction.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from birefnet.pixels import INTEGER_PEAKS
from birefnet.upsampling import EPSILON, RADIUS, linear_fit
from pipeline.temporal.analysis import FrameContext
from pipeline.temporal.carry import changed_window
from pipeline.temporal.fused import compiled
from pipeline.temporal.kernels import uses_opencv

SOFT = 0.5 / 255  # a float alpha in [SOFT, 1 - SOFT] is soft: what an 8-bit output writes as 1 to 254


def along_edges(alpha: torch.Tensor, smoothed: torch.Tensor, target: FrameContext, frame: torch.Tensor) -> torch.Tensor:
    """``alpha`` (1, 1, H, W), the frame's corrected alpha, with its soft pixels rebuilt along the edges of
    ``frame`` (H, W, 3) uint8 from the ``smoothed`` thumbnail (1, 1, h, w); in place, and returned. ``alpha``
    is float, or 8/16-bit on the CPU (then rounded once)."""
    if uses_opencv(alpha.device):
        _rebuild_on_the_cpu(alpha[0, 0].numpy(), INTEGER_PEAKS.get(alpha.dtype), smoothed, target.colour,
                            frame.numpy())
        return alpha
    height, width = alpha.shape[-2:]
    full = F.interpolate(_fitted_maps(target.colour, smoothed)[None], size=(height, width), mode="bilinear",
                         align_corners=False)[0]
    colour = frame.permute(2, 0, 1).float().div_(255.0)
    rebuilt = (full[:3] * colour).sum(0).add_(full[3]).clamp_(0.0, 1.0)
    plane = alpha[0, 0]
    soft = (plane >= SOFT) & (plane <= 1.0 - SOFT)
    plane.copy_(torch.where(soft, torch.lerp(plane, rebuilt, full[4].square()), plane))
    return alpha


def _fitted_maps(colour: torch.Tensor, smoothed: torch.Tensor) -> torch.Tensor:
    """The fit's maps (5, h, w): the coefficients of red, green and blue, the offset, and the share of
    alpha's variance the colours explain (the rebuild's weight is its square: the frame's own alpha is
    already at full size, so a faint strand the colours barely show must keep it, tests/test_temporal.py).
    On the CPU the fit's arithmetic is two compiled passes around OpenCV's window means, which compute what
    ``linear_fit`` does (torch's ~50 elementwise ops over these maps cost ~2.5 ms at 1080p); elsewhere
    ``linear_fit`` itself."""
    if not uses_opencv(smoothed.device):
        coefficients, offset, explained = linear_fit(colour, smoothed, RADIUS, EPSILON)
        return torch.cat([coefficients, offset, explained], 1)[0]
    size = (2 * RADIUS + 1,) * 2
    guide = np.ascontiguousarray(colour[0].numpy())
    alpha = np.ascontiguousarray(smoothed[0, 0].numpy())
    sums = np.empty((14, *alpha.shape), np.float32)
    _products_kernel(guide, alpha, sums)
    for plane in sums:
        cv2.blur(plane, size, dst=plane, borderType=cv2.BORDER_REPLICATE)
    maps = np.empty((5, *alpha.shape), np.float32)
    _solve_kernel(sums, np.float32(EPSILON), maps)
    for plane in maps:
        cv2.blur(plane, size, dst=plane, borderType=cv2.BORDER_REPLICATE)
    return torch.from_numpy(maps)


@compiled
def _products_kernel(guide, alpha, out):
    """The 14 maps whose window means the fit needs: r, g, b, alpha, r.alpha, g.alpha, b.alpha, the six
    colour moments rr, rg, rb, gg, gb, bb, and alpha squared."""
    height, width = alpha.shape
    for y in range(height):
        for x in range(width):
            r, g, b, a = guide[0, y, x], guide[1, y, x], guide[2, y, x], alpha[y, x]
            out[0, y, x], out[1, y, x], out[2, y, x], out[3, y, x] = r, g, b, a
            out[4, y, x], out[5, y, x], out[6, y, x] = r * a, g * a, b * a
            out[7, y, x], out[8, y, x], out[9, y, x] = r * r, r * g, r * b
            out[10, y, x], out[11, y, x], out[12, y, x] = g * g, g * b, b * b
            out[13, y, x] = a * a


@compiled
def _solve_kernel(means, epsilon, out):
    """Per pixel, from the window means of ``_products_kernel``'s maps: ``linear_fit``'s ridge regression
    (the 3x3 system by Cramer's rule), its offset and the share it explains, before their own window mean."""
    height, width = means.shape[1], means.shape[2]
    for y in range(height):
        for x in range(width):
            mr, mg, mb, ma = means[0, y, x], means[1, y, x], means[2, y, x], means[3, y, x]
            x_, y_, z_ = means[4, y, x] - mr * ma, means[5, y, x] - mg * ma, means[6, y, x] - mb * ma
            rr = means[7, y, x] - mr * mr + epsilon
            rg = means[8, y, x] - mr * mg
            rb = means[9, y, x] - mr * mb
            gg = means[10, y, x] - mg * mg + epsilon
            gb = means[11, y, x] - mg * mb
            bb = means[12, y, x] - mb * mb + epsilon
            c_rr, c_rg, c_rb = gg * bb - gb * gb, rb * gb - rg * bb, rg * gb - rb * gg
            c_gg, c_gb, c_bb = rr * bb - rb * rb, rg * rb - rr * gb, rr * gg - rg * rg
            determinant = rr * c_rr + rg * c_rg + rb * c_rb
            a_r = (c_rr * x_ + c_rg * y_ + c_rb * z_) / determinant
            a_g = (c_rg * x_ + c_gg * y_ + c_gb * z_) / determinant
            a_b = (c_rb * x_ + c_gb * y_ + c_bb * z_) / determinant
            variance = max(means[13, y, x] - ma * ma, np.float32(0.0))
            explained = (a_r * x_ + a_g * y_ + a_b * z_) / (variance + np.float32(1e-6))
            out[0, y, x], out[1, y, x], out[2, y, x] = a_r, a_g, a_b
            out[3, y, x] = ma - (a_r * mr + a_g * mg + a_b * mb)
            out[4, y, x] = min(max(explained, np.float32(0.0)), np.float32(1.0))


def _rebuild_on_the_cpu(plane: np.ndarray, peak: int | None, smoothed: torch.Tensor, colour: torch.Tensor,
                        frame: np.ndarray) -> None:
    """``along_edges`` on the CPU over the rows and columns that hold a soft pixel, widened to whole
    thumbnail cells and one cell more (so the bilinear maps equal the whole frame's there), with the fit
    taken over those cells and the ``2 * RADIUS`` more its two window means reach (so it equals the whole
    thumbnail's there); the whole frame when it is not a whole number of cells. The full-size work is one
    compiled pass that computes only at the soft pixels."""
    low, high = (SOFT, 1.0 - SOFT) if peak is None else (int(np.ceil(SOFT * peak)), int((1.0 - SOFT) * peak))
    soft = cv2.inRange(plane, low, high)
    window = changed_window(_cells_holding(soft, (smoothed.shape[-2], smoothed.shape[-1])), plane.shape, 0.5)
    if window is None:
        return
    cells, pixels = window
    reach = [slice(max(0, cell.start - 2 * RADIUS), cell.stop + 2 * RADIUS) for cell in cells]
    rows, columns = (slice(c.start - r.start, c.stop - r.start) for c, r in zip(cells, reach, strict=True))
    maps = _fitted_maps(colour[..., reach[0], reach[1]], smoothed[..., reach[0], reach[1]])[:, rows, columns]
    peak_value = np.float32(1.0 if peak is None else peak)
    _rebuild_kernel(plane[pixels], frame[pixels], np.ascontiguousarray(maps.numpy()), np.float32(low),
                    np.float32(high), peak_value, peak is not None)


@compiled
def _rebuild_kernel(plane, frame, maps, low, high, peak, rounded):
    """At each soft pixel of ``plane`` (a frame window; float, or integers of ``peak`` when ``rounded``):
    the five ``maps`` of its cells at the pixel, interpolated as OpenCV's and torch's bilinear resize do
    (pixel centres, edges replicated), the colour fit applied to ``frame``'s colours there, clipped, and the
    pixel moved towards it by the squared share. Everything else is read, not written: the soft pixels are
    a thin band of the window."""
    height, width = plane.shape
    cells_y, cells_x = maps.shape[1], maps.shape[2]
    scale_y, scale_x = np.float32(cells_y / height), np.float32(cells_x / width)
    half, zero, one, inverse = np.float32(0.5), np.float32(0.0), np.float32(1.0), np.float32(1.0 / 255.0)
    for y in range(height):
        sy = max((np.float32(y) + half) * scale_y - half, zero)
        y0 = min(int(sy), cells_y - 1)
        y1 = min(y0 + 1, cells_y - 1)
        wy = sy - np.float32(y0)
        for x in range(width):
            value = np.float32(plane[y, x])
            if value < low or value > high:
                continue
            sx = max((np.float32(x) + half) * scale_x - half, zero)
            x0 = min(int(sx), cells_x - 1)
            x1 = min(x0 + 1, cells_x - 1)
            wx = sx - np.float32(x0)
            rebuilt = _bilinear(maps, 3, y0, y1, x0, x1, wy, wx)
            for channel in range(3):
                weight = _bilinear(maps, channel, y0, y1, x0, x1, wy, wx)
                rebuilt += weight * (np.float32(frame[y, x, channel]) * inverse)
            rebuilt = min(max(rebuilt, zero), one)
            share = _bilinear(maps, 4, y0, y1, x0, x1, wy, wx)
            current = value / peak
            moved = current + share * share * (rebuilt - current)
            if rounded:
                plane[y, x] = np.rint(moved * peak)
            else:
                plane[y, x] = moved


def _cells_holding(mask: np.ndarray, cells: tuple[int, int]) -> np.ndarray:
    """1.0 for each thumbnail cell (of a grid ``cells`` (h, w)) whose part of the full-size ``mask`` is set,
    else 0.0 (whole rows and columns: a box around what is set, which is all the window needs)."""
    rows, columns = mask.any(axis=1), mask.any(axis=0)
    down, across = -(-mask.shape[0] // cells[0]), -(-mask.shape[1] // cells[1])
    row_cells = np.zeros(cells[0], np.float32)
    column_cells = np.zeros(cells[1], np.float32)
    row_cells[np.flatnonzero(rows) // down] = 1.0
    column_cells[np.flatnonzero(columns) // across] = 1.0
    return np.outer(row_cells, column_cells)


@compiled
def _bilinear(maps, k, y0, y1, x0, x1, wy, wx):
    """Map ``k`` between cells (y0, x0) and (y1, x1), at fractions ``wy`` and ``wx`` of the way."""
    top = maps[k, y0, x0] + wx * (maps[k, y0, x1] - maps[k, y0, x0])
    bottom = maps[k, y1, x0] + wx * (maps[k, y1, x1] - maps[k, y1, x0])
    return top + wy * (bottom - top)
