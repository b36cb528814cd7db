"""Exception handlers: every error body is ``{"error": one sentence, "request_id": ...}``."""
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
    if first.get("type") == "json_invalid":
        err = (exc.errors()[0].get("ctx") or {}).get("error", "")
        message = f"the request body is not valid JSON ({err}, at character {first['loc'][-1]})"
    return JSONResponse(status_code=422, content={
        "error": message, "detail": detail, "request_id": request.state.request_id})


async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
    return JSONResponse(status_code=exc.status_code, headers=exc.headers,
                        content={"error": str(exc.detail), "request_id": getattr(request.state, "request_id", None)})


def install(app: FastAPI) -> None:
    """Register the handlers on ``app``."""
    app.add_exception_handler(RequestValidationError, invalid_request)
    app.add_exception_handler(HTTPException, http_error)
