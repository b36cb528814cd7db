"""``GET /``: the playground page."""
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from graftkit.serve.deps import get_service
from graftkit.serve.playground import PLAYGROUND_HTML

router = APIRouter()


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
async def playground(request: Request):
    svc = get_service(request)
    mode = "generate" if getattr(getattr(svc.predictor, "task", None), "generative", False) else "predict"
    return HTMLResponse(PLAYGROUND_HTML.replace("{{MODEL}}", svc.model_name).replace("{{MODE}}", mode))
