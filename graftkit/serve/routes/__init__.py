"""The service's HTTP routes, one APIRouter module per group of endpoints.

A router module exposes either ``router`` (an ``APIRouter``) or, when its request schema depends on
the service's settings, ``build_router(service) -> APIRouter``. Endpoints reach the service through
``graftkit.serve.deps`` (``get_service``, ``authenticate``, ``require_predictor``). Adding a router is one
``include_router`` line in :func:`graftkit.serve.app.create_app`. No ``from __future__ import
annotations`` in these modules: FastAPI reads the endpoint signatures.
"""
from graftkit.serve import schemas

_ERRORS = {401: "missing API key", 403: "invalid API key", 413: "request body too large",
           422: "invalid request", 429: "rate limit exceeded"}
ERROR_RESPONSES = {code: {"model": schemas.ErrorResponse, "description": text} for code, text in _ERRORS.items()}
