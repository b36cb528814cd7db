"""The SQLAlchemy store the applications share: one engine per URL, clear errors, retries on a locked database.

The default URL is an embedded SQLite file; any SQLAlchemy URL (``postgresql+psycopg://...``) works.
A database that is unreachable or locked is retried with backoff; after the last try the caller gets a
``StoreError`` that names the URL (without its password) and what to check. Writes happen in one
transaction per call, so a failed write leaves nothing half-stored.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from sqlalchemy import MetaData, create_engine, event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError, OperationalError
from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from graftkit.config import resolve_against
from graftkit.errors import GraftkitError

T = TypeVar("T")
log = logging.getLogger("graftkit.apps.store")


class StoreError(GraftkitError):
    """The database could not be opened or written after the configured retries."""


def resolve_store_url(url: str, base_dir: Path) -> str:
    """``url`` with a relative SQLite file path resolved against ``base_dir`` (a config file's folder);
    other databases, absolute paths and ``:memory:`` are returned as given."""
    prefix = "sqlite:///"
    if url.startswith(prefix) and url != prefix + ":memory:":
        return prefix + resolve_against(url[len(prefix):], base_dir)
    return url


def safe_url(url: str) -> str:
    """``url`` with any password hidden, for messages and logs."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<invalid url>"


def open_engine(url: str, metadata: MetaData, retries: int = 5, backoff_s: float = 0.5) -> Engine:
    """An engine for ``url`` with the tables of ``metadata`` created (idempotent).

    SQLite files get WAL journaling (readers do not block the writer) and a busy timeout.

    Raises:
        StoreError: bad URL, or the database stayed unreachable through every retry.
    """
    try:
        parsed = make_url(url)
    except ArgumentError as e:
        raise StoreError(f"store: {url!r} is not a SQLAlchemy URL ({e}); e.g. sqlite:///monitor.db") from None
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        try:
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise StoreError(f"store {url}: cannot create the folder of the SQLite file ({e})") from None
    try:
        engine = create_engine(url, pool_pre_ping=True)
    except ImportError as e:
        raise StoreError(f"store {safe_url(url)}: the database driver is not installed ({e}); "
                         "e.g. pip install 'psycopg[binary]' for postgresql+psycopg://") from None
    if parsed.get_backend_name() == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    with_retry(lambda: metadata.create_all(engine), url, retries, backoff_s, "open")
    return engine


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA busy_timeout=1000")  # short: with_retry owns the waiting (and says so in the log)
    cur.close()


def with_retry(fn: Callable[[], T], url: str, retries: int = 5, backoff_s: float = 0.5, what: str = "write",
               sleep: Callable[[float], None] | None = None) -> T:
    """Run ``fn`` (one transaction), retrying OperationalError (locked / unreachable) with exponential backoff
    (``backoff_s * 2**(n-1)`` before retry n; ``sleep`` is injectable for tests).

    Raises:
        StoreError: still failing after ``retries`` tries.
    """
    def warn(state: RetryCallState) -> None:
        log.warning("store %s: %s failed (%s); retry %d/%d in %.1fs", safe_url(url), what,
                    _reason(state.outcome.exception()), state.attempt_number, retries - 1, state.upcoming_sleep)

    retrying = Retrying(stop=stop_after_attempt(retries), wait=wait_exponential(multiplier=backoff_s),
                        retry=retry_if_exception_type(OperationalError), sleep=sleep or time.sleep,
                        before_sleep=warn, reraise=True)
    try:
        return retrying(fn)
    except OperationalError as e:
        raise StoreError(f"store {safe_url(url)}: could not {what} after {retries} tries ({_reason(e)}); "
                         "check that the database is running and reachable and that no other "
                         "process holds a long write lock. Nothing of this batch was stored; "
                         "run the same command again to resume.") from None


def _reason(e: OperationalError) -> str:
    return str(e.orig) if e.orig is not None else str(e)
