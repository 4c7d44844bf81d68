"""Linear-light blending, the one maths behind every composite: the written output and the live preview.

sRGB values are decoded to linear light, mixed as alpha * F + (1 - alpha) * B, and encoded back; mixing
encoded values instead darkens soft edges (hair looks dark-fringed). 8-bit pictures go through lookup
tables, so a 720p preview costs milliseconds: decoding is a table of the 256 decoded values, encoding a
table over float32 bit patterns (``_Encoder``) that gives exactly what ``linear_to_srgb`` and rounding
give, float for float. Deeper or float pictures use the formulas themselves. Tensors in, tensors out
on their device; on the CPU the work runs through OpenCV and numpy (single passes, several times faster
than torch there), with the same IEEE float operations, so the results are the same.
"""

from __future__ import annotations

from functools import cache

import cv2
import numpy as np
import torch


def srgb_to_linear(x: torch.Tensor) -> torch.Tensor:
    """IEC 61966-2-1 sRGB decoding of values in [0, 1]."""
    return torch.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4)


def linear_to_srgb(x: torch.Tensor) -> torch.Tensor:
    """IEC 61966-2-1 sRGB encoding of values in [0, 1]."""
    x = x.clamp(0.0, 1.0)
    return torch.where(x <= 0.0031308, x * 12.92, 1.055 * x.clamp_min(1e-12) ** (1 / 2.4) - 0.055)


def peak_of(dtype: np.dtype | torch.dtype) -> float:
    """The value that stands for full intensity in ``dtype``: 255, 65535, or 1.0 for floats."""
    if dtype in (np.uint8, torch.uint8):
        return 255.0
    if dtype in (np.uint16, torch.uint16):
        return 65535.0
    return 1.0


def to_unit_float(x: np.ndarray | torch.Tensor, device: torch.device) -> torch.Tensor:
    """Values scaled to [0, 1] as float32 on ``device``."""
    tensor = x if isinstance(x, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(x))
    peak = peak_of(x.dtype)
    if tensor.dtype == torch.uint16:  # few ops support uint16: go through int32
        tensor = tensor.to(torch.int32)
    return tensor.to(device=device, dtype=torch.float32) / peak


@cache
def _decoded_bytes() -> torch.Tensor:
    """srgb_to_linear of the 256 8-bit values, computed as ``to_linear`` would compute them one by one."""
    return srgb_to_linear(to_unit_float(torch.arange(256, dtype=torch.uint8), torch.device("cpu")))


def to_linear(x: np.ndarray | torch.Tensor, device: torch.device) -> torch.Tensor:
    """Linear light (float32 on ``device``) of sRGB pictures: uint8, uint16 or floats in [0, 1]."""
    if x.dtype not in (np.uint8, torch.uint8):
        return srgb_to_linear(to_unit_float(x, device))
    tensor = x if isinstance(x, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(x))
    if device.type != "cpu":
        return _decoded_bytes().to(device)[tensor.to(device).long()]
    pixels = np.ascontiguousarray(tensor.numpy())
    if pixels.ndim < 2 or pixels.shape[-1] > 4:  # cv2.LUT wants (rows, columns[, up to 4 channels])
        return torch.from_numpy(_decoded_bytes().numpy()[pixels])
    decoded = cv2.LUT(pixels.reshape(-1, *pixels.shape[-2:]), _decoded_bytes().numpy())
    return torch.from_numpy(decoded.reshape(pixels.shape))


