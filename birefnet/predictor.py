"""The user-facing inference API: frames in, alpha mattes out, batched and on the device.

A batch of uint8 frames is uploaded once as uint8, resized and normalised on the device, run through
the model's runtime (PyTorch under autocast for fp16/bf16, ONNX Runtime or TensorRT; ``runtimes``) and
the alpha is resized back to the frames' own size, all as whole-batch tensor operations.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from .boxes import DEFAULT_MARGIN, Region, frame_regions
from .errors import CheckpointError, ConfigError, InputError
from .model import BiRefNet
from .pixels import from_unit_float
from .runtimes.select import OpenedModel, open_runtime
from .runtimes.torch_runtime import TorchRuntime, pick_precision
from .upsampling import UPSAMPLING_MODES, guided_upsample

Resolution = tuple[int, int] | str  # (W, H) or "dynamic"
_OUTPUT_DTYPES = {"uint8": torch.uint8, "uint16": torch.uint16}
DEFAULT_RESOLUTION = (1024, 1024)


def pick_device(device: str | torch.device = "auto") -> torch.device:
    """``auto``: CUDA, then Apple MPS, then CPU."""
    if str(device) != "auto":
        device = torch.device(device)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ConfigError("device 'cuda' requested but no CUDA GPU is available")
        return device
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def parse_resolution(value: int | str | Sequence[int] | None, default: Resolution) -> Resolution:
    """``1024`` -> (1024, 1024); ``"2560x1440"`` -> (2560, 1440); ``"dynamic"``; None -> default."""
    if value is None:
        return default
    if isinstance(value, str):
        text = value.strip().lower()
        if text == "dynamic":
            return "dynamic"
        match = re.fullmatch(r"(\d+)(?:x(\d+))?", text)
        if not match:
            raise ConfigError(f"resolution must be N, WxH or 'dynamic', not {value!r}")
        width = int(match.group(1))
        size = (width, int(match.group(2) or width))
    elif isinstance(value, int):
        size = (value, value)
    else:
        size = tuple(int(v) for v in value)  # type: ignore[assignment]  # checked to be a pair below
    if len(size) != 2 or min(size) < 32 or size[0] % 32 or size[1] % 32:
        raise ConfigError(f"resolution {value!r}: width and height must be positive multiples of 32")
    return size


def dynamic_size(height: int, width: int, base: int) -> tuple[int, int]:
    """Working (W, H) that keeps the frame's aspect ratio at about ``base``^2 pixels, multiples of 32."""
    scale = (base * base / (height * width)) ** 0.5
    return max(32, round(width * scale / 32) * 32), max(32, round(height * scale / 32) * 32)


@dataclass
class _Batch:
    pixels: Tensor  # (N, 3, H, W) uint8 on the device
    as_numpy: bool
    single: bool


