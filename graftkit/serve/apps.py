"""App factories for the applications: the monitor service and the assistant service.

Each is a small FastAPI app over one application object (``app.state.application``), with API-key
authentication (the serve settings' keys, hashed), ``/healthz`` and ``/metrics``. The endpoints
live in router modules (``routes/ingest.py``, ``routes/dashboard.py``, ``routes/chat.py``).
"""
from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse, Response
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from graftkit.errors import ConfigError
from graftkit.serve.security import KeyStore, load_key_hashes
from graftkit.serve.settings import ServeConfig

_api_key = APIKeyHeader(name="X-API-Key", auto_error=False)
_bearer = HTTPBearer(auto_error=False)


def require_key(request: Request, api_key: str | None = Depends(_api_key),
                cred: HTTPAuthorizationCredentials | None = Depends(_bearer)) -> str:
    """The caller's key id; 401 without a key, 403 for a wrong one (anonymous when the settings allow it)."""
    keys: KeyStore = request.app.state.keys
    presented = api_key or (cred.credentials if cred else None)
    if not presented:
        if request.app.state.settings.allow_anonymous:
            return "anonymous"
        raise HTTPException(401, "missing API key: send X-API-Key or Authorization: Bearer",
                            headers={"WWW-Authenticate": "Bearer"})
    key_id = keys.identify(presented) if keys.hashes else None
    if key_id is None:
        raise HTTPException(403, "invalid API key")
    return key_id


def application(request: Request):
    """The running application object, or 503 while it is still loading its runs."""
    app_obj = getattr(request.app.state, "application", None)
    if app_obj is None:
        raise HTTPException(503, "the application is still loading")
    return app_obj


def _base_app(title: str, settings: ServeConfig, build: Callable[[], object], routers: list) -> FastAPI:
    keys = KeyStore(load_key_hashes(settings.api_keys, settings.api_keys_file, dict(os.environ)))
    if not keys.hashes and not settings.allow_anonymous:
        raise ConfigError("no API keys configured: set GRAFTKIT_API_KEYS, --api-keys-file FILE, "
                          "or --allow-anonymous for local experiments")

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        app.state.application = await asyncio.to_thread(build)  # runs load once, off the event loop
        yield
        obj, app.state.application = app.state.application, None
        await asyncio.to_thread(obj.close)

    app = FastAPI(title=title, version="1", lifespan=lifespan)
    app.state.keys, app.state.settings, app.state.application = keys, settings, None

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException):
        return JSONResponse(status_code=exc.status_code, headers=exc.headers, content={"error": str(exc.detail)})

    @app.get("/healthz", include_in_schema=False)
    async def healthz():
        return {"status": "ok"}

    @app.get("/metrics", summary="Prometheus metrics", response_class=Response)
    async def metrics(request: Request):
        data, content_type = application(request).metrics.render()
        return Response(data, media_type=content_type)

    for router in routers:
        app.include_router(router)
    return app


def create_monitor_app(cfg, settings: ServeConfig, build: Callable | None = None) -> FastAPI:
    """The monitor service: ``POST /v1/ingest``, ``GET /dashboard``, ``GET /v1/monitor/summary``, ``/metrics``.

    Args:
        cfg: a ``MonitorConfig``.
        settings: serve settings (keys, host, port).
        build: ``() -> Monitor`` (default: ``Monitor(cfg)``); tests pass one with a fake scorer.
    """
    from graftkit.apps.monitor import Monitor
    from graftkit.serve.routes import dashboard, ingest

    return _base_app("graftkit monitor", settings, build or (lambda: Monitor(cfg)),
                     [ingest.router, dashboard.router])


def create_assistant_app(cfg, settings: ServeConfig, build: Callable | None = None) -> FastAPI:
    """The assistant service: ``POST /v1/chat`` and the chat page at ``GET /chat``.

    Args:
        cfg: an ``AssistantConfig``.
        settings: serve settings.
        build: ``() -> Assistant`` (default: ``Assistant.from_config(cfg)``).
    """
    from graftkit.apps.assistant import Assistant
    from graftkit.serve.routes import chat

    return _base_app("graftkit assistant", settings, build or (lambda: Assistant.from_config(cfg)), [chat.router])
