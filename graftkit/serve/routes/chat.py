"""``POST /v1/chat`` (one assistant turn), ``GET /v1/chat/{session_id}`` (the stored turns), ``GET /chat`` (the page).

A session belongs to the key that started it ("anonymous" when serving without keys): for another key it does not
exist (404, the same answer as for an unknown id, so ids cannot be probed).
"""
import asyncio

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, Field

from graftkit.apps.assistant.pipeline import UnknownSession
from graftkit.apps.store import StoreError
from graftkit.serve.app_pages import CHAT_HTML
from graftkit.serve.app_deps import application, require_key

router = APIRouter()


class ChatRequest(BaseModel):
    message: str = Field(..., min_length=1, max_length=2000)
    session_id: str | None = Field(None, max_length=64, description="omit to start a new conversation")


class ChatResponse(BaseModel):
    session_id: str
    turn: int
    reply: str
    reward: float | None = Field(None, description="the reward run's score of the reply for the message (higher: "
                                 "better); null when no reward_run is configured or nothing was scored (a handoff, "
                                 "no FAQ answers)")
    intent: str | None
    closest_intent: str | None
    confidence: float
    out_of_scope_score: float | None = Field(None, description="the intent run's detector score (None: no detector)")
    similarity: float | None
    followup: bool
    handoff: bool
    decided_by: str | None = Field(None, description="the signal that decided: detector, confidence, similarity, "
                                   "out_of_scope_class or handoff_intent")
    reason: str | None
    answers: list[dict]


@router.post("/v1/chat", response_model=ChatResponse, summary="One turn of a customer conversation")
async def chat(body: ChatRequest, request: Request, key_id: str = Depends(require_key)):
    if not body.message.strip():
        raise HTTPException(422, "message: empty")
    try:
        return await asyncio.to_thread(application(request).reply, body.message, body.session_id, key_id)
    except UnknownSession as e:
        raise HTTPException(404, str(e)) from None
    except StoreError as e:
        raise HTTPException(503, str(e), headers={"Retry-After": "5"}) from None


@router.get("/v1/chat/{session_id}", summary="The stored turns of a conversation")
async def history(session_id: str, request: Request, key_id: str = Depends(require_key)):
    turns = await asyncio.to_thread(application(request).history, session_id, key_id)
    if not turns:
        raise HTTPException(404, f"no conversation '{session_id}'")
    return {"session_id": session_id, "turns": turns}


@router.get("/chat", response_class=HTMLResponse, include_in_schema=False)
async def chat_page():
    return HTMLResponse(CHAT_HTML)
