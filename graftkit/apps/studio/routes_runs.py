"""Routes over run folders: the runs table, a run's page, its files (plots), mistakes, comparing, Try, and the
explanation heat-map of a text."""
from __future__ import annotations

import time

from fastapi import APIRouter, Depends
from fastapi.responses import FileResponse
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from graftkit.apps.studio import runs as runs_mod
from graftkit.apps.studio.state import NotFound, Studio, studio
from graftkit.apps.studio.workspace import PathRefused
from graftkit.errors import GraftkitError
from graftkit.modeling.run_folder import RunFolder

router = APIRouter(prefix="/api")
IMAGE_TYPES = {".png": "image/png", ".svg": "image/svg+xml", ".jpg": "image/jpeg"}


def _latest_jobs(s: Studio) -> dict[str, dict]:
    """Run name → its latest job (with ``now`` for the duration of a running one)."""
    now = time.time()
    return {j["run_name"]: {**j, "now": now} for j in s.store.all()}


def _run(s: Studio, name: str) -> RunFolder:
    """The run ``name`` of runs/; a run folder that is a link out of the workspace is refused (403)."""
    found = runs_mod.run_folders(s.workspace.runs).get(name)
    if found is None:
        raise NotFound(f"no run '{name}' in {s.workspace.relative(s.workspace.runs)}/")
    s.workspace.relative(found.path)
    return found


def _finished(s: Studio, name: str) -> RunFolder:
    run = _run(s, name)
    if not run.is_complete:
        raise GraftkitError(f"run {name} has not finished; try it once it is complete")
    return run


@router.get("/runs")
def list_runs(s: Studio = Depends(studio)) -> dict:
    jobs = _latest_jobs(s)
    folders = runs_mod.run_folders(s.workspace.runs)
    rows = [runs_mod.summary(name, run, jobs.get(name)) for name, run in folders.items()]
    rows += [{"name": name, "task": "", "base_model": "", "status": runs_mod.JOB_STATUS.get(j["state"], j["state"]),
              "metric": None, "value": None, "duration_s": None, "job": j["id"], "complete": False}
             for name, j in jobs.items() if name not in folders]
    return {"runs": rows}


@router.get("/runs/{name}")
def run_page(name: str, s: Studio = Depends(studio)) -> dict:
    run = _run(s, name)
    return {"summary": runs_mod.summary(name, run, _latest_jobs(s).get(name)), **runs_mod.detail(run)}


@router.get("/runs/{name}/file")
def run_file(name: str, path: str, s: Studio = Depends(studio)) -> FileResponse:
    """An image of the run folder (plots); any path outside the run folder is refused."""
    run = _run(s, name)
    target = s.workspace.path(f"{s.workspace.relative(run.path)}/{path}")
    if run.path not in target.parents:
        raise PathRefused(f"path '{path}' is refused: it leaves the run folder")
    if target.suffix.lower() not in IMAGE_TYPES or not target.is_file():
        raise GraftkitError(f"'{path}' is not an image of run {name}")
    return FileResponse(target, media_type=IMAGE_TYPES[target.suffix.lower()])


@router.get("/runs/{name}/mistakes")
def run_mistakes(name: str, split: str = "test", true: str = "", predicted: str = "",
                 s: Studio = Depends(studio)) -> dict:
    return runs_mod.mistakes(_run(s, name), split, true or None, predicted or None)


@router.get("/runs/{name}/prediction")
def run_prediction(name: str, split: str, file: str, line: int, s: Studio = Depends(studio)) -> dict:
    return {"prediction": runs_mod.prediction_of(_run(s, name), split, file, line)}


@router.get("/compare")
def compare(runs: str, s: Studio = Depends(studio)) -> dict:
    names = [n for n in runs.split(",") if n]
    if len(names) < 2:
        raise GraftkitError("choose two or more runs to compare")
    return runs_mod.compare({n: _run(s, n) for n in names})


class TryText(BaseModel):
    text: str


@router.post("/runs/{name}/predict")
def predict(name: str, body: TryText, s: Studio = Depends(studio)) -> dict:
    return s.tryout.predict(_finished(s, name).path, body.text)


class ExplainText(TryText):
    pair: str | None = None  # the second text of a pair-input run
    target: str | None = None  # a class, label or target column (default: the prediction)


@router.post("/runs/{name}/explain")
async def explain(name: str, body: ExplainText, s: Studio = Depends(studio)) -> dict:
    """Word attributions of one text (graftkit/apps/studio/heatmap.py); seconds of CPU, so in a worker thread."""
    run = _finished(s, name)
    return await run_in_threadpool(s.explanations.explain, run.path, body.text, body.pair, body.target)
