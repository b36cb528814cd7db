"""API keys: SHA-256 hashed at rest and in memory, compared in constant time, at least 16 characters."""
from __future__ import annotations

import hashlib
import hmac
import stat
from pathlib import Path

from graftkit.errors import ConfigError

ENV_KEYS = "GRAFTKIT_API_KEYS"  # comma-separated plain keys or sha256:<hex> digests
MIN_KEY_LENGTH = 16  # a shorter key can be guessed within the failed-authentication limit's lifetime


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
    if len(entry) < MIN_KEY_LENGTH:
        raise ConfigError(f"{where}: an API key has {len(entry)} characters; use at least {MIN_KEY_LENGTH} "
                          "random ones (python -c 'import secrets; print(secrets.token_urlsafe(24))')")
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


def key_file_warning(keys_file: Path | None) -> str | None:
    """A warning when ``keys_file`` can be read by users other than its owner (group or others)."""
    if keys_file is None or not Path(keys_file).is_file():
        return None
    mode = Path(keys_file).stat().st_mode
    if mode & (stat.S_IRGRP | stat.S_IROTH):
        return (f"{keys_file} is readable by other users (mode {stat.filemode(mode)}); "
                f"restrict it with: chmod 600 {keys_file}")
    return None
