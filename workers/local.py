"""In-process matting: no Ray, one worker, the lowest latency and the easiest to debug."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from birefnet.errors import ConfigError, UserError
from workers.base import MAX_BATCH_ATTEMPTS, BackendConfig, BackendStats, BatchFailed, Key, MattingBackend
from workers.matting import MattingWorker, PredictorFactory
from workers.payload import Alpha, Images


class LocalBackend(MattingBackend):
    """Runs one ``MattingWorker`` in the calling thread; a batch is matted when the caller asks for it."""

    def __init__(self, build_predictor: PredictorFactory, config: BackendConfig = BackendConfig()):
        if config.workers not in (None, 1):
            raise ConfigError(f"workers: the local backend runs one worker, got {config.workers}; use --backend ray")
        self.workers = 1
        self.stats = BackendStats()
        self._worker = MattingWorker(build_predictor(config.device))
        self._worker.max_chunk = config.inputs_per_call

    def matte(self, batches: Iterable[tuple[Key, Images]],
              alpha_dtype: str = "uint8") -> Iterator[tuple[Key, Alpha]]:
        for key, images in batches:
            yield key, self._matte_with_retry(key, images, alpha_dtype)

    def _matte_with_retry(self, key: object, images: Images, alpha_dtype: str) -> Alpha:
        attempt = 1
        while True:
            try:
                alpha, seconds = self._worker.matte(images, alpha_dtype)
            except UserError:
                raise
            except Exception as exc:
                if attempt == MAX_BATCH_ATTEMPTS:
                    raise BatchFailed(key, exc) from exc
                attempt += 1
                self.stats.retried_batches += 1
                continue
            self.stats.record(len(images), seconds)
            return alpha
