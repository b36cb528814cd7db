"""Exception handlers: every error body is ``{"error": one sentence, "request_id": ...}``; an error caused
by a limit also names it (``"limit": {"name", "value"}``), and a 429/503 says when to retry."""
from __future__ import annotations

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse


async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
    """422 naming the first offending field; the offending input is not echoed (it may hold personal data)."""
    detail = [{"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
              for e in exc.errors()]
    first = detail[0] if detail else {"loc": [], "msg": "invalid request"}
    where = ".".join(str(p) for p in first["loc"] if p != "body") or "body"
    message = f"{where}: {first['msg']}"
    ctx = exc.errors()[0].get("ctx") or {} if detail else {}
    if first.get("type") == "json_invalid":
        message = f"the request body is not valid JSON ({ctx.get('error', '')}, at character {first['loc'][-1]})"
    content = {"error": message, "detail": detail, "request_id": request.state.request_id}
    if first.get("type") in ("too_long", "string_too_long") and "max_length" in ctx:
        name = "max_texts" if first["type"] == "too_long" else "max_chars"
        content["limit"] = {"name": name, "value": ctx["max_length"]}
        content["error"] = f"{message} (the {name} limit is {ctx['max_length']})"
    return JSONResponse(status_code=422, content=content)


async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
    body = exc.detail if isinstance(exc.detail, dict) else {"error": str(exc.detail)}
    return JSONResponse(status_code=exc.status_code, headers=exc.headers,
                        content={**body, "request_id": getattr(request.state, "request_id", None)})


def install(app: FastAPI) -> None:
    """Register the handlers on ``app``."""
    app.add_exception_handler(RequestValidationError, invalid_request)
    app.add_exception_handler(HTTPException, http_error)
