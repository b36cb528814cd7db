"""Rate limits through the ``limits`` library: per API key, and failed authentications per client address.

Storage is ``memory://`` for one process, or ``redis://HOST:PORT`` so that every worker and replica
counts against the same windows. Moving windows: a key may send ``rate_limit_per_minute`` requests in
any 60 s and ``rate_limit_burst`` in any second.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass

from limits import RateLimitItem, RateLimitItemPerMinute, RateLimitItemPerSecond
from limits.storage import storage_from_string
from limits.aio.strategies import MovingWindowRateLimiter

from graftkit.errors import ConfigError
from graftkit.serve.settings import ServeConfig


@dataclass
class LimitHit:
    """Which limit refused a request, its value, and when to retry (seconds)."""

    name: str
    value: int
    per: str
    retry_after: int

    def sentence(self) -> str:
        return (f"{self.name} exceeded: the limit is {self.value} per {self.per}; "
                f"retry after {self.retry_after} s")


def _storage(uri: str):
    scheme = uri.split("://", 1)[0]
    if scheme not in ("memory", "redis", "rediss", "redis+unix"):
        raise ConfigError(f"rate_limit_storage: unsupported '{uri}'; use memory:// or redis://HOST:PORT")
    options = {} if scheme == "memory" else {"implementation": "redispy"}
    return storage_from_string(f"async+{uri}", **options)


class RateLimits:
    """The service's rate limits; ``uri`` picks the storage shared between processes."""

    def __init__(self, settings: ServeConfig, namespace: str = "graftkit"):
        self.storage = _storage(settings.rate_limit_storage)
        self.limiter = MovingWindowRateLimiter(self.storage)
        self.namespace = namespace
        self.per_key = [("rate_limit_per_minute", RateLimitItemPerMinute(settings.rate_limit_per_minute), "minute"),
                        ("rate_limit_burst", RateLimitItemPerSecond(settings.rate_limit_burst), "second")]
        self.auth_failures = RateLimitItemPerMinute(settings.auth_failures_per_minute)

    async def hit_key(self, key_id: str) -> LimitHit | None:
        """Count one request of ``key_id``; the limit it broke, if any (the request is then refused)."""
        for name, item, per in self.per_key:
            if not await self.limiter.hit(item, self.namespace, "key", key_id):
                return await self._hit(name, item, per, "key", key_id)
        return None

    async def auth_blocked(self, address: str) -> LimitHit | None:
        """The failed-authentication limit when ``address`` has used it up (every keyed request is refused)."""
        if await self.limiter.test(self.auth_failures, self.namespace, "authfail", address):
            return None
        return await self._hit("auth_failures_per_minute", self.auth_failures, "minute", "authfail", address)

    async def auth_failed(self, address: str) -> None:
        """Count one failed authentication from ``address``."""
        await self.limiter.hit(self.auth_failures, self.namespace, "authfail", address)

    async def _hit(self, name: str, item: RateLimitItem, per: str, *ids: str) -> LimitHit:
        stats = await self.limiter.get_window_stats(item, self.namespace, *ids)
        return LimitHit(name, item.amount, per, max(1, math.ceil(stats.reset_time - time.time())))

    async def check(self) -> None:
        """Reach the storage once (startup fails fast on an unreachable Redis)."""
        if not await self.storage.check():
            raise ConfigError("rate_limit_storage: cannot reach the storage (is redis-server running?)")
