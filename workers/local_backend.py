"""In-process matting: no Ray, one worker, the lowest latency and the easiest to debug."""

from __future__ import annotations

from typing import Iterable, Iterator

from birefnet.errors import ConfigError, UserError
from pipeline.frames import FrameBatch
from workers.backend import MAX_BATCH_ATTEMPTS, BackendConfig, BackendStats, BatchFailed, MattingBackend
from workers.matting import MattingWorker, PredictorFactory, WorkerHooks


class LocalBackend(MattingBackend):
    """Runs one ``MattingWorker`` in the calling thread; a batch is matted when the graph asks for it."""

    def __init__(self, build_predictor: PredictorFactory, config: BackendConfig = BackendConfig()):
        if config.workers not in (None, 1):
            raise ConfigError(f"workers: the local backend runs one worker, got {config.workers}; use --backend ray")
        hooks = config.hooks[0] if config.hooks else WorkerHooks()
        if hooks.exit_after_batches is not None:
            raise ConfigError("exit_after_batches would end this process; it is for Ray actors only")
        self.workers = 1
        self.stats = BackendStats()
        self._worker = MattingWorker(build_predictor(config.device), hooks)

    def matte(self, batches: Iterable[FrameBatch], alpha_dtype: str = "uint8") -> Iterator[FrameBatch]:
        for batch in batches:
            batch.alpha = self._matte_with_retry(batch, alpha_dtype)
            yield batch

    def _matte_with_retry(self, batch: FrameBatch, alpha_dtype: str):
        for attempt in range(1, MAX_BATCH_ATTEMPTS + 1):
            try:
                alpha, seconds = self._worker.matte(batch.images, alpha_dtype)
            except UserError:
                raise
            except Exception as exc:
                if attempt == MAX_BATCH_ATTEMPTS:
                    raise BatchFailed(batch, exc) from exc
                self.stats.retried_batches += 1
                continue
            self.stats.record(batch, seconds)
            return alpha
