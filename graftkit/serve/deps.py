"""FastAPI dependencies shared by the routers: the service, API-key authentication, the loaded model.

Authentication is rate-limited twice: per key (``rate_limit_per_minute``/``rate_limit_burst``) and, for
key guessing, per client address (``auth_failures_per_minute`` failed attempts; after that every keyed
request from the address gets 429 until the window moves on, a correct key included).
"""
from __future__ import annotations

from typing import Optional

from fastapi import Depends, HTTPException, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from graftkit.serve.limits import LimitHit
from graftkit.tasks.matrix import ENTRIES, refusal
from graftkit.serve.security import KeyStore
from graftkit.serve.service import Service

api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False)
bearer = HTTPBearer(auto_error=False)


def get_service(request: Request) -> Service:
    """The :class:`Service` of the app that received ``request``."""
    return request.app.state.service


def limit_error(status: int, hit: LimitHit) -> HTTPException:
    """An HTTP error whose body names the limit, its value and (429/503) when to retry."""
    return HTTPException(status, {"error": hit.sentence(), "limit": {"name": hit.name, "value": hit.value},
                                  "retry_after_s": hit.retry_after},
                         headers={"Retry-After": str(hit.retry_after)})


def _presented(api_key: Optional[str], cred: Optional[HTTPAuthorizationCredentials]) -> Optional[str]:
    return api_key or (cred.credentials if cred else None)


async def _check_key(request: Request, keys: KeyStore, presented: str) -> str:
    service = get_service(request)
    address = request.client.host if request.client else "unknown"
    if hit := await service.limits.auth_blocked(address):
        service.log.warning("authentication blocked", extra={"x_event": "auth_blocked", "x_client": address})
        raise limit_error(429, hit)
    key_id = keys.identify(presented) if keys.hashes else None
    if key_id is None:
        await service.limits.auth_failed(address)
        # the presented key is never logged: a near-miss of a real key would leak it
        service.log.warning("invalid API key", extra={"x_event": "auth_failed", "x_client": address})
        raise HTTPException(403, "invalid API key")
    return key_id


async def authenticate(request: Request, api_key: Optional[str] = Depends(api_key_header),
                       cred: Optional[HTTPAuthorizationCredentials] = Depends(bearer)) -> str:
    """The caller's key id (safe to log); 401 without a key, 403 for a wrong one, 429 over a rate limit."""
    service = get_service(request)
    presented = _presented(api_key, cred)
    if not presented:
        if not service.settings.allow_anonymous:
            raise HTTPException(401, "missing API key: send X-API-Key or Authorization: Bearer",
                                headers={"WWW-Authenticate": "Bearer"})
        key_id = "anonymous"
    else:
        key_id = await _check_key(request, service.keys, presented)
    if hit := await service.limits.hit_key(key_id):
        raise limit_error(429, hit)
    request.state.key_id = key_id
    return key_id


async def authenticate_metrics(request: Request, api_key: Optional[str] = Depends(api_key_header),
                               cred: Optional[HTTPAuthorizationCredentials] = Depends(bearer)) -> str:
    """Like :func:`authenticate`, unless ``public_metrics`` opened ``/metrics`` to scrapers."""
    if get_service(request).settings.public_metrics:
        return "public"
    return await authenticate(request, api_key, cred)


async def authenticate_admin(request: Request, api_key: Optional[str] = Depends(api_key_header),
                             cred: Optional[HTTPAuthorizationCredentials] = Depends(bearer)) -> str:
    """An admin key's id (``admin_api_keys_file``); 404 when no admin keys are configured."""
    service = get_service(request)
    if not service.admin_keys.hashes:
        raise HTTPException(404, "the admin endpoints are off: start the server with --admin-keys-file FILE")
    presented = _presented(api_key, cred)
    if not presented:
        raise HTTPException(401, "missing admin key: send X-API-Key or Authorization: Bearer",
                            headers={"WWW-Authenticate": "Bearer"})
    key_id = await _check_key(request, service.admin_keys, presented)
    request.state.key_id = "admin:" + key_id
    return key_id


def model_for(service: Service, route: str):
    """The loaded model when it is ready and its task supports ``route`` (a route of graftkit/tasks/matrix.py):
    503 while it loads (or is stuck in a call), 400 naming what the run supports otherwise."""
    if not service.ready:
        raise HTTPException(503, service.not_ready_reason, headers={"Retry-After": "1"})
    task_cls = type(service.predictor.task)
    if not ENTRIES[route].supported_by(task_cls):
        raise HTTPException(400, refusal(task_cls, route))
    return service.predictor


def require_predictor(request: Request):
    """The loaded Predictor, or 503 while the model is still loading."""
    predictor = get_service(request).predictor
    if predictor is None:
        raise HTTPException(503, "the model is not ready")
    return predictor
