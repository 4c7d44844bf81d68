"""Training data: (image, ground-truth alpha) pairs from a folder or a list file, checked up front.

A folder holds ``im/`` and ``gt/`` with the same stems (gt: a binary mask or an alpha matte, 8- or
16-bit, any image format OpenCV reads). A list file holds one ``IMAGE GT`` pair per line (whitespace or
comma separated, paths relative to the list file). ``check_pairs`` opens every file once before
training starts and reports all problems together - missing partners, unreadable files, size
mismatches - so a bad item is found in seconds, not as a traceback hours into a run.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from birefnet.errors import InputError

from ..pixels import to_uint8
from .augment import Augmenter, resize_pair

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
MAX_LISTED_PROBLEMS = 10


@dataclass(frozen=True)
class Pair:
    image: Path
    gt: Path


def _images_by_stem(folder: Path) -> dict[str, Path]:
    return {p.stem: p for p in sorted(folder.iterdir()) if p.suffix.lower() in IMAGE_SUFFIXES}


def _problems_error(what: str, problems: list[str]) -> InputError:
    shown = "; ".join(problems[:MAX_LISTED_PROBLEMS])
    more = f"; and {len(problems) - MAX_LISTED_PROBLEMS} more" if len(problems) > MAX_LISTED_PROBLEMS else ""
    return InputError(f"{what}: {len(problems)} problem(s): {shown}{more}")


def _pairs_in_folder(root: Path) -> list[Pair]:
    image_dir, gt_dir = root / "im", root / "gt"
    for folder in (image_dir, gt_dir):
        if not folder.is_dir():
            raise InputError(f"dataset {root} has no {folder.name}/ folder (expected im/ and gt/ with the same stems)")
    images, gts = _images_by_stem(image_dir), _images_by_stem(gt_dir)
    problems = [f"{images[s].name} has no ground truth in gt/" for s in sorted(images.keys() - gts.keys())]
    problems += [f"gt/{gts[s].name} has no image in im/" for s in sorted(gts.keys() - images.keys())]
    if problems:
        raise _problems_error(f"dataset {root}", problems)
    return [Pair(images[s], gts[s]) for s in sorted(images)]


def _pairs_in_list(list_file: Path) -> list[Pair]:
    pairs, problems = [], []
    for number, line in enumerate(list_file.read_text().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        fields = line.replace(",", " ").split()
        if len(fields) != 2:
            problems.append(f"line {number}: expected 'IMAGE GT', got {line[:80]!r}")
            continue
        image, gt = ((list_file.parent / f).resolve() for f in fields)
        missing = [str(p) for p in (image, gt) if not p.is_file()]
        if missing:
            problems.append(f"line {number}: {' and '.join(missing)} not found")
            continue
        pairs.append(Pair(image, gt))
    if problems:
        raise _problems_error(f"list file {list_file}", problems)
    return pairs


def find_pairs(source: str | Path) -> list[Pair]:
    """The pairs of a dataset folder (im/ + gt/) or a list file; raises InputError listing every problem."""
    path = Path(source).expanduser()
    if path.is_dir():
        pairs = _pairs_in_folder(path)
    elif path.is_file():
        pairs = _pairs_in_list(path)
    else:
        raise InputError(f"dataset {path} does not exist (give a folder with im/ and gt/, or a list file)")
    if not pairs:
        raise InputError(f"dataset {path} holds no image pairs")
    return pairs


def read_image(path: Path) -> np.ndarray:
    """(H, W, 3) uint8 RGB; 16-bit images are scaled down, grey is expanded, alpha dropped."""
    data = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if data is None:
        raise InputError(f"cannot read image {path}")
    if data.dtype == np.uint16:
        data = to_uint8(data)
    elif data.dtype != np.uint8:
        raise InputError(f"image {path} has unsupported sample type {data.dtype}")
    if data.ndim == 2:
        return np.repeat(data[..., None], 3, axis=2)
    return cv2.cvtColor(data[..., :3], cv2.COLOR_BGR2RGB)


def read_alpha(path: Path) -> np.ndarray:
    """(H, W) float32 in [0, 1] from an 8/16-bit mask or matte (grey, RGB: first channel, RGBA: alpha)."""
    data = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if data is None:
        raise InputError(f"cannot read ground truth {path}")
    if data.ndim == 3:
        data = data[..., 3] if data.shape[2] == 4 else data[..., 0]
    scale = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}.get(data.dtype)
    if scale is None:
        raise InputError(f"ground truth {path} has unsupported sample type {data.dtype}")
    return data.astype(np.float32) / scale


def check_pairs(pairs: list[Pair], progress: Callable | None = None) -> None:
    """Open every file once; raise one InputError listing unreadable files and size mismatches."""
    problems = []
    for pair in progress(pairs) if progress else pairs:
        try:
            image, alpha = read_image(pair.image), read_alpha(pair.gt)
        except InputError as exc:
            problems.append(str(exc))
            continue
        if image.shape[:2] != alpha.shape:
            problems.append(f"{pair.image.name} is {image.shape[1]}x{image.shape[0]} but its ground truth "
                            f"{pair.gt.name} is {alpha.shape[1]}x{alpha.shape[0]}")
    if problems:
        raise _problems_error("dataset check", problems)


def to_tensors(image: np.ndarray, alpha: np.ndarray) -> tuple[Tensor, Tensor]:
    """uint8 (3, H, W) image and float32 (1, H, W) alpha: the network input is normalised on the device."""
    return torch.from_numpy(image).permute(2, 0, 1).contiguous(), torch.from_numpy(alpha)[None].float()


class PairDataset(Dataset):
    """Pairs as tensors. With an augmenter: random crops, deterministic in (seed, epoch, index);
    without: the whole image resized to ``size`` (validation)."""

    def __init__(self, pairs: list[Pair], size: tuple[int, int], augmenter: Augmenter | None = None,
                 seed: int = 0) -> None:
        self.pairs, self.size, self.augmenter, self.seed = pairs, size, augmenter, seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        pair = self.pairs[index]
        image, alpha = read_image(pair.image), read_alpha(pair.gt)
        if self.augmenter is None:
            return to_tensors(*resize_pair(image, alpha, self.size))
        rng = np.random.default_rng([self.seed, self.epoch, index])
        background = None
        if self.augmenter.config.background_prob > 0 and len(self.pairs) > 1:
            other = (index + 1 + int(rng.integers(len(self.pairs) - 1))) % len(self.pairs)
            background = read_image(self.pairs[other].image)
        return to_tensors(*self.augmenter(rng, image, alpha, background=background))
