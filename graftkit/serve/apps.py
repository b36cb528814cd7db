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

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse, Response

from graftkit.apps.assistant import Assistant
from graftkit.apps.monitor import Monitor
from graftkit.errors import ConfigError
from graftkit.serve.app_deps import application, require_key
from graftkit.serve.routes import chat, dashboard, ingest
from graftkit.serve.security import KeyStore, load_key_hashes
from graftkit.serve.settings import ServeConfig

__all__ = ["application", "create_assistant_app", "create_monitor_app", "require_key"]

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
    return _base_app("graftkit monitor", settings, build or (lambda: Monitor(cfg)),
                     [ingest.router, dashboard.router])


def create_assistant_app(cfg, settings: ServeConfig, build: Callable | None = None) -> FastAPI:
    """The assistant service: ``POST /v1/chat`` and the chat page at ``GET /chat``.

    Args:
        cfg: an ``AssistantConfig``.
        settings: serve settings.
        build: ``() -> Assistant`` (default: ``Assistant.from_config(cfg)``).
    """
    return _base_app("graftkit assistant", settings, build or (lambda: Assistant.from_config(cfg)), [chat.router])
