"""Routes of the jobs: queue a saved config, stop, resume, the log, and live progress (server-sent events)."""
from __future__ import annotations

import asyncio
import json
from typing import AsyncIterator

from fastapi import APIRouter, Depends, Request
from fastapi.responses import PlainTextResponse, StreamingResponse
from pydantic import BaseModel

from graftkit.apps.studio.progress import parse_line, read_from, read_progress
from graftkit.apps.studio.state import NotFound, Studio, studio
from graftkit.errors import GraftkitError
from graftkit.tasks.run_config import load_config

router = APIRouter(prefix="/api")
EVENT_EVERY_S = 0.5
FINAL = ("complete", "failed", "stopped", "interrupted", "cancelled")


def _job(s: Studio, job_id: int) -> dict:
    try:
        return s.store.get(job_id)
    except GraftkitError:
        raise NotFound(f"no job {job_id}") from None


@router.get("/jobs")
def jobs(s: Studio = Depends(studio)) -> dict:
    return {"jobs": [{**j, "progress": read_progress(s.runner.log_path(j["id"]))} for j in s.store.all()]}


class Launch(BaseModel):
    config: str


@router.post("/jobs")
def launch(body: Launch, s: Studio = Depends(studio)) -> dict:
    """Queue a config of the workspace (validated as ``graftkit train`` validates it)."""
    path = s.workspace.path(body.config)
    cfg = load_config(path)
    run_dir = s.workspace.path(s.workspace.relative(cfg.run_dir), must_exist=False)
    job_id = s.store.add(s.workspace.relative(path), cfg.name, s.workspace.relative(run_dir))
    s.runner.wake()
    return s.store.get(job_id)


@router.post("/jobs/{job_id}/stop")
def stop(job_id: int, s: Studio = Depends(studio)) -> dict:
    _job(s, job_id)
    return s.runner.stop(job_id)


@router.post("/jobs/{job_id}/resume")
def resume(job_id: int, s: Studio = Depends(studio)) -> dict:
    _job(s, job_id)
    job = s.store.requeue(job_id)
    s.runner.wake()
    return job


@router.get("/jobs/{job_id}/log", response_class=PlainTextResponse)
def job_log(job_id: int, s: Studio = Depends(studio)) -> str:
    _job(s, job_id)
    log = s.runner.log_path(job_id)
    return log.read_text(encoding="utf-8", errors="replace") if log.is_file() else ""


@router.get("/jobs/{job_id}/events")
async def events(job_id: int, request: Request, s: Studio = Depends(studio)) -> StreamingResponse:
    """``update`` events (the job, its progress and its new log lines) every half second; the stream ends after
    the job reaches a final state."""
    _job(s, job_id)
    return StreamingResponse(_updates(job_id, request, s), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache"})


async def _updates(job_id: int, request: Request, s: Studio) -> AsyncIterator[str]:
    offset, progress = 0, {}
    while not await request.is_disconnected():
        job = await asyncio.to_thread(s.store.get, job_id)
        text, offset = read_from(s.runner.log_path(job_id), offset)
        for line in text.splitlines():
            parse_line(line, progress)
        yield f"event: update\ndata: {json.dumps({'job': job, 'progress': progress, 'lines': text})}\n\n"
        if job["state"] in FINAL:
            return
        await asyncio.sleep(EVENT_EVERY_S)
