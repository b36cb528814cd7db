"""The FastAPI app factory: ``create_app(run_dir, settings)``.

Settings are read when the app is created (never at import), the model loads once per
process in the lifespan handler, and shutdown drains the micro-batcher so in-flight requests
finish. No ``from __future__ import annotations`` here: FastAPI reads the endpoint signatures.
"""
import asyncio
import logging
import os
import re
import time
import uuid
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Optional

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from graftkit.errors import ConfigError
from graftkit.modeling.run_folder import RunFolder
from graftkit.serve import schemas
from graftkit.serve.batching import BatcherClosed, MicroBatcher
from graftkit.serve.limits import BodySizeLimit
from graftkit.serve.logs import get_logger, request_id_var
from graftkit.serve.metrics import ServiceMetrics
from graftkit.serve.pii import mask_pii
from graftkit.serve.playground import PLAYGROUND_HTML
from graftkit.serve.security import KeyStore, RateLimiter, load_key_hashes
from graftkit.serve.settings import ServeConfig, load_settings

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_ERRORS = {401: "missing API key", 403: "invalid API key", 413: "request body too large",
           422: "invalid request", 429: "rate limit exceeded"}
ERROR_RESPONSES = {code: {"model": schemas.ErrorResponse, "description": text} for code, text in _ERRORS.items()}


def _load_predictor(run_dir: Path, settings: ServeConfig):
    from graftkit.predictor import Predictor

    if settings.backend == "onnx":
        return Predictor(run_dir, "onnx", precision=settings.precision, threads=settings.threads)
    if settings.threads:
        import torch

        torch.set_num_threads(settings.threads)
    return Predictor(run_dir, "torch")


