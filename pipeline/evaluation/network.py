"""The errors of a real network: per-frame predictions of the bundled demo model, cached on disk.

The ``network`` family is what a single-image model really does to a clip, frame by frame: its
mistakes follow the image (texture it takes for foreground, motion blur, thin strands it half sees),
which no synthetic family imitates. The demo model is slow on a CPU, so each clip's predictions are
computed once and kept under ``cache_dir()`` as uint16 .npy files, named by what was predicted
(scene or real clip, size, frame count) and by digests of the frames, of the model file and of the code
and mode that upsample its matte; files are written atomically, so an interrupted run never leaves a
half-written cache entry.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path

import numpy as np

from birefnet.atomic import AtomicPath
from birefnet.export.cache import cache_root
from birefnet.weights import resolve_source

MODEL = "demo"
UPSAMPLE = "guided"  # the predictor's default; part of the cache key, since it changes every prediction
BATCH = 4


def cache_dir() -> Path:
    """``$BIREFNET_VIDEO_CACHE/temporal-eval`` (default ``~/.cache/birefnet-video/temporal-eval``)."""
    return cache_root() / "temporal-eval"


@lru_cache(maxsize=1)
def _predictor_digest() -> str:
    """The weights, and the code that brings their matte back to the frame's size."""
    import birefnet.upsampling

    files = (resolve_source(MODEL).path, Path(birefnet.upsampling.__file__))
    return hashlib.sha256(b"".join(path.read_bytes() for path in files)).hexdigest()[:16]


def _cache_file(key: str, images: np.ndarray) -> Path:
    content = hashlib.blake2b(np.ascontiguousarray(images).data, digest_size=16).hexdigest()
    named = f"{key}|{images.shape}|{content}|{_predictor_digest()}|{UPSAMPLE}"
    digest = hashlib.sha256(named.encode()).hexdigest()[:20]
    readable = "".join(c if c.isalnum() or c in "-_" else "_" for c in key)
    return cache_dir() / f"{readable}-{digest}.npy"


def network_predictions(images: np.ndarray, key: str) -> np.ndarray:
    """The demo model's alpha for every frame of ``images`` (N, H, W, 3) uint8: (N, H, W) float32.

    ``key`` is the readable part of the cache file's name; the entry is found by a digest of the frames
    themselves, of the model file and of the upsampling, so changed frames, weights or upsampling never
    read a stale entry. The first call per entry runs the model on the CPU, later ones read the cache.
    """
    path = _cache_file(key, images)
    if path.is_file():
        cached = np.load(path)
        if cached.shape == images.shape[:3]:
            return cached.astype(np.float32) / 65535.0
    from birefnet import Predictor

    predictor = Predictor(MODEL, device="cpu", upsample=UPSAMPLE)
    alphas = np.concatenate([predictor.predict(images[i : i + BATCH], dtype="uint16")
                             for i in range(0, len(images), BATCH)])
    path.parent.mkdir(parents=True, exist_ok=True)
    with AtomicPath(path) as temp, open(temp, "wb") as handle:
        np.save(handle, alphas)
    return alphas.astype(np.float32) / 65535.0
