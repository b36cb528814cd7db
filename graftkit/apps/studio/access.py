"""Who may reach the studio: 127.0.0.1 by default; any other address only with a token.

Without a token the studio answers only requests addressed to a loopback host name (a page on another site that
points a DNS name at 127.0.0.1 is refused). With a token every request carries it: the header
``Authorization: Bearer TOKEN``, or the cookie set by opening ``/?token=TOKEN`` once. The token is compared in
constant time and never written to a log. Wrong tokens are rate-limited per client address (the ``limits``
library's moving window, as graftkit/serve/limits.py counts failed API keys): after ``AUTH_FAILURES_PER_MINUTE``
wrong tokens in a minute every request from that address gets 429 until the window moves on, a right token
included. (The studio sits below graftkit/serve in the layers, so it uses ``limits`` directly, not RateLimits.)
"""
from __future__ import annotations

import hmac
import ipaddress
import math
import time

from limits import RateLimitItemPerMinute
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from graftkit.errors import ConfigError

TOKEN_ENV = "GRAFTKIT_STUDIO_TOKEN"
MIN_TOKEN_LENGTH = 16
COOKIE = "graftkit_studio"
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1", "[::1]")
AUTH_FAILURES_PER_MINUTE = 10


def is_loopback(host: str) -> bool:
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_binding(host: str, token: str | None) -> None:
    """Refuse (one line) to listen on a non-loopback address without a token, or with a short one."""
    if token is not None and len(token) < MIN_TOKEN_LENGTH:
        raise ConfigError(f"studio: the token has {len(token)} characters; use at least {MIN_TOKEN_LENGTH} random "
                          "ones (python -c 'import secrets; print(secrets.token_urlsafe(24))')")
    if not is_loopback(host) and not token:
        raise ConfigError(f"studio: listening on {host} needs a token (set {TOKEN_ENV}); without one it binds "
                          "127.0.0.1 only")


def _host_name(request: Request) -> str:
    host = request.headers.get("host", "")
    return host.rsplit(":", 1)[0] if not host.endswith("]") else host


def _presented(request: Request) -> str:
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip()
    return request.cookies.get(COOKIE, "")


class FailedTokens:
    """Wrong tokens per client address in a moving one-minute window (memory storage: one studio process)."""

    def __init__(self, per_minute: int = AUTH_FAILURES_PER_MINUTE):
        self.item = RateLimitItemPerMinute(per_minute)
        self.limiter = MovingWindowRateLimiter(MemoryStorage())

    def blocked(self, address: str) -> int | None:
        """Seconds until ``address`` may try again, or None while it is under the limit."""
        if self.limiter.test(self.item, "studio-token", address):
            return None
        reset = self.limiter.get_window_stats(self.item, "studio-token", address).reset_time
        return max(1, math.ceil(reset - time.time()))

    def failed(self, address: str) -> None:
        self.limiter.hit(self.item, "studio-token", address)


def access_middleware(token: str | None, per_minute: int = AUTH_FAILURES_PER_MINUTE):
    """An HTTP middleware enforcing the rules above."""
    failures = FailedTokens(per_minute)

    async def middleware(request: Request, call_next) -> Response:
        if not token:
            if not is_loopback(_host_name(request)):
                return JSONResponse({"error": "studio: requests must address 127.0.0.1 or localhost"}, 403)
            return await call_next(request)
        address = request.client.host if request.client else "unknown"
        given = request.query_params.get("token") if request.url.path == "/" else None
        presented = given if given is not None else _presented(request)
        if presented and (wait := failures.blocked(address)) is not None:
            return JSONResponse({"error": f"studio: too many wrong tokens from {address} (the limit is {per_minute} "
                                          f"per minute); retry after {wait} s"}, 429,
                                headers={"Retry-After": str(wait)})
        if not hmac.compare_digest(presented.encode(), token.encode()):
            if presented:  # a missing token (a first visit) is no guess; the token itself is never logged
                failures.failed(address)
            return JSONResponse({"error": "studio: this studio needs its token; open /?token=TOKEN once, or send "
                                          "Authorization: Bearer TOKEN"}, 401)
        if given is not None:
            reply = RedirectResponse("/", status_code=303)
            reply.set_cookie(COOKIE, token, httponly=True, samesite="strict")
            return reply
        return await call_next(request)
    return middleware
