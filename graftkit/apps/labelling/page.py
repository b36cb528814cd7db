"""The labelling page (``graftkit label page``): answer a selection file row by row in the browser.

A local FastAPI app over one :class:`~graftkit.apps.labelling.sheet.Sheet`: ``GET /`` is the page (plain HTML +
JS, no external assets), ``GET /api/sheet`` the rows and progress, ``PUT /api/rows/{i}`` one answer and
``POST /api/undo`` takes the last one back; the file is saved atomically after each. The model's suggestion is
preselected: Enter accepts it, 1-9 choose a label, Backspace (or u) undoes, arrows move between rows.
"""
from __future__ import annotations

import html
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel

from graftkit.apps.labelling.page_html import PAGE_HTML
from graftkit.apps.labelling.pool import RunParts
from graftkit.apps.labelling.sheet import Sheet
from graftkit.errors import GraftkitError
from graftkit.tasks.capabilities import ScoresLabels



class Answer(BaseModel):
    label: str


def labelling_app(sheet_path: str | Path, run_dir: str | Path) -> FastAPI:
    """The page's app over ``sheet_path`` (a ``graftkit label select`` file), with ``run_dir``'s labels.

    Raises:
        UnsupportedError: the run's task has no labels to choose from. GraftkitError: a multi-label run.
    """
    parts = RunParts.open(run_dir)
    labels = parts.task.capability(ScoresLabels, "label page")
    if labels.multi_label:  # one choice per row here; a label set is answered in the CSV itself
        raise GraftkitError(f"label page: {parts.run.path} is multi-label and the page picks one label per row; "
                            f"fill the label column of {sheet_path} directly (labels joined by '|')")
    sheet = Sheet(sheet_path, labels.labels, parts.cfg.data)
    app = FastAPI(title="graftkit labelling", docs_url=None, redoc_url=None)

    @app.exception_handler(GraftkitError)
    async def refused(_, exc: GraftkitError):
        return JSONResponse({"error": str(exc)}, status_code=400)

    @app.get("/", response_class=HTMLResponse)
    def page() -> str:
        return PAGE_HTML.replace("{{FILE}}", html.escape(sheet.path.name))

    @app.get("/api/sheet")
    def view() -> dict:
        return sheet.view()

    @app.put("/api/rows/{index}")
    def answer(index: int, body: Answer) -> dict:
        return sheet.answer(index, body.label)

    @app.post("/api/undo")
    def undo() -> dict:
        index, view = sheet.undo()
        return {"index": index, **view}

    return app
