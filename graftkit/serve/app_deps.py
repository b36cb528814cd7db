"""Request dependencies of the application services (serve/apps.py): the caller's key and the app object.

Kept apart from the factories so the routers (routes/ingest, dashboard, chat) import them without a cycle.
"""
from __future__ import annotations

from fastapi import Depends, HTTPException, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from graftkit.serve.security import KeyStore

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
