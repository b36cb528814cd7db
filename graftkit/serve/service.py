"""The state of one running service: settings, keys, limits, metrics, and the model with its batchers.

``create_app`` builds one :class:`Service` and stores it as ``app.state.service``; routers and
dependencies reach it from the request (``request.app.state.service``), never through globals or
closures, so that everything tied to the loaded model (its batchers, the explainer) is swapped by a
reload and closed at shutdown in one place.
"""
from __future__ import annotations

import asyncio
import signal
import time
from contextlib import asynccontextmanager
from pathlib import Path

import torch

from graftkit.inference.runs import open_run
from graftkit.modeling.run_folder import RunFolder
from graftkit.serve import schemas
from graftkit.serve.batching import MicroBatcher, in_own_thread
from graftkit.serve.continuous import ContinuousBatcher, generation_batcher
from graftkit.serve.gates import Gates
from graftkit.serve.gen_batching import GenerationBatcher
from graftkit.serve.metrics import GenerationMetrics
from graftkit.serve.settings import ServeConfig
from graftkit.tasks.base import Task
from graftkit.tasks.capabilities import Generates, ScoresLabels, TagsEntities


def load_predictor(run_dir: Path, settings: ServeConfig):
    """The inference object of ``run_dir`` (``open_run``) with the back-end, precision and thread count of
    ``settings``: a Predictor, a Generator (``/v1/generate``) or an Embedder (``/v1/embed``)."""
    if settings.backend == "onnx":
        return open_run(run_dir, "onnx", command="info", precision=settings.precision, threads=settings.threads)
    if settings.threads:
        torch.set_num_threads(settings.threads)
    return open_run(run_dir, "torch", command="info")


def service_labels(task: Task) -> list[str]:
    """The label (or tag) names a served run predicts; [] for runs without a fixed set."""
    named = task.optional(ScoresLabels) or task.optional(TagsEntities)
    return [str(x) for x in named.labels] if named else []


