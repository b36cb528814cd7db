"""Quiet a library's loggers for one block of this thread only.

Setting a logger's level is process-wide: a block that lowers and restores it races with any other thread
(a threaded reload of the served model, a second export) and can leave the level wrong for everyone. Here
a filter is attached once to each named logger (and to its descendants that exist at that moment); it
drops records below the threshold only inside ``quiet_loggers`` in the current thread or task (a
ContextVar), so other threads log as configured.
"""
from __future__ import annotations

import logging
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Iterator

_threshold: ContextVar[int] = ContextVar("graftkit_quiet_threshold", default=logging.NOTSET)


class _ContextQuiet(logging.Filter):
    """Passes a record unless the current context quiets records of its level."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= _threshold.get()


_FILTER = _ContextQuiet()


@contextmanager
def quiet_loggers(names: tuple[str, ...], level: int = logging.ERROR) -> Iterator[None]:
    """Drop records below ``level`` from the loggers ``names`` (and their existing children) while the block
    runs in this thread; nested blocks keep the stricter threshold."""
    for logger in _loggers_under(names):
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)  # permanent and harmless: outside a block it passes everything
    token = _threshold.set(max(level, _threshold.get()))
    try:
        yield
    finally:
        _threshold.reset(token)


def _loggers_under(names: tuple[str, ...]) -> list[logging.Logger]:
    existing = [n for n, obj in list(logging.Logger.manager.loggerDict.items()) if isinstance(obj, logging.Logger)]
    children = [n for n in existing if any(n.startswith(name + ".") for name in names)]
    return [logging.getLogger(n) for n in (*names, *children)]