class Predictor:
    """Alpha mattes for batches of RGB frames.

    ``Predictor("hr-matting")`` or ``Predictor("my_finetune.pth", device="cuda", precision="fp16",
    resolution="2048x2048")``; then ``predict(frames)`` with frames (N, H, W, 3) uint8, numpy or torch.
    ``runtime``: torch, onnx (ONNX Runtime; a checkpoint is exported once and cached), tensorrt, or
    auto (onnx for an exported ``.onnx`` file, else torch). ``upsample``: how the matte comes back from the
    working size to a larger frame: guided (along the frame's edges, ``birefnet.upsampling``) or bilinear.
    """

    def __init__(
        self,
        source: str,
        device: str | torch.device = "auto",
        precision: str = "auto",
        resolution: int | str | Sequence[int] | None = None,
        compile: bool | str = False,
        channels_last: bool | None = None,
        runtime: str = "auto",
        upsample: str = "guided",
    ) -> None:
        target = pick_device(device)
        channels_last = target.type == "cuda" if channels_last is None else channels_last
        self._setup(open_runtime(str(source), runtime, target, precision, compile, channels_last), resolution,
                    upsample)

    @classmethod
    def from_model(
        cls,
        model: BiRefNet,
        device: str | torch.device = "auto",
        precision: str = "auto",
        resolution: int | str | Sequence[int] | None = None,
        compile: bool | str = False,
        channels_last: bool | None = None,
        upsample: str = "guided",
    ) -> Predictor:
        """A predictor around an in-memory model on the torch runtime (tests, training loops)."""
        target = pick_device(device)
        dtype = pick_precision(precision, target)
        channels_last = target.type == "cuda" if channels_last is None else channels_last
        predictor = cls.__new__(cls)
        predictor._setup(OpenedModel(TorchRuntime(model, target, dtype, compile, channels_last), None, dtype, None),
                         resolution, upsample)
        return predictor

    def _setup(self, opened: OpenedModel, resolution: int | str | Sequence[int] | None, upsample: str) -> None:
        if upsample not in UPSAMPLING_MODES:
            raise ConfigError(f"upsample must be one of {', '.join(UPSAMPLING_MODES)}, not {upsample!r}")
        self.upsample = upsample
        self.runtime = opened.runtime
        self.device = opened.runtime.device
        self.dtype = opened.dtype
        self.variant = variant = opened.variant
        self.model = opened.runtime.model if isinstance(opened.runtime, TorchRuntime) else None
        self.runtime_fixed = fixed = opened.fixed_resolution
        default: Resolution
        if fixed is not None:
            default = fixed
        elif variant is None:
            default = DEFAULT_RESOLUTION
        else:
            default = variant.resolution or "dynamic"
        self.resolution = parse_resolution(resolution, default)
        if fixed is not None and self.resolution != fixed:
            asked = self.resolution if isinstance(self.resolution, str) else "{}x{}".format(*self.resolution)
            raise ConfigError(f"the model is a static export at {fixed[0]}x{fixed[1]}; resolution {asked} needs "
                              "an export at that size or with --resolution dynamic")
        self.dynamic_base = variant.dynamic_base if variant is not None else DEFAULT_RESOLUTION[0]
        device = self.device
        self._mean = torch.tensor(opened.mean, device=device).view(1, 3, 1, 1) * 255.0
        self._inv_std = 1.0 / (torch.tensor(opened.std, device=device).view(1, 3, 1, 1) * 255.0)

    def working_size(self, height: int, width: int) -> tuple[int, int]:
        """(W, H) the model runs at for frames of this size."""
        if isinstance(self.resolution, str):  # "dynamic"
            return dynamic_size(height, width, self.dynamic_base)
        return self.resolution

    def _upload(self, frames) -> _Batch:
        """Stack, validate and move frames to the device as uint8 NCHW (one transfer per batch)."""
        as_numpy = not isinstance(frames, Tensor)
        if isinstance(frames, (list, tuple)):
            sizes = sorted({tuple(f.shape[:2]) for f in frames})
            if len(sizes) > 1:
                listed = " and ".join(f"{w}x{h}" for h, w in sizes[:2])
                raise InputError(f"a batch mixes frame sizes ({listed}); predict one frame size per call")
            as_numpy = not isinstance(frames[0], Tensor)
            frames = np.stack(frames) if as_numpy else torch.stack(list(frames))
        if as_numpy:
            frames = torch.from_numpy(np.ascontiguousarray(frames))
        single = frames.ndim == 3
        if single:
            frames = frames.unsqueeze(0)
        if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != torch.uint8 or frames.shape[0] == 0:
            raise InputError(f"frames must be uint8 RGB of shape (N, H, W, 3), "
                             f"got {tuple(frames.shape)} {frames.dtype}")
        pin = as_numpy and self.device.type == "cuda"
        pixels = (frames.pin_memory() if pin else frames).to(self.device, non_blocking=pin)
        return _Batch(pixels.permute(0, 3, 1, 2), as_numpy, single)

    def _normalised_input(self, pixels: Tensor, size: tuple[int, int] | None = None) -> Tensor:
        """uint8 NCHW pixels resized to ``size`` (W, H; default: the working size) and normalised."""
        if size is None:
            size = self.working_size(*pixels.shape[-2:])
        x = pixels.float()
        if (size[1], size[0]) != tuple(x.shape[-2:]):
            x = F.interpolate(x, size=(size[1], size[0]), mode="bilinear", align_corners=False, antialias=True)
        return (x - self._mean) * self._inv_std

    def _probabilities(self, logits: Tensor) -> Tensor:
        """sigmoid(logits) (N, 1, h, w), checked finite once for the whole model call."""
        alpha = torch.sigmoid(logits)
        if not bool(torch.isfinite(alpha).all()):  # NaN would quietly become an all-zero matte
            raise CheckpointError(f"the model produced non-finite alpha (NaN or infinity) at {self.dtype}; "
                                  "try --precision fp32, or check the checkpoint")
        return alpha

    def _resized(self, alpha: Tensor, pixels: Tensor, model_input: Tensor, upsample: str | None = None) -> Tensor:
        """Alpha (N, H, W) in [0, 1] at the size of ``pixels`` (uint8 NCHW) from probabilities (N, 1, h, w)
        of ``model_input``: along the frame's edges (``birefnet.upsampling``) where the frame is the larger
        and ``upsample`` (default: the predictor's own) says so, else bilinear."""
        height, width = pixels.shape[-2:]
        if (upsample or self.upsample) == "guided" and height * width > alpha.shape[-2] * alpha.shape[-1]:
            return guided_upsample(alpha, pixels, guide=model_input / self._inv_std + self._mean)
        if alpha.shape[-2:] != (height, width):
            alpha = F.interpolate(alpha, size=(height, width), mode="bilinear", align_corners=False)
        return alpha[:, 0].clamp_(0.0, 1.0)

    def _size_for(self, height: int, width: int, resolution: int | str | Sequence[int] | None) -> tuple[int, int]:
        """Working (W, H): the predictor's own, or ``resolution`` for this call (a coarse pass)."""
        if resolution is None:
            return self.working_size(height, width)
        asked = parse_resolution(resolution, self.resolution)
        if asked != self.resolution and self.runtime_fixed is not None:
            raise ConfigError(f"the model is a static export at {self.runtime_fixed[0]}x{self.runtime_fixed[1]}; "
                              f"it cannot also run at {resolution}")
        return dynamic_size(height, width, self.dynamic_base) if isinstance(asked, str) else asked

    @torch.inference_mode()
    def predict_tensor(self, pixels: Tensor, resolution: int | str | Sequence[int] | None = None,
                       upsample: str | None = None) -> Tensor:
        """Alpha (N, H, W) float32 in [0, 1] on the device for uint8 NCHW frames already on the device."""
        height, width = pixels.shape[-2:]
        model_input = self._normalised_input(pixels, self._size_for(height, width, resolution))
        return self._resized(self._probabilities(self.runtime(model_input)), pixels, model_input, upsample)

    @torch.inference_mode()
    def predict_regions(self, pixels: Tensor, regions: Sequence[Sequence[Region]],
                        upsample: str | None = None) -> Tensor:
        """Alpha (N, H, W) for uint8 NCHW frames on the device, the model run only on ``regions`` (per
        frame, whole pixels inside the frame): each crop resized to its own working size (crops that share
        one, as every crop does at a fixed resolution, go in one model call), each prediction brought back
        to its crop (guided by the crop's own pixels, as a whole frame is) and pasted with ``max``; 0
        elsewhere. So every crop's alpha is the model's on that crop alone, whatever else the call holds."""
        count, _, height, width = pixels.shape
        out = torch.zeros((count, height, width), dtype=torch.float32, device=pixels.device)
        crops = [(i, region) for i, frame_regions in enumerate(regions) for region in frame_regions]
        by_size: dict[tuple[int, int], list[tuple[int, Region]]] = {}
        for i, (x0, y0, x1, y1) in crops:
            by_size.setdefault(self.working_size(y1 - y0, x1 - x0), []).append((i, (x0, y0, x1, y1)))
        for size, group in by_size.items():
            batch = torch.cat([self._normalised_input(pixels[i:i + 1, :, y0:y1, x0:x1], size)
                               for i, (x0, y0, x1, y1) in group])
            probabilities = self._probabilities(self.runtime(batch))
            for k, (i, (x0, y0, x1, y1)) in enumerate(group):
                crop = self._resized(probabilities[k:k + 1], pixels[i:i + 1, :, y0:y1, x0:x1], batch[k:k + 1],
                                     upsample)[0]
                torch.maximum(out[i, y0:y1, x0:x1], crop, out=out[i, y0:y1, x0:x1])
        return out

    def predict(self, frames, dtype: str = "float32", boxes=None, margin: float = DEFAULT_MARGIN,
                resolution: int | str | Sequence[int] | None = None, upsample: str | None = None):
        """Alpha for a batch of frames at their own resolution.

        frames: (N, H, W, 3) uint8 RGB as numpy or torch (or a list of equal-size frames; a single
        (H, W, 3) frame gives an (H, W) alpha). Returns float32 in [0, 1], or uint8 / uint16 when
        ``dtype`` asks; numpy in gives numpy out, torch in gives a tensor on the predictor's device.
        ``boxes``: the model runs only on each box plus ``margin`` of its size (``birefnet.boxes``): one
        list of ``(x0, y0, x1, y1)`` boxes for every frame, or one list per frame, in pixels or fractions;
        alpha is 0 outside them. ``resolution`` and ``upsample``: the working size and upsampling of this
        call instead of the predictor's own (a coarse pass at a small size, bilinear).
        """
        if dtype not in ("float32", "uint8", "uint16"):
            raise ValueError(f"dtype must be float32, uint8 or uint16, not {dtype!r}")
        if upsample is not None and upsample not in UPSAMPLING_MODES:
            raise ValueError(f"upsample must be one of {', '.join(UPSAMPLING_MODES)}, not {upsample!r}")
        batch = self._upload(frames)
        if boxes is None:
            alpha = self.predict_tensor(batch.pixels, resolution, upsample)
        else:
            count, _, height, width = batch.pixels.shape
            alpha = self.predict_regions(batch.pixels, frame_regions(boxes, count, height, width, margin), upsample)
        if dtype != "float32":
            alpha = from_unit_float(alpha, _OUTPUT_DTYPES[dtype])
        if batch.single:
            alpha = alpha[0]
        if batch.as_numpy:
            return alpha.cpu().numpy()
        return alpha

    def estimate_foreground(self, frames, alpha):
        """Foreground colours with the old background's spill removed (blur fusion), same kind as frames."""
        from .foreground import estimate_foreground_pixels

        batch = self._upload(frames)
        alpha_t = alpha if isinstance(alpha, Tensor) else torch.from_numpy(np.ascontiguousarray(alpha))
        with torch.inference_mode():
            out = estimate_foreground_pixels(batch.pixels.permute(0, 2, 3, 1), alpha_t.to(self.device))
        if batch.single:
            out = out[0]
        return out.cpu().numpy() if batch.as_numpy else out
