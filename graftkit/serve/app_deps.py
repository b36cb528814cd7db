"""Request dependencies of the application services (serve/apps.py): the caller's key and the app object.

Kept apart from the factories so the routers (routes/ingest, dashboard, chat) import them without a cycle.
"""
from __future__ import annotations

from fastapi import HTTPException, Request

from graftkit.serve.deps import authenticate

#: the key check of `graftkit serve`'s routes, not a copy: 401 without a key, 403 for a wrong one, 429 over
#: the per-key rate limits or the failed-authentication limit (reads ``app.state.service``, an AppService)
require_key = authenticate


def application(request: Request):
    """The running application object, or 503 while it is still loading its runs."""
    app_obj = getattr(request.app.state, "application", None)
    if app_obj is None:
        raise HTTPException(503, "the application is still loading")
    return app_obj
