"""App factories for the applications: the monitor service and the assistant service.

Each is a small FastAPI app over one application object (``app.state.application``). Requests pass
the same gates as ``graftkit serve``'s routes, by the same code: the body-size limit and request
observation middleware (``serve/middleware.py``), API-key authentication with per-key rate limits and
failed-authentication limiting (``serve/deps.py``, reached through ``app_deps.require_key``), and the
same error bodies (``serve/handlers.py``). The endpoints live in router modules (``routes/ingest.py``,
``routes/dashboard.py``, ``routes/chat.py``).
"""
from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI, Request
from fastapi.responses import Response

from graftkit.apps.assistant import Assistant
from graftkit.apps.monitor import Monitor
from graftkit.serve import handlers
from graftkit.serve.app_deps import application, require_key
from graftkit.serve.deps import authenticate_metrics
from graftkit.serve.gates import Gates
from graftkit.serve.middleware import BodySizeLimit, ObserveRequests
from graftkit.serve.routes import chat, dashboard, ingest
from graftkit.serve.settings import ServeConfig

__all__ = ["AppService", "application", "create_assistant_app", "create_monitor_app", "require_key"]


class AppService(Gates):
    """What ``serve/deps.py`` and the middleware read from ``app.state.service`` (settings, keys, limits,
    log, request metrics), for a service over an application rather than one run folder.

    Raises:
        ConfigError: no API keys configured (and anonymous access not allowed).
    """

    def limits_line(self) -> str:
        s = self.settings
        return (f"limits: per key {s.rate_limit_per_minute}/minute and {s.rate_limit_burst}/second; failed "
                f"authentications {s.auth_failures_per_minute}/minute per client address; max_body_bytes "
                f"{s.max_body_bytes}")


def _base_app(title: str, settings: ServeConfig, build: Callable[[], object], routers: list) -> FastAPI:
    service = AppService(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        await service.limits.check()  # an unreachable Redis fails the start, as in `graftkit serve`
        service.log.info(service.limits_line(), extra={"x_event": "limits"})
        app.state.application = await asyncio.to_thread(build)  # runs load once, off the event loop
        yield
        obj, app.state.application = app.state.application, None
        await asyncio.to_thread(obj.close)

    app = FastAPI(title=title, version="1", lifespan=lifespan)
    app.state.service, app.state.application = service, None
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(ObserveRequests)  # added last = outermost: it also sees the 413s
    handlers.install(app)

    @app.get("/healthz", include_in_schema=False)
    async def healthz():
        return {"status": "ok"}

    @app.get("/metrics", summary="Prometheus metrics (needs a key unless public_metrics)", response_class=Response,
             dependencies=[Depends(authenticate_metrics)])
    async def metrics(request: Request):
        data, content_type = application(request).metrics.render()
        requests, _ = service.metrics.render()  # request counts and latency, as on `graftkit serve`
        return Response(data + requests, media_type=content_type)

    for router in routers:
        app.include_router(router)
    return app


def create_monitor_app(cfg, settings: ServeConfig, build: Callable | None = None) -> FastAPI:
    """The monitor service: ``POST /v1/ingest``, ``GET /dashboard``, ``GET /v1/monitor/summary``, ``/metrics``.

    Args:
        cfg: a ``MonitorConfig``.
        settings: serve settings (keys, limits, host, port).
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
