"""Structured JSON logging with the current request id attached to every record."""

from __future__ import annotations

import contextvars
import itertools
import json
import logging
import os
import re
import sys
from datetime import UTC, datetime
from typing import Any

#: Set by the request-id middleware for the duration of a request.
request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "request_id", default=None
)
#: An `X-Request-ID` a client (or the proxy in front) sent that we echo and log as is.
REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


#: Request ids are this process's random prefix and a counter: unique across nodes and
#: restarts like `uuid4().hex` (also 32 hex digits), without a system call per request.
_ID_PREFIX = os.urandom(8).hex()
_ID_COUNTER = itertools.count(1)


def new_request_id() -> str:
    """32 hex digits, unique per request (module comment)."""
    return f"{_ID_PREFIX}{next(_ID_COUNTER):016x}"


access_log = logging.getLogger("mediaserver.access")


def log_access(
    method: str, path: str, status: int, seconds: float, remote: str | None, **extra: object
) -> None:
    """One access-log line per answered request (callers check `isEnabledFor(INFO)`)."""
    access_log.info(
        "%s %s %s",
        method,
        path,
        status,
        extra={
            "status": status,
            "duration_ms": round(seconds * 1000, 2),
            "remote": remote,
            **extra,
        },
    )


_RESERVED = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request_id, extras, exc."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = request_id_var.get()
        if request_id:
            entry["request_id"] = request_id
        for key, value in record.__dict__.items():
            if key not in _RESERVED and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure_logging(level: str) -> None:
    """Route the root logger to stderr as JSON lines (idempotent)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