def create_app(run_dir, settings: Optional[ServeConfig] = None) -> FastAPI:
    """Build the service for a run folder.

    Args:
        run_dir: a finished run folder (exported with ``graftkit export`` for the onnx backend).
        settings: service settings; default: read from GRAFTKIT_SERVE_* environment variables.

    Raises:
        ConfigError: no API keys configured (and anonymous access not allowed), or bad settings.
    """
    settings = settings or load_settings(run_dir=str(run_dir))
    run = RunFolder(run_dir).require_model()
    keys = KeyStore(load_key_hashes(settings.api_keys, settings.api_keys_file, dict(os.environ)))
    if not keys.hashes and not settings.allow_anonymous:
        raise ConfigError("no API keys configured: set GRAFTKIT_API_KEYS, --api-keys-file FILE, "
                          "or --allow-anonymous for local experiments")
    log = get_logger(settings.log_level)
    metrics = ServiceMetrics()
    limiter = RateLimiter(settings.rate_limit_per_minute, settings.rate_limit_burst)
    request_model = schemas.predict_request_model(settings.max_texts, settings.max_chars)
    model_name = run.path.resolve().name

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        t0 = time.perf_counter()
        predictor = await asyncio.to_thread(_load_predictor, run.path, settings)
        app.state.predictor = predictor
        batcher = MicroBatcher(predictor.predict_batch, settings.max_batch_size, settings.max_wait_ms,
                               on_batch=_observe_batch, on_queue=metrics.queue.set)
        batcher.start()
        app.state.batcher = batcher
        labels = getattr(predictor.task, "labels", None)
        metrics.model.info({"run": model_name, "task": predictor.task.name, "backend": _backend_label(),
                            "labels": ",".join(map(str, labels or []))})
        log.info("model loaded", extra={"x_event": "startup", "x_run": str(run.path), "x_task": predictor.task.name,
                                        "x_backend": _backend_label(), "x_seconds": round(time.perf_counter() - t0, 2)})
        yield
        log.info("shutting down: finishing queued work", extra={"x_event": "shutdown"})
        await batcher.close()

    def _observe_batch(size: int, seconds: float) -> None:
        metrics.batch_size.observe(size)
        metrics.batch_latency.observe(seconds)
        metrics.texts.inc(size)

    def _backend_label() -> str:
        return settings.backend + (f"-{settings.precision}" if settings.backend == "onnx" else "")

    app = FastAPI(title="graftkit model service", version="1", lifespan=lifespan,
                  description=f"Predictions from the fine-tuned run '{model_name}'. Send an API key as "
                              "`X-API-Key: KEY` or `Authorization: Bearer KEY`.")
    app.state.settings = settings
    app.state.metrics = metrics
    app.state.batcher = None
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)

    api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False)
    bearer = HTTPBearer(auto_error=False)

    def authenticate(request: Request, api_key: Optional[str] = Depends(api_key_header),
                     cred: Optional[HTTPAuthorizationCredentials] = Depends(bearer)) -> str:
        presented = api_key or (cred.credentials if cred else None)
        if not presented:
            if settings.allow_anonymous:
                key_id = "anonymous"
            else:
                raise HTTPException(401, "missing API key: send X-API-Key or Authorization: Bearer",
                                    headers={"WWW-Authenticate": "Bearer"})
        else:
            key_id = keys.identify(presented) if keys.hashes else None
            if key_id is None:
                raise HTTPException(403, "invalid API key")
        allowed, wait = limiter.allow(key_id)
        if not allowed:
            raise HTTPException(429, f"rate limit of {settings.rate_limit_per_minute} requests/minute exceeded",
                                headers={"Retry-After": str(max(1, round(wait)))})
        request.state.key_id = key_id
        return key_id

    @app.middleware("http")
    async def observe(request: Request, call_next):
        rid = request.headers.get("x-request-id", "")
        rid = rid if _REQUEST_ID.match(rid) else uuid.uuid4().hex
        token = request_id_var.set(rid)
        request.state.request_id = rid
        t0 = time.perf_counter()
        status = 500
        try:
            response = await call_next(request)
            status = response.status_code
        except Exception:
            log.exception("unhandled error", extra={"x_path": request.url.path})
            response = JSONResponse({"error": "internal error", "request_id": rid}, status_code=500)
        finally:
            seconds = time.perf_counter() - t0
            route = request.scope.get("route")
            path = getattr(route, "path", "unmatched")
            metrics.requests.labels(path, str(status)).inc()
            metrics.latency.labels(path).observe(seconds)
            log.info("request", extra={"x_method": request.method, "x_path": request.url.path, "x_status": status,
                                       "x_ms": round(seconds * 1000, 2),
                                       "x_key": getattr(request.state, "key_id", None)})
            request_id_var.reset(token)
        response.headers["X-Request-ID"] = rid
        return response

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError):
        detail = [{"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
                  for e in exc.errors()]  # the offending input is not echoed (it may hold personal data)
        first = detail[0] if detail else {"loc": [], "msg": "invalid request"}
        where = ".".join(str(p) for p in first["loc"] if p != "body") or "body"
        message = f"{where}: {first['msg']}"
        if first.get("type") == "json_invalid":
            err = (exc.errors()[0].get("ctx") or {}).get("error", "")
            message = f"the request body is not valid JSON ({err}, at character {first['loc'][-1]})"
        return JSONResponse(status_code=422, content={
            "error": message, "detail": detail, "request_id": request.state.request_id})

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException):
        return JSONResponse(status_code=exc.status_code, headers=exc.headers,
                            content={"error": str(exc.detail),
                                     "request_id": getattr(request.state, "request_id", None)})

    @app.post("/v1/predict", response_model=schemas.PredictResponse, responses=ERROR_RESPONSES,
              summary="Predict a batch of texts")
    async def predict(body: request_model, request: Request, key_id: str = Depends(authenticate)):
        batcher: MicroBatcher | None = request.app.state.batcher
        if batcher is None or not batcher.running:
            raise HTTPException(503, "the model is not ready")
        predictor = request.app.state.predictor
        texts, pairs = list(body.texts), body.text_pairs
        pair_task = bool(predictor.cfg.data.text_pair_column)
        if pair_task != (pairs is not None):
            need = "give text_pairs (one per text)" if pair_task else "do not send text_pairs"
            kind = "text pairs" if pair_task else "single texts"
            raise HTTPException(422, f"this model was trained on {kind}; {need}")
        for i, t in enumerate(texts + list(pairs or [])):
            if not _encodable(t):
                raise HTTPException(422, f"text {i % len(texts)} is not valid Unicode (lone surrogate)")
        if settings.mask_pii_input:
            texts = [mask_pii(t) for t in texts]
            pairs = [mask_pii(t) for t in pairs] if pairs else None
        if settings.log_inputs:
            log.info("inputs", extra={"x_texts": texts + list(pairs or [])})
        inputs = list(zip(texts, pairs)) if pairs else texts
        try:
            preds = await batcher.submit(inputs)
        except BatcherClosed:
            raise HTTPException(503, "the service is shutting down") from None
        return {"request_id": request.state.request_id, "model": model_name, "predictions": preds}

    @app.get("/v1/model", response_model=schemas.ModelInfo, summary="What this service predicts")
    async def model_info(request: Request):
        predictor = _require_ready(request)
        return {"model": model_name, "task": predictor.task.name, "backend": _backend_label(),
                "labels": [str(x) for x in getattr(predictor.task, "labels", None) or []] or None,
                "max_texts": settings.max_texts, "max_chars": settings.max_chars,
                "max_batch_size": settings.max_batch_size,
                "pair_input": bool(predictor.cfg.data.text_pair_column)}

    @app.get("/healthz", response_model=schemas.Health, summary="Liveness: the process answers")
    async def healthz():
        return {"status": "ok"}

    @app.get("/readyz", response_model=schemas.Ready, responses={503: {"model": schemas.Ready}},
             summary="Readiness: the model is loaded and taking requests")
    async def readyz(request: Request):
        batcher = request.app.state.batcher
        ready = batcher is not None and batcher.running
        predictor = getattr(request.app.state, "predictor", None)
        body = {"ready": ready, "model": model_name, "task": predictor.task.name if predictor else "",
                "backend": _backend_label()}
        return JSONResponse(body, status_code=200 if ready else 503)

    @app.get("/metrics", summary="Prometheus metrics", response_class=Response)
    async def prometheus():
        data, content_type = metrics.render()
        return Response(data, media_type=content_type)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def playground():
        return HTMLResponse(PLAYGROUND_HTML.replace("{{MODEL}}", model_name))

    return app


def _require_ready(request: Request):
    predictor = getattr(request.app.state, "predictor", None)
    if predictor is None:
        raise HTTPException(503, "the model is not ready")
    return predictor


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def app_from_env() -> FastAPI:
    """Factory for ``uvicorn --factory`` (one call per worker process): settings from GRAFTKIT_SERVE_*."""
    settings = load_settings()
    if not settings.run_dir:
        raise ConfigError("GRAFTKIT_SERVE_RUN_DIR is not set (use `graftkit serve RUN_DIR`)")
    logging.getLogger("uvicorn.access").disabled = True  # our JSON access log replaces it
    return create_app(settings.run_dir, settings)
