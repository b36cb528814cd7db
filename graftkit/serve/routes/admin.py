"""``POST /v1/admin/reload``: zero-downtime model swap (admin keys only; SIGHUP does the same)."""
from typing import Optional

from fastapi import APIRouter, Depends, HTTPException, Request
from pydantic import BaseModel, ConfigDict, Field

from graftkit.errors import GraftkitError
from graftkit.serve.deps import authenticate_admin, get_service

router = APIRouter()


class ReloadRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    run_dir: Optional[str] = Field(None, description="run folder to serve next (default: the served path, "
                                   "read again, e.g. after a symlink moved)")


class ReloadResponse(BaseModel):
    model: str
    previous: str


@router.post("/v1/admin/reload", response_model=ReloadResponse, dependencies=[Depends(authenticate_admin)],
             summary="Load a run folder next to the current model and switch to it when it is ready")
async def reload_model(request: Request, body: Optional[ReloadRequest] = None):
    svc = get_service(request)
    previous = svc.model_name
    try:
        model = await svc.reload(body.run_dir if body else None)
    except GraftkitError as err:
        raise HTTPException(422, f"reload refused, still serving {previous}: {err}") from None
    return {"model": model, "previous": previous}