def mix(foreground: torch.Tensor, background: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """background + alpha * (foreground - background): alpha * F + (1 - alpha) * B in linear light, for
    (N, H, W, C) ``foreground`` and a ``background`` and ``alpha`` (N, H, W, 1) that broadcast to it."""
    if foreground.device.type != "cpu" or foreground.dtype != torch.float32:
        return background + alpha * (foreground - background)
    shape = foreground.shape
    rows = (-1, shape[-2], shape[-1])  # OpenCV's (rows, columns, channels)

    def full(x: torch.Tensor) -> np.ndarray:
        return np.ascontiguousarray(np.broadcast_to(x.numpy(), shape), np.float32).reshape(rows)

    bg = full(background)
    blended = cv2.add(bg, cv2.multiply(full(alpha), cv2.subtract(full(foreground), bg)))
    return torch.from_numpy(blended.reshape(shape))


class _Encoder:
    """round(linear_to_srgb(x) * 255) for float32 x, from tables over x's bit pattern.

    Floats in [0, 1] order like their bit patterns. ``thresholds[k]``: the smallest pattern that
    encodes to k or more (found by bisection on the formula itself). Patterns are cut into buckets of
    2^SHIFT; each bucket holds at most one threshold, so a pattern's code is its bucket's first code
    plus one past the bucket's threshold. The formula is evaluated on blocks of 256 floats, the
    vector path every full-size tensor takes; tests compare the tables with it float by float.
    """

    SHIFT = 16
    ONE = int(np.float32(1.0).view(np.int32))

    def __init__(self) -> None:
        lo = torch.zeros(256, dtype=torch.int64)
        hi = torch.full((256,), self.ONE, dtype=torch.int64)
        wanted = torch.arange(256)
        while bool((lo < hi).any()):
            middle = (lo + hi) // 2
            reached = self.reference(middle.to(torch.int32)) >= wanted
            hi, lo = torch.where(reached, middle, hi), torch.where(reached, lo, middle + 1)
        thresholds = lo.numpy()  # thresholds[0] = 0: everything encodes to 0 or more
        starts = np.arange((self.ONE >> self.SHIFT) + 1, dtype=np.int64) << self.SHIFT
        first = np.searchsorted(thresholds, starts, side="right") - 1
        past_end = np.append(thresholds, [self.ONE + 1, self.ONE + 1])
        ends = np.minimum(starts + (1 << self.SHIFT), self.ONE + 1)  # clamping leaves 1.0 alone in the last
        if np.any(past_end[first + 2] < ends):
            raise RuntimeError("sRGB encoding steps closer than one table bucket")
        self.first_code = first.astype(np.uint8)
        self.threshold = past_end[first + 1].astype(np.int32)

    @staticmethod
    def reference(bits: torch.Tensor) -> torch.Tensor:
        """The formula: codes of the floats with these int32 bit patterns (a multiple of 256 of them)."""
        return torch.round(linear_to_srgb(bits.view(torch.float32)) * 255.0).to(torch.int32)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """uint8 codes of float32 ``x``, any shape, on its device."""
        if x.device.type != "cpu":
            bits = x.view(torch.int32).clamp(0, self.ONE)  # negatives (sign bit set) encode as 0
            bucket = (bits >> self.SHIFT).long()
            first, threshold = (torch.from_numpy(t).to(x.device) for t in (self.first_code, self.threshold))
            return first[bucket] + (bits >= threshold[bucket]).to(torch.uint8)
        patterns = np.clip(np.ascontiguousarray(x.numpy()).view(np.int32), 0, self.ONE)
        buckets = patterns >> self.SHIFT
        codes = np.take(self.first_code, buckets)
        codes += np.take(self.threshold, buckets) <= patterns
        return torch.from_numpy(codes)


@cache
def _encoder() -> _Encoder:
    return _Encoder()


def from_linear(x: torch.Tensor, dtype: np.dtype | torch.dtype) -> torch.Tensor:
    """sRGB-encoded ``x`` (linear light, float32) as ``dtype`` values (uint8, uint16 or float), rounded
    to nearest; on ``x``'s device."""
    peak = peak_of(dtype)
    if peak == 255.0:
        return _encoder()(x)
    encoded = linear_to_srgb(x)
    return torch.round(encoded * peak).to(torch.int32) if peak > 1.0 else encoded
