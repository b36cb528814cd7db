"""Routes of the Deploy page (ONNX export with parity, local services) and of batch prediction on Try."""
from __future__ import annotations

import json
from pathlib import Path

from fastapi import APIRouter, Depends
from fastapi.responses import FileResponse
from pydantic import BaseModel

from graftkit.apps.studio.routes_runs import _run
from graftkit.apps.studio.state import Studio, studio
from graftkit.apps.studio.workspace import PathRefused
from graftkit.errors import GraftkitError

router = APIRouter(prefix="/api")
PREVIEW_ROWS = 20


def _complete(s: Studio, name: str) -> Path:
    run = _run(s, name)
    if not run.is_complete:
        raise GraftkitError(f"run {name} has not finished; wait until it is complete")
    return run.path


class Export(BaseModel):
    precision: str = "fp32"  # fp32, or int8 (fp32 and int8)


@router.post("/runs/{name}/export")
def export(name: str, body: Export, s: Studio = Depends(studio)) -> dict:
    if body.precision not in ("fp32", "int8"):
        raise GraftkitError(f"precision: unknown '{body.precision}'; choose fp32 or int8")
    return s.exports.start(_complete(s, name), "int8" if body.precision == "int8" else None)


@router.get("/runs/{name}/export")
def export_state(name: str, s: Studio = Depends(studio)) -> dict:
    return s.exports.get(_run(s, name).path)


@router.get("/services")
def services(s: Studio = Depends(studio)) -> dict:
    return {"services": s.services.list()}


class Serve(BaseModel):
    backend: str = "torch"
    precision: str = "fp32"


@router.post("/runs/{name}/serve")
def serve(name: str, body: Serve, s: Studio = Depends(studio)) -> dict:
    """Start a local service; the reply's ``api_key`` is shown once and kept nowhere."""
    return s.services.start(_complete(s, name), body.backend, body.precision)


@router.post("/runs/{name}/serve/stop")
def serve_stop(name: str, s: Studio = Depends(studio)) -> dict:
    return s.services.stop(name)


@router.get("/runs/{name}/serve/log")
def serve_log(name: str, s: Studio = Depends(studio)) -> dict:
    return {"log": s.services.log_tail(name)}


class BatchFile(BaseModel):
    path: str  # a data file of the workspace (upload it first with PUT /api/data/NAME)


@router.post("/runs/{name}/predict-file")
def predict_file(name: str, body: BatchFile, s: Studio = Depends(studio)) -> dict:
    """Predict every row of the file into ``predictions/<run>-<file>.jsonl``; the reply previews the first rows."""
    run_dir, source = _complete(s, name), s.workspace.path(body.path)
    folder = s.workspace.path("predictions", must_exist=False)
    folder.mkdir(exist_ok=True)
    output = s.workspace.path(f"predictions/{name}-{source.stem}.jsonl", must_exist=False)
    rows = s.tryout.predict_file(run_dir, source, output)
    with output.open(encoding="utf-8") as fh:
        head = [json.loads(line) for _, line in zip(range(PREVIEW_ROWS), fh)]
    return {"output": s.workspace.relative(output), "rows": rows, "head": head}


@router.get("/download")
def download(path: str, s: Studio = Depends(studio)) -> FileResponse:
    """A file of predictions/ (batch results) as an attachment; any other path is refused."""
    target = s.workspace.path(path)
    if target.parent != s.workspace.root / "predictions" or not target.is_file():
        raise PathRefused(f"path '{path}' is refused: only files of predictions/ download")
    return FileResponse(target, media_type="application/x-ndjson", filename=target.name)
