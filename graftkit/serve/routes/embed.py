"""``POST /v1/embed``: unit-length vectors for a batch of texts (embedding runs only)."""
from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel

from graftkit.serve.deps import authenticate, get_service, model_for
from graftkit.serve.routes import ERROR_RESPONSES
from graftkit.serve.routes.predict import checked_inputs, submit
from graftkit.serve.service import Service


class EmbedResponse(BaseModel):
    request_id: str
    model: str
    dimension: int
    embeddings: list[list[float]]


def build_router(service: Service) -> APIRouter:
    """The embed router; it shares the predict request schema (and its limits)."""
    router = APIRouter()
    request_model = service.request_model

    @router.post("/v1/embed", response_model=EmbedResponse, responses={**ERROR_RESPONSES, 400: ERROR_RESPONSES[422]},
                 summary="Embed a batch of texts (embedding runs)")
    async def embed(body: request_model, request: Request, key_id: str = Depends(authenticate)):
        svc = get_service(request)
        model_for(svc, "POST /v1/embed")
        texts, _ = checked_inputs(svc, body, pair_task=False)  # each text is embedded on its own
        rows = await submit(svc, request, texts)
        vectors = [r.embedding for r in rows]
        return {"request_id": request.state.request_id, "model": svc.model_name,
                "dimension": len(vectors[0]) if vectors else 0, "embeddings": vectors}

    return router
