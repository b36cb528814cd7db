"""The FastAPI app factory: ``create_app(run_dir, settings)``.

Settings are read when the app is created (never at import), the model loads once per process
in the lifespan handler (:func:`graftkit.serve.service.lifespan`), and shutdown drains the
batchers (/v1/predict's and /v1/generate's) so in-flight requests finish. Routes live in ``graftkit/serve/routes/``.
"""
from __future__ import annotations

import logging
from typing import Optional

from fastapi import FastAPI

from graftkit.errors import ConfigError
from graftkit.serve import handlers
from graftkit.serve.middleware import BodySizeLimit, ObserveRequests
from graftkit.serve.routes import admin, embed, explain, generate, info, pages, predict
from graftkit.serve.service import Service, lifespan
from graftkit.serve.settings import ServeConfig, load_settings


def create_app(run_dir, settings: Optional[ServeConfig] = None) -> FastAPI:
    """Build the service for a run folder.

    Args:
        run_dir: a finished run folder (exported with ``graftkit export`` for the onnx backend).
        settings: service settings; default: read from GRAFTKIT_SERVE_* environment variables.

    Raises:
        ConfigError: no API keys configured (and anonymous access not allowed), or bad settings.
    """
    settings = settings or load_settings(run_dir=str(run_dir))
    service = Service(run_dir, settings)
    app = FastAPI(title="graftkit model service", version="1", lifespan=lifespan,
                  description=f"Predictions from the fine-tuned run '{service.model_name}'. Send an API key as "
                              "`X-API-Key: KEY` or `Authorization: Bearer KEY`.")
    app.state.service = service
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(ObserveRequests)  # added last = outermost: it also sees the 413s
    handlers.install(app)
    app.include_router(predict.build_router(service))
    app.include_router(explain.router)
    app.include_router(embed.build_router(service))
    app.include_router(generate.router)
    app.include_router(info.router)
    app.include_router(pages.router)
    app.include_router(admin.router)
    return app


def app_from_env() -> FastAPI:
    """Factory for ``uvicorn --factory`` (one call per worker process): settings from GRAFTKIT_SERVE_*."""
    settings = load_settings()
    if not settings.run_dir:
        raise ConfigError("GRAFTKIT_SERVE_RUN_DIR is not set (use `graftkit serve RUN_DIR`)")
    logging.getLogger("uvicorn.access").disabled = True  # our JSON access log replaces it
    return create_app(settings.run_dir, settings)
