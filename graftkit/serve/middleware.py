"""HTTP middleware: the request body size limit (413 before JSON parsing) and request observation
(request id, Prometheus counts and latency, one JSON access-log line per request)."""
from __future__ import annotations

import json
import re
import time
import uuid

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
        payload = json.dumps({"error": f"request body too large: the max_body_bytes limit is {self.max_bytes} "
                                       "bytes; send fewer or shorter texts per request",
                              "limit": {"name": "max_body_bytes", "value": self.max_bytes}}).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]})
        await send({"type": "http.response.body", "body": payload})


class ObserveRequests:
    """Give each request an id (the client's ``X-Request-ID`` when well-formed), count it, time it, log it.

    Plain ASGI (not ``BaseHTTPMiddleware``): no extra task per request, and the client's disconnect
    reaches the endpoint, which then drops its queued work.
    """

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        service = scope["app"].state.service
        rid = _header(scope, b"x-request-id")
        rid = rid if _REQUEST_ID.match(rid) else uuid.uuid4().hex
        state = scope.setdefault("state", {})
        state["request_id"] = rid
        token = request_id_var.set(rid)
        t0 = time.perf_counter()
        status, started = 500, False

        async def send_with_id(message):
            nonlocal status, started
            if message["type"] == "http.response.start":
                status, started = message["status"], True
                message["headers"] = [*message.get("headers", []), (b"x-request-id", rid.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            service.log.exception("unhandled error", extra={"x_path": scope["path"]})
            status = 500
            if not started:
                await JSONResponse({"error": "internal error", "request_id": rid}, status_code=500,
                                   headers={"X-Request-ID": rid})(scope, receive, send)
        finally:
            seconds = time.perf_counter() - t0
            path = getattr(scope.get("route"), "path", "unmatched")
            service.metrics.requests.labels(path, str(status)).inc()
            service.metrics.latency.labels(path).observe(seconds)
            service.log.info("request", extra={"x_method": scope["method"], "x_path": scope["path"],
                                               "x_status": status, "x_ms": round(seconds * 1000, 2),
                                               "x_key": state.get("key_id")})
            request_id_var.reset(token)


def _header(scope, name: bytes) -> str:
    for key, value in scope.get("headers") or []:
        if key == name:
            return value.decode("latin-1")
    return ""
