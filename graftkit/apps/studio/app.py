"""The studio's FastAPI app factory: ``studio_app(workspace)`` serves the page and the JSON API over one workspace.

Settings are given to the factory (never read at import); the job runner starts with the app and stops with it
(the running job is stopped gracefully and shows as interrupted), and so do the local services of Deploy. Every error a user can fix is one JSON line
``{"error": ...}``: 400, 403 for a path outside the workspace, 404 for an unknown run or job, 413 for an upload
(or a text to explain) over the limit.
"""
from __future__ import annotations

import logging
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse

from graftkit.apps.studio.access import access_middleware
from graftkit.apps.studio.deploy import Exports, Services
from graftkit.apps.studio.heatmap import Explanations
from graftkit.apps.studio.jobs import JobStore
from graftkit.apps.studio.labelq import LabelDesk
from graftkit.apps.studio.page_html import page_html
from graftkit.apps.studio.routes_deploy import router as deploy_router
from graftkit.apps.studio.routes_jobs import router as jobs_router
from graftkit.apps.studio.routes_label import router as label_router
from graftkit.apps.studio.routes_new import router as new_router
from graftkit.apps.studio.routes_runs import router as runs_router
from graftkit.apps.studio.runner import JobRunner
from graftkit.apps.studio.state import NotFound, Studio
from graftkit.apps.studio.tryout import Tryout
from graftkit.apps.studio.workspace import PathRefused, TooLarge, Workspace
from graftkit.errors import GraftkitError

log = logging.getLogger("graftkit.studio")
DEFAULT_MAX_UPLOAD = 100 * 2**20


def studio_app(workspace: str | Path, token: str | None = None, max_upload: int = DEFAULT_MAX_UPLOAD) -> FastAPI:
    """The studio over ``workspace`` (created if missing); ``token``: required on every request when given."""
    ws = Workspace(workspace)
    store = JobStore(f"sqlite:///{ws.state / 'jobs.db'}")
    studio = Studio(ws, store, JobRunner(ws, store), Tryout(), max_upload, LabelDesk(ws), Exports(), Services(ws),
                    Explanations())

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        left = store.recover()
        if left:
            log.warning("studio: jobs %s were running when the studio ended; they show as interrupted", left)
        studio.runner.start()
        yield
        studio.services.close()
        studio.runner.close()

    app = FastAPI(title="graftkit studio", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan)
    app.state.studio = studio
    app.middleware("http")(access_middleware(token))
    _errors(app)
    for router in (runs_router, new_router, jobs_router, label_router, deploy_router):
        app.include_router(router)

    @app.get("/", response_class=HTMLResponse)
    def page() -> str:
        return page_html(ws.root.name)

    return app


def _errors(app: FastAPI) -> None:
    status = {PathRefused: 403, TooLarge: 413, NotFound: 404}

    @app.exception_handler(GraftkitError)
    async def refused(_: Request, exc: GraftkitError):
        return JSONResponse({"error": str(exc)}, status_code=status.get(type(exc), 400))

    @app.exception_handler(Exception)
    async def crashed(_: Request, exc: Exception):
        log.error("studio: %s: %s", type(exc).__name__, exc)
        return JSONResponse({"error": f"studio: unexpected {type(exc).__name__}: {exc}"}, status_code=500)
