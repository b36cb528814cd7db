"""``POST /v1/explain``: word attributions for one text (Integrated Gradients, ``graftkit.evaluate.explain``).

The response holds the explanation and its ``blocks`` (heading, words with attributions, completeness
delta), which the playground draws without knowing the task. A run whose task does not explain answers
400 naming what it supports. An explanation costs ``steps`` forward and backward passes, so it has its
own, tighter limits:
``explain_per_minute`` requests per key and minute, ``explain_max_chars`` characters and
``explain_max_steps`` integration steps; beyond them the answer is 429 or 422 naming the limit.
The torch weights are loaded once, on the first request (an ONNX-served run keeps its fast
path for /v1/predict); an export-only run folder answers 501.
"""
from __future__ import annotations

import dataclasses
import math
import time

from fastapi import APIRouter, Depends, HTTPException, Request
from limits import RateLimitItemPerMinute
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from graftkit.errors import GraftkitError
from graftkit.evaluate.explain import DEFAULT_STEPS, Explainer, require_torch_weights
from graftkit.serve.deps import authenticate, get_service, limit_error, model_for
from graftkit.serve.limits import LimitHit
from graftkit.serve.routes import ERROR_RESPONSES


class ExplainRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str = Field(..., min_length=1, description="the text to explain")
    text_pair: str | None = Field(None, description="second text of a pair-input run")
    target: str | None = Field(None, description="class / label / target column (default: the prediction)")
    steps: int = Field(DEFAULT_STEPS, ge=1, description="integration steps to start with (doubled until the "
                       "completeness delta is within 2%, at most explain_max_steps)")


def _too_much(name: str, value: int, got: int, what: str) -> HTTPException:
    return HTTPException(422, {"error": f"{what} {got} exceeds {name}={value}", "limit": {"name": name,
                                                                                          "value": value}})


async def explainer_for(svc) -> Explainer:
    """The service's Explainer for the model it serves now, built on first use (a reload or shutdown drops it)."""
    async with svc.explainer_lock:  # one load, even under concurrent first requests
        version = svc.model_version
        if svc.explainer is None or svc.explainer[0] != version:
            try:
                require_torch_weights(svc.run.path)
            except GraftkitError as err:
                raise HTTPException(501, str(err)) from None
            cap = svc.settings.explain_max_steps
            explainer = await run_in_threadpool(Explainer, svc.run.path, min(DEFAULT_STEPS, cap), cap)
            svc.explainer = (version, explainer)
        return svc.explainer[1]


router = APIRouter()


@router.post("/v1/explain", responses={**ERROR_RESPONSES, 501: {"description": "no torch weights"}},
             summary="Word attributions for one text")
async def explain(body: ExplainRequest, request: Request, key_id: str = Depends(authenticate)):
    svc = get_service(request)
    s = svc.settings
    model_for(svc, "POST /v1/explain")
    item = RateLimitItemPerMinute(s.explain_per_minute)
    if not await svc.limits.limiter.hit(item, svc.limits.namespace, "explain", key_id):
        stats = await svc.limits.limiter.get_window_stats(item, svc.limits.namespace, "explain", key_id)
        wait = max(1, math.ceil(stats.reset_time - time.time()))
        raise limit_error(429, LimitHit("explain_per_minute", s.explain_per_minute, "minute", wait))
    chars = len(body.text) + len(body.text_pair or "")
    if chars > s.explain_max_chars:
        raise _too_much("explain_max_chars", s.explain_max_chars, chars, "text length")
    if body.steps > s.explain_max_steps:
        raise _too_much("explain_max_steps", s.explain_max_steps, body.steps, "steps")
    ex = await explainer_for(svc)
    try:
        result = await run_in_threadpool(ex.explain, body.text, body.text_pair, body.target, body.steps)
    except GraftkitError as err:  # an unknown target class
        raise HTTPException(422, str(err)) from None
    blocks = [dataclasses.asdict(b) for b in ex.blocks(result)]
    return {"request_id": request.state.request_id, "model": svc.model_name, "explanation": result,
            "blocks": blocks}
