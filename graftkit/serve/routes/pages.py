"""``GET /``: the playground page."""
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from graftkit.serve.deps import get_service
from graftkit.serve.playground import PLAYGROUND_HTML
from graftkit.tasks.capabilities import Generates

router = APIRouter()


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
async def playground(request: Request):
    svc = get_service(request)
    generates = svc.predictor is not None and svc.predictor.task.has(Generates)
    mode = "generate" if generates else "predict"
    return HTMLResponse(PLAYGROUND_HTML.replace("{{MODEL}}", svc.model_name).replace("{{MODE}}", mode))
