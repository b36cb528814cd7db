"""``POST /v1/predict``: predictions for a batch of texts, through the micro-batcher."""
import asyncio

from fastapi import APIRouter, Depends, HTTPException, Request

from graftkit.serve import schemas
from graftkit.serve.batching import BatcherClosed, DeadlineExceeded, ModelTimeout, Overloaded, WorkerCrashed
from graftkit.serve.deps import authenticate, get_service, limit_error, model_for
from graftkit.serve.limits import LimitHit
from graftkit.serve.pii import mask_pii
from graftkit.serve.routes import ERROR_RESPONSES
from graftkit.serve.service import Service


def build_router(service: Service) -> APIRouter:
    """The predict router; its request schema carries the service's ``max_texts``/``max_chars`` limits."""
    router = APIRouter()
    request_model = service.request_model

    @router.post("/v1/predict", response_model=schemas.PredictResponse,
                 responses={**ERROR_RESPONSES, 400: ERROR_RESPONSES[422]},
                 summary="Predict a batch of texts")
    async def predict(body: request_model, request: Request, key_id: str = Depends(authenticate)):
        svc = get_service(request)
        model_for(svc, "POST /v1/predict")
        texts, pairs = checked_inputs(svc, body)
        if svc.settings.log_inputs:
            svc.log.info("inputs", extra={"x_texts": texts + list(pairs or [])})
        inputs = list(zip(texts, pairs)) if pairs else texts
        preds = await submit(svc, request, inputs)
        return {"request_id": request.state.request_id, "model": svc.model_name,
                "predictions": [p.to_dict() for p in preds]}

    return router


async def submit(service: Service, request: Request, inputs: list) -> list[dict]:
    """Predictions for ``inputs`` through the batcher, with the service's errors mapped to HTTP:
    queue full → 503 + Retry-After, deadline or a model call past model_timeout_s → 504, worker crash → 500,
    shutting down → 503.
    A client that disconnects meanwhile cancels the work (its queued texts are dropped)."""
    batcher, timeout = service.batcher, service.settings.request_timeout_s
    try:
        return await until_disconnect(request, batcher.submit(inputs, timeout=timeout))
    except Overloaded as err:
        raise limit_error(503, LimitHit("max_queue", err.limit, "moment", err.retry_after)) from None
    except ModelTimeout as err:
        limit = {"name": "model_timeout_s", "value": err.limit}
        raise HTTPException(504, {"error": str(err), "limit": limit}) from None
    except DeadlineExceeded as err:
        raise HTTPException(504, {"error": str(err), "limit": {"name": "request_timeout_s", "value": timeout}}) from None
    except WorkerCrashed as err:
        raise HTTPException(500, str(err)) from None
    except BatcherClosed:
        raise HTTPException(503, "the service is shutting down", headers={"Retry-After": "1"}) from None


async def until_disconnect(request: Request, work):
    """Await ``work``; cancel it when the client disconnects first (then 499-style: the task ends)."""
    task = asyncio.ensure_future(work)
    gone = asyncio.ensure_future(_disconnected(request))
    try:
        await asyncio.wait({task, gone}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        gone.cancel()
    if not task.done():
        task.cancel()
        raise HTTPException(499, "the client closed the connection")
    return task.result()


async def _disconnected(request: Request) -> None:
    while (await request.receive())["type"] != "http.disconnect":
        pass


def checked_inputs(service: Service, body, pair_task: bool | None = None) -> tuple[list[str], list[str] | None]:
    """The texts (and pairs) of ``body``, checked against the model's input kind (``pair_task``, default:
    the run's) and PII-masked if configured."""
    texts, pairs = list(body.texts), body.text_pairs
    if pair_task is None:
        pair_task = bool(service.predictor.cfg.data.text_pair_column)
    if pair_task != (pairs is not None):
        need = "give text_pairs (one per text)" if pair_task else "do not send text_pairs"
        kind = "text pairs" if pair_task else "single texts"
        raise HTTPException(422, f"this model was trained on {kind}; {need}")
    for i, t in enumerate(texts + list(pairs or [])):
        if not _encodable(t):
            raise HTTPException(422, f"text {i % len(texts)} is not valid Unicode (lone surrogate)")
    if service.settings.mask_pii_input:
        texts = [mask_pii(t) for t in texts]
        pairs = [mask_pii(t) for t in pairs] if pairs else None
    return texts, pairs


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
