"""Structured JSON logs with request ids; every record passes through PII masking, uvicorn's too."""
from __future__ import annotations

import contextvars
import json
import logging
import sys
import time

from graftkit.serve.pii import mask_pii

LOGGER_NAME = "graftkit.serve"
#: loggers of the server libraries whose records are masked as well (access lines hold paths and queries,
#: error lines hold tracebacks with request data)
LIBRARY_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access", "fastapi", "starlette")
request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")


class PiiMaskingFilter(logging.Filter):
    """Masks personal data in the rendered message and in string ``extra`` fields of each record."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and record.args:  # keep the args: uvicorn's formatter reads them
            record.args = tuple(mask_pii(a) if isinstance(a, str) else a for a in record.args)
            record.msg = mask_pii(str(record.msg))
        else:
            record.msg = mask_pii(record.getMessage())
            record.args = None
        if record.exc_info and not record.exc_text:  # formatters reuse exc_text: mask the traceback once here
            record.exc_text = mask_pii(logging.Formatter().formatException(record.exc_info))
        for key, value in list(vars(record).items()):
            if key.startswith("x_") and isinstance(value, str):
                setattr(record, key, mask_pii(value))
            elif key.startswith("x_") and isinstance(value, list):
                setattr(record, key, [mask_pii(v) if isinstance(v, str) else v for v in value])
        if not hasattr(record, "request_id"):
            record.request_id = request_id_var.get()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request_id and ``x_*`` extras."""

    def format(self, record: logging.LogRecord) -> str:
        out = {"ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
               "level": record.levelname.lower(), "logger": record.name, "message": record.getMessage(),
               "request_id": getattr(record, "request_id", request_id_var.get())}
        out.update({k[2:]: v for k, v in vars(record).items() if k.startswith("x_")})
        if record.exc_info:
            out["error"] = record.exc_text or mask_pii(self.formatException(record.exc_info))
        return json.dumps(out, ensure_ascii=False, default=str)


def get_logger(level: str = "info") -> logging.Logger:
    """The service logger: JSON to stderr, PII-masked (filter on the logger, so captured records are masked too)."""
    log = logging.getLogger(LOGGER_NAME)
    log.setLevel(level.upper())
    if not any(isinstance(f, PiiMaskingFilter) for f in log.filters):
        log.addFilter(PiiMaskingFilter())
    if not any(getattr(h, "_graftkit", False) for h in log.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JsonFormatter())
        handler._graftkit = True  # type: ignore[attr-defined]
        log.addHandler(handler)
    return log


def mask_library_logs() -> None:
    """Put the PII filter on uvicorn's (and Starlette's) loggers too; idempotent."""
    for name in LIBRARY_LOGGERS:
        lib = logging.getLogger(name)
        if not any(isinstance(f, PiiMaskingFilter) for f in lib.filters):
            lib.addFilter(PiiMaskingFilter())
