"""HTTP middleware: the request body size limit (413 before JSON parsing) and request observation
(request id, Prometheus counts and latency, one JSON access-log line per request)."""
from __future__ import annotations

import json
import re
import time
import uuid

from fastapi import Request
from fastapi.responses import JSONResponse

from graftkit.serve.logs import request_id_var

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class BodySizeLimit:
    """Reject bodies over ``max_bytes`` (by Content-Length, or while reading a chunked body)."""

    def __init__(self, app, max_bytes: int):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT", "PATCH"):
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            return await self._reject(send)
        chunks, total = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            chunks.append(message.get("body", b""))
            total += len(chunks[-1])
            if total > self.max_bytes:
                return await self._reject(send)
            if not message.get("more_body"):
                break
        body = b"".join(chunks)
        sent = False

        async def replay():
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        return await self.app(scope, replay, send)

    async def _reject(self, send):
        payload = json.dumps({"error": f"request body too large: the limit is {self.max_bytes} bytes; "
                                       "send fewer or shorter texts per request"}).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]})
        await send({"type": "http.response.body", "body": payload})


async def observe_requests(request: Request, call_next):
    """Give each request an id (the client's ``X-Request-ID`` when well-formed), count it, time it, log it."""
    service = request.app.state.service
    rid = request.headers.get("x-request-id", "")
    rid = rid if _REQUEST_ID.match(rid) else uuid.uuid4().hex
    token = request_id_var.set(rid)
    request.state.request_id = rid
    t0 = time.perf_counter()
    status = 500
    try:
        response = await call_next(request)
        status = response.status_code
    except Exception:
        service.log.exception("unhandled error", extra={"x_path": request.url.path})
        response = JSONResponse({"error": "internal error", "request_id": rid}, status_code=500)
    finally:
        seconds = time.perf_counter() - t0
        path = getattr(request.scope.get("route"), "path", "unmatched")
        service.metrics.requests.labels(path, str(status)).inc()
        service.metrics.latency.labels(path).observe(seconds)
        service.log.info("request", extra={"x_method": request.method, "x_path": request.url.path,
                                           "x_status": status, "x_ms": round(seconds * 1000, 2),
                                           "x_key": getattr(request.state, "key_id", None)})
        request_id_var.reset(token)
    response.headers["X-Request-ID"] = rid
    return response
