"""Routes of the Label page: suggest rows (a new sheet), answer and undo, import the answers, retrain."""
from __future__ import annotations

from fastapi import APIRouter, Depends
from pydantic import BaseModel

from graftkit.apps.labelling.select import STRATEGIES
from graftkit.apps.studio import runs as runs_mod
from graftkit.apps.studio.routes_runs import _run
from graftkit.apps.studio.state import Studio, studio
from graftkit.errors import GraftkitError

router = APIRouter(prefix="/api/label")


def _complete(s: Studio, name: str):
    run = _run(s, name)
    if not run.is_complete:
        raise GraftkitError(f"run {name} has not finished; label with a complete run")
    return run.path


@router.get("")
def label_home(s: Studio = Depends(studio)) -> dict:
    runs = [n for n, r in runs_mod.run_folders(s.workspace.runs).items() if r.is_complete]
    return {"runs": runs, "pools": s.workspace.data_files(), "strategies": list(STRATEGIES),
            "sheets": s.label.sheets()}


class Suggest(BaseModel):
    run: str
    pool: str = ""
    strategy: str = "hybrid"
    k: int = 20


@router.post("/select")
def suggest(body: Suggest, s: Studio = Depends(studio)) -> dict:
    return s.label.suggest(_complete(s, body.run), body.pool or None, body.strategy, body.k)


class SheetOf(BaseModel):
    run: str
    path: str


def _sheet(s: Studio, body: SheetOf):
    return s.label.sheet(_complete(s, body.run), s.workspace.path(body.path))


@router.get("/sheet")
def sheet(run: str, path: str, s: Studio = Depends(studio)) -> dict:
    return {"sheet": path, **_sheet(s, SheetOf(run=run, path=path)).view()}


class Answer(SheetOf):
    index: int
    label: str


@router.post("/answer")
def answer(body: Answer, s: Studio = Depends(studio)) -> dict:
    return {"sheet": body.path, **_sheet(s, body).answer(body.index, body.label)}


@router.post("/undo")
def undo(body: SheetOf, s: Studio = Depends(studio)) -> dict:
    index, view = _sheet(s, body).undo()
    return {"sheet": body.path, "index": index, **view}


@router.post("/import")
def merge(body: SheetOf, s: Studio = Depends(studio)) -> dict:
    return s.label.merge(_complete(s, body.run), s.workspace.path(body.path))


class Retrain(BaseModel):
    run: str


@router.post("/retrain")
def retrain(body: Retrain, s: Studio = Depends(studio)) -> dict:
    job = s.label.retrain(_complete(s, body.run), s.store)
    s.runner.wake()
    return s.store.get(job)
