"""BiRefNet's training objective: pixel losses on the final and side outputs, plus the gradient-reference
(outward reference) auxiliary loss.

Follows the official recipe: every output (side logits at strides 32/16/8 and the final logits) is
upsampled to the ground truth's size, passed through a sigmoid and scored with a weighted sum of BCE,
IoU, SSIM and MAE; the weights come from a task preset (``general`` leans on BCE/IoU, ``matting`` on
MAE/SSIM). The gradient heads learn ``sigmoid(laplacian(grey image) * side logits)`` of their level
with BCE: the image's edges, kept where that level believes the object is.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import cast

import torch
import torch.nn.functional as F
from torch import Tensor

from birefnet.errors import ConfigError

SSIM_WINDOW = 11
SSIM_SIGMA = 1.5
LAPLACIAN_KERNEL = 5


@dataclass(frozen=True)
class LossWeights:
    """Weight of each pixel loss (0 switches it off) and of the gradient-reference loss."""

    bce: float = 0.0
    iou: float = 0.0
    ssim: float = 0.0
    mae: float = 0.0
    mse: float = 0.0
    gradient: float = 1.0

    def with_overrides(self, text: str | None) -> LossWeights:
        """``"bce=30,ssim=5"`` -> these weights with those two replaced."""
        if not text:
            return self
        changes = {}
        for item in text.split(","):
            name, _, value = item.partition("=")
            name = name.strip()
            if name not in asdict(self):
                raise ConfigError(f"unknown loss {name!r} in --loss-weights; known: {', '.join(asdict(self))}")
            try:
                changes[name] = float(value)
            except ValueError:
                raise ConfigError(f"--loss-weights: {item!r} is not NAME=NUMBER") from None
        return replace(self, **changes)


# The official BiRefNet weights: DIS/general training, and the Matting task.
LOSS_PRESETS: dict[str, LossWeights] = {
    "general": LossWeights(bce=30.0, iou=0.5, ssim=10.0),
    "matting": LossWeights(mae=100.0, ssim=10.0),
}


def _gaussian_taps(device: torch.device, dtype: torch.dtype) -> Tensor:
    offsets = torch.arange(SSIM_WINDOW, device=device, dtype=dtype) - SSIM_WINDOW // 2
    g = torch.exp(-(offsets**2) / (2 * SSIM_SIGMA**2))
    return g / g.sum()


def ssim_loss(pred: Tensor, target: Tensor) -> Tensor:
    """1 - mean SSIM with an 11x11 Gaussian window (sigma 1.5), inputs (B, 1, H, W) in [0, 1].

    The five local statistics are blurred in one grouped, separable pass (two 11-tap convolutions
    instead of a 121-tap one: the 2-D kernel's backward pass dominated a CPU training step)."""
    taps = _gaussian_taps(pred.device, pred.dtype)
    stats = torch.cat([pred, target, pred * pred, target * target, pred * target], dim=1)
    pad = SSIM_WINDOW // 2
    stats = F.conv2d(stats, taps.view(1, 1, 1, -1).expand(5, 1, 1, SSIM_WINDOW), padding=(0, pad), groups=5)
    stats = F.conv2d(stats, taps.view(1, 1, -1, 1).expand(5, 1, SSIM_WINDOW, 1), padding=(pad, 0), groups=5)
    mu_p, mu_t, pp, tt, pt = stats.unbind(dim=1)
    var_p, var_t, cov = pp - mu_p**2, tt - mu_t**2, pt - mu_p * mu_t
    c1, c2 = 0.01**2, 0.03**2
    ssim = ((2 * mu_p * mu_t + c1) * (2 * cov + c2)) / ((mu_p**2 + mu_t**2 + c1) * (var_p + var_t + c2))
    return 1.0 - ssim.mean()


def iou_loss(pred: Tensor, target: Tensor) -> Tensor:
    """1 - soft IoU per image, averaged over the batch."""
    inter = (pred * target).sum(dim=(1, 2, 3))
    union = pred.sum(dim=(1, 2, 3)) + target.sum(dim=(1, 2, 3)) - inter
    return (1.0 - inter / union.clamp_min(1e-6)).mean()


def pixel_losses(logits: Tensor, target: Tensor, weights: LossWeights) -> dict[str, Tensor]:
    """Each switched-on pixel loss of one output, already weighted; logits at any size, target (B,1,H,W)."""
    if logits.shape[-2:] != target.shape[-2:]:
        logits = F.interpolate(logits, size=target.shape[-2:], mode="bilinear", align_corners=True)
    logits = logits.float()
    pred = torch.sigmoid(logits)
    terms: dict[str, Tensor] = {}
    if weights.bce:
        terms["bce"] = weights.bce * F.binary_cross_entropy_with_logits(logits, target)
    if weights.iou:
        terms["iou"] = weights.iou * iou_loss(pred, target)
    if weights.ssim:
        terms["ssim"] = weights.ssim * ssim_loss(pred, target)
    if weights.mae:
        terms["mae"] = weights.mae * (pred - target).abs().mean()
    if weights.mse:
        terms["mse"] = weights.mse * (pred - target).square().mean()
    return terms


def gradient_reference(image: Tensor) -> Tensor:
    """Laplacian (5x5) of the channel-mean of the network input: the edges the gradient heads learn."""
    import kornia

    return kornia.filters.laplacian(image.float().mean(dim=1, keepdim=True), kernel_size=LAPLACIAN_KERNEL)


def gradient_loss(gradient_logits: list[Tensor], side_logits: list[Tensor], image: Tensor) -> Tensor:
    """BCE between each gradient head and sigmoid(laplacian * that level's side logits), at input size."""
    reference = gradient_reference(image)
    size = reference.shape[-2:]
    total = reference.new_zeros(())
    for pred, side in zip(gradient_logits, side_logits, strict=False):
        label = torch.sigmoid(reference * F.interpolate(side.float(), size=size, mode="bilinear", align_corners=True))
        pred = F.interpolate(pred.float(), size=size, mode="bilinear", align_corners=True)
        total = total + F.binary_cross_entropy_with_logits(pred, label)
    return total


class BiRefNetLoss:
    """Total loss of one ``forward_train`` output against ground-truth alpha; also returns each part."""

    def __init__(self, weights: LossWeights) -> None:
        self.weights = weights

    def __call__(self, outputs: dict, target: Tensor, image: Tensor) -> tuple[Tensor, dict[str, float]]:
        target = target.float().clamp(0.0, 1.0)
        parts: dict[str, Tensor] = {}
        for logits in [*outputs["side_logits"], outputs["logits"]]:
            for name, value in pixel_losses(logits, target, self.weights).items():
                parts[name] = parts[name] + value if name in parts else value
        if self.weights.gradient and outputs["gradient_logits"]:
            parts["gradient"] = self.weights.gradient * gradient_loss(
                outputs["gradient_logits"], outputs["side_logits"], image)
        total = cast(Tensor, sum(parts.values()))  # the int 0 only when every weight is zero
        return total, {name: float(value.detach()) for name, value in parts.items()}
