"""FastAPI dependencies shared by the routers: the service, API-key authentication, the loaded model."""
from __future__ import annotations

from typing import Optional

from fastapi import Depends, HTTPException, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from graftkit.serve.service import Service

api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False)
bearer = HTTPBearer(auto_error=False)


def get_service(request: Request) -> Service:
    """The :class:`Service` of the app that received ``request``."""
    return request.app.state.service


def authenticate(request: Request, api_key: Optional[str] = Depends(api_key_header),
                 cred: Optional[HTTPAuthorizationCredentials] = Depends(bearer)) -> str:
    """The caller's key id (safe to log); 401 without a key, 403 for a wrong one, 429 over the rate limit."""
    service = get_service(request)
    settings = service.settings
    presented = api_key or (cred.credentials if cred else None)
    if not presented:
        if not settings.allow_anonymous:
            raise HTTPException(401, "missing API key: send X-API-Key or Authorization: Bearer",
                                headers={"WWW-Authenticate": "Bearer"})
        key_id = "anonymous"
    else:
        key_id = service.keys.identify(presented) if service.keys.hashes else None
        if key_id is None:
            raise HTTPException(403, "invalid API key")
    allowed, wait = service.limiter.allow(key_id)
    if not allowed:
        raise HTTPException(429, f"rate limit of {settings.rate_limit_per_minute} requests/minute exceeded",
                            headers={"Retry-After": str(max(1, round(wait)))})
    request.state.key_id = key_id
    return key_id


def require_predictor(request: Request):
    """The loaded Predictor, or 503 while the model is still loading."""
    predictor = get_service(request).predictor
    if predictor is None:
        raise HTTPException(503, "the model is not ready")
    return predictor
