"""API keys (SHA-256 hashed at rest and in memory, constant-time comparison) and a per-key rate limit."""
from __future__ import annotations

import hashlib
import hmac
import threading
import time
from pathlib import Path

from graftkit.errors import ConfigError

ENV_KEYS = "GRAFTKIT_API_KEYS"  # comma-separated plain keys or sha256:<hex> digests


def hash_key(key: str) -> str:
    """The stored form of an API key: ``sha256:<hex digest>``."""
    return "sha256:" + hashlib.sha256(key.encode("utf-8")).hexdigest()


def _stored(entry: str, where: str) -> str:
    entry = entry.strip()
    if entry.startswith("sha256:"):
        digest = entry[7:].lower()
        if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
            raise ConfigError(f"{where}: 'sha256:' must be followed by 64 hex digits")
        return "sha256:" + digest
    return hash_key(entry)


def load_key_hashes(keys: list[str], keys_file: Path | None, env: dict[str, str]) -> list[str]:
    """All configured keys as hashes: settings list, then the key file, then $GRAFTKIT_API_KEYS."""
    hashes = [_stored(k, "api_keys") for k in keys if k.strip()]
    if keys_file is not None:
        if not Path(keys_file).is_file():
            raise ConfigError(f"api_keys_file: {keys_file} not found")
        for n, line in enumerate(Path(keys_file).read_text(encoding="utf-8").splitlines(), 1):
            if line.strip() and not line.lstrip().startswith("#"):
                hashes.append(_stored(line, f"{keys_file}, line {n}"))
    hashes += [_stored(k, ENV_KEYS) for k in env.get(ENV_KEYS, "").split(",") if k.strip()]
    return hashes


class KeyStore:
    """Checks presented keys against stored hashes without leaking timing about which one matched."""

    def __init__(self, hashes: list[str]):
        self.hashes = [h.encode() for h in hashes]

    def identify(self, presented: str) -> str | None:
        """A short stable key id (hash prefix, safe to log) for a valid key, else None."""
        candidate = hash_key(presented).encode()
        found = None
        for h in self.hashes:  # compare against every key: the time does not depend on the match position
            if hmac.compare_digest(candidate, h):
                found = h
        return found.decode()[7:19] if found else None


class RateLimiter:
    """Token bucket per key: ``burst`` requests at once, refilled at ``per_minute`` / 60 per second."""

    def __init__(self, per_minute: int, burst: int):
        self.rate, self.burst = per_minute / 60.0, float(burst)
        self.buckets: dict[str, tuple[float, float]] = {}
        self.lock = threading.Lock()

    def allow(self, key_id: str) -> tuple[bool, float]:
        """(allowed, seconds until the next request would be allowed)."""
        now = time.monotonic()
        with self.lock:
            tokens, last = self.buckets.get(key_id, (self.burst, now))
            tokens = min(self.burst, tokens + (now - last) * self.rate)
            if tokens >= 1.0:
                self.buckets[key_id] = (tokens - 1.0, now)
                return True, 0.0
            self.buckets[key_id] = (tokens, now)
            return False, (1.0 - tokens) / self.rate
