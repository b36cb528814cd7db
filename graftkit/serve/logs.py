"""Structured JSON logs with request ids; every record passes through PII masking, uvicorn's too."""
from __future__ import annotations

import contextvars
import logging
import sys

from pythonjsonlogger import json as jsonlogger

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


class JsonFormatter(jsonlogger.JsonFormatter):
    """One JSON object per line (python-json-logger): ts, level, logger, message, request_id, the ``x_*`` extras
    (prefix dropped) and a PII-masked ``error`` traceback; other extras (uvicorn's color_message) are left out."""

    FIELDS = ("ts", "level", "logger", "message", "request_id", "error")

    def __init__(self):
        super().__init__("%(levelname)s %(name)s %(message)s %(request_id)s", timestamp="ts",
                         rename_fields={"levelname": "level", "name": "logger", "exc_info": "error"},
                         json_ensure_ascii=False, json_default=str)

    def add_fields(self, log_data: dict, record: logging.LogRecord, message_dict: dict) -> None:
        super().add_fields(log_data, record, message_dict)
        for key in list(log_data):
            if key.startswith("x_"):
                log_data[key[2:]] = log_data.pop(key)
            elif key not in self.FIELDS:
                del log_data[key]
        log_data["level"] = log_data["level"].lower()
        log_data["request_id"] = log_data["request_id"] or request_id_var.get()
        log_data["ts"] = log_data["ts"].isoformat(timespec="milliseconds").replace("+00:00", "Z")

    def formatException(self, ei) -> str:
        return mask_pii(super().formatException(ei))


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
