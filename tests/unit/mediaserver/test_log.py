"""The access log's batched writer: lines are late by at most its delay, never lost."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import threading

from mediaserver import log
from mediaserver.log import JsonFormatter, LineBuffer


def _logger(handler: logging.Handler) -> logging.Logger:
    logger = logging.getLogger(f"test.linebuffer.{id(handler)}")
    logger.handlers[:] = [handler]
    logger.propagate = False
    logger.setLevel(logging.INFO)
    handler.setFormatter(JsonFormatter())
    return logger


async def test_lines_logged_in_the_loop_go_out_together_after_the_delay() -> None:
    stream = io.StringIO()
    logger = _logger(LineBuffer(stream, delay=0.05))
    for n in range(3):
        logger.info("GET /v1/x %s", n)
    assert stream.getvalue() == ""  # not one write per line
    deadline = asyncio.get_running_loop().time() + 5
    while stream.getvalue().count("\n") < 3:
        assert asyncio.get_running_loop().time() < deadline, "lines never written"
        await asyncio.sleep(0.01)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [line["message"] for line in lines] == ["GET /v1/x 0", "GET /v1/x 1", "GET /v1/x 2"]


async def test_a_full_buffer_is_written_at_once() -> None:
    stream = io.StringIO()
    logger = _logger(LineBuffer(stream, delay=60, limit=1000))
    for n in range(20):
        logger.info("GET /v1/segment/%s", n)
    assert stream.getvalue().count("\n") >= 10  # written when 1000 characters waited


def test_outside_a_loop_or_from_another_thread_lines_are_written_at_once() -> None:
    stream = io.StringIO()
    logger = _logger(LineBuffer(stream, delay=60))
    logger.info("from the main thread, no loop")
    worker = threading.Thread(target=logger.info, args=("from a worker thread",))
    worker.start()
    worker.join()
    messages = [json.loads(line)["message"] for line in stream.getvalue().splitlines()]
    assert messages == ["from the main thread, no loop", "from a worker thread"]


async def test_flush_writes_what_waits() -> None:
    stream = io.StringIO()
    handler = LineBuffer(stream, delay=60)
    _logger(handler).info("last words")
    handler.flush()  # what logging.shutdown does at exit
    assert json.loads(stream.getvalue())["message"] == "last words"


def test_the_access_line_is_the_one_logging_would_write(monkeypatch) -> None:
    """`log_access` writes its line itself once logging is configured; it must be the line
    the JSON formatter writes for the same request, so log pipelines see no difference."""
    fast, slow = io.StringIO(), io.StringIO()
    sink = LineBuffer(fast, delay=60)
    monkeypatch.setattr(log, "_access_lines", sink)
    token = log.request_id_var.set("req-access-1")
    try:
        log.log_access("GET", '/v1/streams/"x"/live.m3u8', 200, 0.00123, "192.0.2.4")
        monkeypatch.setattr(log, "_access_lines", None)  # the logging way, for comparison
        handler = logging.StreamHandler(slow)
        handler.setFormatter(JsonFormatter())
        log.access_log.addHandler(handler)
        monkeypatch.setattr(log.access_log, "level", logging.INFO)
        try:
            log.log_access("GET", '/v1/streams/"x"/live.m3u8', 200, 0.00123, "192.0.2.4")
        finally:
            log.access_log.removeHandler(handler)
    finally:
        log.request_id_var.reset(token)
    sink.flush()
    ours, theirs = json.loads(fast.getvalue()), json.loads(slow.getvalue())
    assert ours.pop("time")[:10] == theirs.pop("time")[:10]
    assert ours == theirs
    assert ours["message"] == 'GET /v1/streams/"x"/live.m3u8 200'
    assert ours["request_id"] == "req-access-1" and ours["duration_ms"] == 1.23