class Service(Gates):
    """Everything one app instance needs; the model is loaded by :meth:`start` (the lifespan), not here.

    Raises:
        ConfigError: no API keys configured (and anonymous access not allowed).
    """

    def __init__(self, run_dir, settings: ServeConfig):
        self.run = RunFolder(run_dir).require_model()  # before the gates: a bad folder is the first error
        super().__init__(settings)
        self.request_model = schemas.predict_request_model(settings.max_texts, settings.max_chars)
        self.model_name = self.run.path.resolve().name
        self.predictor = None
        self.batcher: MicroBatcher | None = None
        self.gen_batcher: GenerationBatcher | ContinuousBatcher | None = None  # runs that generate (/v1/generate)
        self.gen_metrics = GenerationMetrics(self.metrics.registry)
        self.model_version = 0  # counts loads; what was built for an older model is rebuilt
        self.explainer: tuple[int, object] | None = None  # (model_version, Explainer), built by /v1/explain
        self.explainer_lock = asyncio.Lock()
        self.reload_lock = asyncio.Lock()

    @property
    def backend_label(self) -> str:
        """``torch``, ``onnx-fp32`` or ``onnx-int8``."""
        s = self.settings
        return s.backend + (f"-{s.precision}" if s.backend == "onnx" else "")

    @property
    def ready(self) -> bool:
        """Loaded and taking requests: not shutting down, and no model call stuck past model_timeout_s."""
        return self.batcher is not None and self.batcher.running and not self.batcher.stuck

    @property
    def not_ready_reason(self) -> str:
        if self.batcher is not None and self.batcher.stuck:
            return f"the model is stuck in a call longer than model_timeout_s={self.settings.model_timeout_s:g}"
        return "the model is not ready"

    def limits_line(self) -> str:
        """The limits in force, in one line (logged at startup)."""
        s = self.settings
        return (f"limits: per key {s.rate_limit_per_minute}/minute and {s.rate_limit_burst}/second "
                f"(storage {s.rate_limit_storage.split('@')[-1]}); failed authentications "
                f"{s.auth_failures_per_minute}/minute per client address; per request max_texts {s.max_texts}, "
                f"max_chars {s.max_chars}, max_body_bytes {s.max_body_bytes}, request_timeout_s "
                f"{s.request_timeout_s:g}; batching max_batch_size {s.max_batch_size}, max_wait_ms "
                f"{s.max_wait_ms:g}, max_queue {s.max_queue}, model_timeout_s {s.model_timeout_s:g}, "
                f"generate_wait_ms {s.generate_wait_ms:g}, generate_max_queue {s.generate_max_queue}")

    async def start(self) -> None:
        """Check the limits storage, load the model (in a thread, so the loop stays free), start the batcher."""
        await self.limits.check()
        self.log.info(self.limits_line(), extra={"x_event": "limits"})
        await self._load(self.run)

    async def _load(self, run: RunFolder) -> tuple[MicroBatcher | None, GenerationBatcher | None]:
        """Load ``run`` next to the current model and switch to it; the previous batchers (not closed yet)."""
        t0 = time.perf_counter()
        predictor = await in_own_thread(load_predictor, run.path, self.settings)
        s = self.settings
        batcher = MicroBatcher(predictor.predict_batch, s.max_batch_size, s.max_wait_ms, max_queue=s.max_queue,
                               on_batch=self._observe_batch, on_queue=self.metrics.queue.set,
                               call_timeout_s=s.model_timeout_s)
        batcher.start()
        gen_batcher = None
        if predictor.task.optional(Generates):
            gen_batcher = generation_batcher(predictor, s, on_batch=self.gen_metrics.batch_done,
                                             on_first_token=self.gen_metrics.first_token)
        old = (self.batcher, self.gen_batcher)
        self.batcher, self.gen_batcher, self.predictor, self.run = batcher, gen_batcher, predictor, run
        self.model_version += 1
        self.explainer = None  # the next /v1/explain builds one for the new model
        self.model_name = run.path.resolve().name
        self.metrics.model.info({"run": self.model_name, "task": predictor.task.name, "backend": self.backend_label,
                                 "labels": ",".join(service_labels(predictor.task))})
        self.log.info("model loaded", extra={
            "x_event": "startup" if old[0] is None else "reload", "x_run": str(run.path), "x_task": predictor.task.name,
            "x_backend": self.backend_label, "x_seconds": round(time.perf_counter() - t0, 2)})
        return old

    async def reload(self, run_dir: str | None = None) -> str:
        """Zero-downtime model swap: load ``run_dir`` (default: the served path again) next to the current
        model, switch new requests to it, and let requests already queued finish on the old one.

        Returns:
            the name of the model now served.
        Raises:
            ConfigError: ``run_dir`` is not a finished run folder (the old model keeps serving).
        """
        async with self.reload_lock:
            old = await self._load(RunFolder(run_dir or self.run.path).require_model())
            await self._close(*old)
            return self.model_name

    async def reload_logged(self) -> None:
        """:meth:`reload` for SIGHUP: errors are logged, never raised (the old model keeps serving)."""
        try:
            await self.reload()
        except Exception as err:
            self.log.error(f"reload failed, still serving {self.model_name}: {err}", extra={"x_event": "reload"})

    async def stop(self) -> None:
        """Stop taking work and finish what is queued (graceful shutdown)."""
        self.log.info("shutting down: finishing queued work", extra={"x_event": "shutdown"})
        await self._close(self.batcher, self.gen_batcher)
        self.explainer = None

    async def _close(self, batcher: MicroBatcher | None, gen_batcher: GenerationBatcher | None) -> None:
        """Finish the work each batcher holds, then stop it, so its thread lets go of its model."""
        if batcher is not None:
            await batcher.close()
        limit = self.settings.graceful_timeout_s
        if gen_batcher is not None and not await gen_batcher.aclose(limit):
            self.log.warning(f"generation still running after graceful_timeout_s={limit:g}; not waiting for it",
                             extra={"x_event": "shutdown"})

    def _observe_batch(self, size: int, seconds: float) -> None:
        self.metrics.batch_size.observe(size)
        self.metrics.batch_latency.observe(seconds)
        self.metrics.texts.inc(size)


@asynccontextmanager
async def lifespan(app):
    """FastAPI lifespan: start ``app.state.service``; SIGHUP reloads the model while the app runs."""
    service: Service = app.state.service
    await service.start()
    loop = asyncio.get_running_loop()
    try:  # only the main thread of a process may own signals (not so under TestClient)
        loop.add_signal_handler(signal.SIGHUP, lambda: loop.create_task(service.reload_logged()))
        hup = True
    except (NotImplementedError, RuntimeError, ValueError, AttributeError):
        hup = False
    try:
        yield
    finally:
        if hup:
            loop.remove_signal_handler(signal.SIGHUP)
        await service.stop()
