"""``POST /v1/generate``: text from a causal_lm / seq2seq run, whole or streamed as server-sent events.

Same API keys, rate limits, body limit, PII masking and request metrics as ``/v1/predict`` (they are
the app's dependencies and middleware). Concurrent requests are batched by the service's generation batcher:
static batching with per-row early exit (:class:`graftkit.serve.gen_batching.GenerationBatcher`), or with
``generate_batching: continuous`` iteration-level scheduling (:mod:`graftkit.serve.continuous`); more than
``generate_max_queue`` waiting requests get 503 with Retry-After.
With ``"stream": true`` each decoded token is one ``token`` event, then one ``done`` event; a client
that disconnects stops its row of the batch. ``max_new_tokens`` above the run's
``max_new_tokens_limit`` and prompts longer than the run's ``data.max_length`` tokens are 422s.
"""
import asyncio
import json
from typing import List, Literal, Optional, Union

from fastapi import APIRouter, Depends, HTTPException, Request
from pydantic import BaseModel, ConfigDict, Field
from sse_starlette.sse import EventSourceResponse

from graftkit.errors import ConfigError
from graftkit.serve.batching import BatcherClosed, Overloaded
from graftkit.serve.deps import authenticate, get_service, limit_error, model_for
from graftkit.serve.gen_batching import Job
from graftkit.serve.limits import LimitHit
from graftkit.serve.pii import mask_pii
from graftkit.serve.routes import ERROR_RESPONSES
from graftkit.serve.service import Service



class Message(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: Literal["system", "user", "assistant"]
    content: str = Field(min_length=1)


class GenerateRequest(BaseModel):
    """A prompt (chat runs: a list of messages) and optional decoding overrides, checked against the run."""

    model_config = ConfigDict(extra="forbid")
    prompt: Union[str, List[Message]] = Field(description="the input text; chat runs take a list of messages")
    stream: bool = Field(False, description="server-sent events: one 'token' event per decoded token, then 'done'")
    max_new_tokens: Optional[int] = Field(None, ge=1)
    num_beams: Optional[int] = Field(None, ge=1)
    do_sample: Optional[bool] = None
    temperature: Optional[float] = Field(None, gt=0)
    top_p: Optional[float] = Field(None, gt=0, le=1)
    repetition_penalty: Optional[float] = Field(None, gt=0)
    no_repeat_ngram_size: Optional[int] = Field(None, ge=0)


class GenerateResponse(BaseModel):
    request_id: str
    model: str
    generated: str
    tokens: int = Field(description="tokens generated")


router = APIRouter()


@router.post("/v1/generate", response_model=GenerateResponse, responses=ERROR_RESPONSES,
             summary="Generate text (optionally streamed as server-sent events)")
async def generate(body: GenerateRequest, request: Request, key_id: str = Depends(authenticate)):
    svc = get_service(request)
    generator = model_for(svc, "POST /v1/generate")
    batcher = svc.gen_batcher  # read with the generator, no await between: a reload swaps both
    prompt, config = checked_request(svc, generator, body)
    try:
        job = batcher.submit(generator.prompt_ids([prompt])[0], config, config.to_json_string())
    except Overloaded as err:
        hit = LimitHit("generate_max_queue", err.limit, "moment", err.retry_after)
        raise limit_error(503, hit) from None
    except BatcherClosed:
        raise HTTPException(503, "the service is shutting down", headers={"Retry-After": "1"}) from None
    if body.stream:
        return EventSourceResponse(_events(job), ping=15)
    try:
        text, n = await asyncio.wait_for(asyncio.shield(job.done), svc.settings.request_timeout_s)
    except asyncio.TimeoutError:
        job.cancel.set()
        raise HTTPException(504, f"generation took longer than request_timeout_s="
                            f"{svc.settings.request_timeout_s:g}") from None
    finally:
        if not job.done.done():  # cancelled (client gone) or timed out: stop this row
            job.cancel.set()
    return {"request_id": request.state.request_id, "model": svc.model_name, "generated": text, "tokens": n}


def checked_request(svc: Service, generator, body: GenerateRequest):
    """(prompt, GenerationConfig) of a request; 422 naming the limit for anything out of bounds."""
    overrides = body.model_dump(exclude={"prompt", "stream"})
    limit = generator.settings.max_new_tokens_limit
    if (body.max_new_tokens or 0) > limit:
        raise HTTPException(422, f"max_new_tokens={body.max_new_tokens} exceeds this model's limit of {limit}")
    chat = generator.takes_chat
    if chat != isinstance(body.prompt, list):
        raise HTTPException(422, "this model takes chat messages: send prompt as a list of {role, content}" if chat
                            else "this model takes a prompt string, not a list of messages")
    texts = [m.content for m in body.prompt] if chat else [body.prompt]
    if sum(len(t) for t in texts) > svc.settings.max_chars:
        raise HTTPException(422, f"the prompt exceeds max_chars={svc.settings.max_chars} characters")
    if svc.settings.mask_pii_input:
        texts = [mask_pii(t) for t in texts]
    if svc.settings.log_inputs:
        svc.log.info("inputs", extra={"x_texts": texts})  # the logger masks PII in every record
    prompt = [{"role": m.role, "content": t} for m, t in zip(body.prompt, texts)] if chat else texts[0]
    n = generator.prompt_tokens(prompt)
    if n > generator.max_length:
        raise HTTPException(422, f"the prompt is {n} tokens; this model accepts at most {generator.max_length} "
                            "(its data.max_length)")
    try:
        config = generator.config_for(**overrides)
    except ConfigError as err:
        raise HTTPException(422, str(err)) from None
    if body.stream and config.num_beams > 1:
        raise HTTPException(422, "stream: true needs num_beams=1 (beam search settles its text only at the end)")
    return prompt, config


async def _events(job: Job):
    """SSE events of one job; leaving early (client disconnected) cancels its row."""
    try:
        while True:
            chunk = await job.chunks.get()
            if chunk is None:
                break
            yield {"event": "token", "data": json.dumps(chunk, ensure_ascii=False)}
        try:
            text, n = await job.done
        except Exception as err:  # noqa: BLE001 - the stream has started: report in-band, as an event
            yield {"event": "error", "data": json.dumps(f"{type(err).__name__}: {err}")}
            return
        yield {"event": "done", "data": json.dumps({"generated": text, "tokens": n}, ensure_ascii=False)}
    finally:
        job.cancel.set()
