"""Structured JSON logging with the current request id attached to every record."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import itertools
import json
import logging
import os
import re
import sys
import time
from datetime import UTC, datetime
from typing import Any, TextIO

#: Set by the envelope (`control/envelope.py`) for the duration of a request.
request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "request_id", default=None
)
#: An `X-Request-ID` a client (or the proxy in front) sent that we echo and log as is.
REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


#: Request ids are this process's random prefix and a counter: unique across nodes and
#: restarts like `uuid4().hex` (also 32 hex digits), without a system call per request.
#: `next(REQUEST_IDS)` is a new one (made in C: no Python frame per request).
REQUEST_IDS = map(f"{os.urandom(8).hex()}{{:016x}}".format, itertools.count(1))


access_log = logging.getLogger("mediaserver.access")
#: Where `log_access` writes its lines once `configure_logging` has run.
_access_lines: LineBuffer | None = None


def log_access(method: str, path: str, status: int, seconds: float, remote: str | None) -> None:
    """One access-log line per answered request (callers check `isEnabledFor(INFO)`): the
    JSON line `JsonFormatter` would write, written straight into the access log's
    `LineBuffer` once `configure_logging` made one. A `LogRecord` walked through logging
    (the caller looked up on the stack, thread and process names, every attribute
    formatted) cost a media GET more than the rest of its handling."""
    message = f"{method} {path} {status}"
    duration_ms = round(seconds * 1000, 2)
    sink = _access_lines
    if sink is None:  # logging not configured by us (tests, embedding): the usual way
        extra = {"status": status, "duration_ms": duration_ms, "remote": remote}
        access_log.info(message, extra=extra)
        return
    entry: dict[str, Any] = {
        "time": datetime.fromtimestamp(time.time(), UTC).isoformat(timespec="milliseconds"),
        "level": "INFO",
        "logger": access_log.name,
        "message": message,
    }
    request_id = request_id_var.get()
    if request_id:
        entry["request_id"] = request_id
    entry["status"] = status
    entry["duration_ms"] = duration_ms
    entry["remote"] = remote
    sink.add(json.dumps(entry))


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


class LineBuffer(logging.Handler):
    """Formatted records written to `stream` in batches rather than one write per line:
    at most `delay` seconds late (flushed from the event loop), at once when `limit`
    characters wait or when logged outside the loop's thread, and at exit (`logging`
    flushes every handler). For the access log: a line per request, and one write per
    line cost a media GET as much as the rest of its handling."""

    def __init__(self, stream: TextIO, delay: float = 0.5, limit: int = 64 * 1024) -> None:
        super().__init__()
        self._stream = stream
        self._delay = delay
        self._limit = limit
        self._lines: list[str] = []
        self._size = 0
        self._timer: asyncio.TimerHandle | None = None

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
        except Exception:  # logging's contract: a bad record is reported, never raised
            self.handleError(record)
            return
        self.add(line)

    def add(self, line: str) -> None:
        """Queue one formatted line (what `emit` does with a record's)."""
        self._lines.append(line)
        self._size += len(line)
        if self._size >= self._limit:
            self._write()
        elif self._timer is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:  # another thread, or no loop: write now
                self._write()
                return
            self._timer = loop.call_later(self._delay, self.flush)

    def flush(self) -> None:
        with self.lock or contextlib.nullcontext():
            self._write()

    def _write(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._lines:
            text = "\n".join(self._lines) + "\n"
            self._lines.clear()
            self._size = 0
            self._stream.write(text)
            self._stream.flush()


def configure_logging(level: str) -> None:
    """Route the root logger to stderr as JSON lines (idempotent); the access log's lines
    go out in batches (`LineBuffer`)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    global _access_lines
    batched = _access_lines = LineBuffer(sys.stderr)
    batched.setFormatter(JsonFormatter())
    access_log.handlers[:] = [batched]
    access_log.propagate = False
