"""The state of one running service: settings, keys, limits, metrics, and the model with its batcher.

``create_app`` builds one :class:`Service` and stores it as ``app.state.service``; routers and
dependencies reach it from the request (``request.app.state.service``), never through globals.
"""
from __future__ import annotations

import asyncio
import os
import time
from contextlib import asynccontextmanager
from pathlib import Path

from graftkit.errors import ConfigError
from graftkit.modeling.run_folder import RunFolder
from graftkit.serve import schemas
from graftkit.serve.batching import MicroBatcher
from graftkit.serve.logs import get_logger
from graftkit.serve.metrics import ServiceMetrics
from graftkit.serve.security import KeyStore, RateLimiter, load_key_hashes
from graftkit.serve.settings import ServeConfig


def load_predictor(run_dir: Path, settings: ServeConfig):
    """The Predictor for ``run_dir`` with the back-end, precision and thread count of ``settings``."""
    # inference pulls in torch/onnxruntime: loaded when the model loads, not when the app module is imported
    from graftkit.inference.predictor import Predictor

    if settings.backend == "onnx":
        return Predictor(run_dir, "onnx", precision=settings.precision, threads=settings.threads)
    if settings.threads:
        import torch

        torch.set_num_threads(settings.threads)
    return Predictor(run_dir, "torch")


class Service:
    """Everything one app instance needs; the model is loaded by :meth:`start` (the lifespan), not here.

    Raises:
        ConfigError: no API keys configured (and anonymous access not allowed).
    """

    def __init__(self, run_dir, settings: ServeConfig):
        self.settings = settings
        self.run = RunFolder(run_dir).require_model()
        self.keys = KeyStore(load_key_hashes(settings.api_keys, settings.api_keys_file, dict(os.environ)))
        if not self.keys.hashes and not settings.allow_anonymous:
            raise ConfigError("no API keys configured: set GRAFTKIT_API_KEYS, --api-keys-file FILE, "
                              "or --allow-anonymous for local experiments")
        self.log = get_logger(settings.log_level)
        self.metrics = ServiceMetrics()
        self.limiter = RateLimiter(settings.rate_limit_per_minute, settings.rate_limit_burst)
        self.request_model = schemas.predict_request_model(settings.max_texts, settings.max_chars)
        self.model_name = self.run.path.resolve().name
        self.predictor = None
        self.batcher: MicroBatcher | None = None

    @property
    def backend_label(self) -> str:
        """``torch``, ``onnx-fp32`` or ``onnx-int8``."""
        s = self.settings
        return s.backend + (f"-{s.precision}" if s.backend == "onnx" else "")

    @property
    def ready(self) -> bool:
        return self.batcher is not None and self.batcher.running

    async def start(self) -> None:
        """Load the model (in a thread, so the loop stays free) and start the batcher."""
        t0 = time.perf_counter()
        predictor = await asyncio.to_thread(load_predictor, self.run.path, self.settings)
        self.predictor = predictor
        batcher = MicroBatcher(predictor.predict_batch, self.settings.max_batch_size, self.settings.max_wait_ms,
                               on_batch=self._observe_batch, on_queue=self.metrics.queue.set)
        batcher.start()
        self.batcher = batcher
        labels = getattr(predictor.task, "labels", None)
        self.metrics.model.info({"run": self.model_name, "task": predictor.task.name, "backend": self.backend_label,
                                 "labels": ",".join(map(str, labels or []))})
        self.log.info("model loaded", extra={
            "x_event": "startup", "x_run": str(self.run.path), "x_task": predictor.task.name,
            "x_backend": self.backend_label, "x_seconds": round(time.perf_counter() - t0, 2)})

    async def stop(self) -> None:
        """Stop taking work and finish what is queued (graceful shutdown)."""
        self.log.info("shutting down: finishing queued work", extra={"x_event": "shutdown"})
        if self.batcher is not None:
            await self.batcher.close()

    def _observe_batch(self, size: int, seconds: float) -> None:
        self.metrics.batch_size.observe(size)
        self.metrics.batch_latency.observe(seconds)
        self.metrics.texts.inc(size)


@asynccontextmanager
async def lifespan(app):
    """FastAPI lifespan: start ``app.state.service`` and mirror its model on ``app.state``."""
    service: Service = app.state.service
    await service.start()
    app.state.predictor, app.state.batcher = service.predictor, service.batcher
    yield
    await service.stop()
