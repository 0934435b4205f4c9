"""What a hostile or broken client sees at the socket (issue 11): slowloris and trickled
bodies are dropped on a deadline while others are served, requests aiohttp cannot parse are
refused without their secrets reaching the log, a client that walks away mid-upload is not
a server error, and no response advertises software versions."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from tests.accounts import user_headers
from tests.uploads import UPLOADS

SECRET = "eyJhbGciOiJFZERTQSJ9.c2VjcmV0LXBheWxvYWQ.c2lnbmF0dXJlLXRoYXQtbXVzdC1ub3QtbGVhaw"


async def raw_exchange(client: Any, data: bytes, wait: float = 4.0) -> bytes:
    """Send `data` on a new connection; what the node answers until it closes the
    connection or `wait` seconds pass."""
    reader, writer = await asyncio.open_connection(client.host, client.port)
    answer = b""
    try:
        writer.write(data)
        await writer.drain()
        async with asyncio.timeout(wait):
            while chunk := await reader.read(65536):
                answer += chunk
    except (TimeoutError, ConnectionError):
        pass
    finally:
        writer.close()
    return answer


def metric(text: str, line_start: str) -> float:
    for line in text.splitlines():
        if line.startswith(line_start):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


async def test_no_version_banner(client):
    for response in (
        await client.get("/v1/health"),
        await client.get("/v1/nothing"),
        await client.post("/v1/auth/login", data=b"{"),
    ):
        assert response.headers["Server"] == "mediaserver"
        assert "aiohttp" not in str(response.headers) and "Python" not in str(response.headers)


async def test_oversized_header_never_logs_the_token(client, caplog):
    caplog.set_level(logging.DEBUG)
    head = (
        f"GET /v1/users/me HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {SECRET}"
        + "A" * 9000
        + "\r\n\r\n"
    )
    answer = await raw_exchange(client, head.encode())
    # aiohttp's own plain-text 400 (control/connection.py: past any public hook).
    assert answer.startswith(b"HTTP/1.0 400 ")
    for too_many in ("X-H-{i}: v\r\n", "X-Filler-{i}: " + "v" * 100 + "\r\n"):
        headers = "".join(too_many.format(i=i) for i in range(200))
        answer = await raw_exchange(
            client, f"GET /v1/health HTTP/1.1\r\nHost: x\r\n{headers}\r\n".encode()
        )
        assert answer.startswith(b"HTTP/1.0 400 ")
    logged = "\n".join(
        record.getMessage() + (caplog.text if record.exc_info else "") for record in caplog.records
    )
    assert SECRET[:20] not in logged and SECRET[:20] not in caplog.text
    refused = [r for r in caplog.records if r.name == "mediaserver.http.server"]
    assert refused and all(r.levelname == "WARNING" and not r.exc_info for r in refused)
    assert "LineTooLong" in refused[0].getMessage()
    # And the node still answers.
    assert (await client.get("/v1/health")).status == 200


async def test_client_leaving_mid_upload_is_not_a_server_error(client, caplog):
    _, headers = await user_headers(client, "dj")
    _reader, writer = await asyncio.open_connection(client.host, client.port)
    writer.write(
        (
            f"POST {UPLOADS} HTTP/1.1\r\nHost: x\r\nAuthorization: {headers['Authorization']}\r\n"
            "Content-Type: multipart/form-data; boundary=B\r\nContent-Length: 10000000\r\n\r\n"
            '--B\r\nContent-Disposition: form-data; name="file"; filename="a.mp3"\r\n'
            "Content-Type: audio/mpeg\r\n\r\n"
        ).encode()
        + b"\xff\xfb\x90\x00" * 20_000
    )
    await writer.drain()
    await asyncio.sleep(0.2)
    writer.transport.abort()
    deadline = time.monotonic() + 10
    closed = 'http_requests_total{code="499",endpoint="/v1/uploads/audio",method="POST"}'
    while True:
        text = await (await client.get("/metrics")).text()
        if metric(text, closed) == 1.0 or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.05)
    assert metric(text, closed) == 1.0
    assert 'code="500"' not in text
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_slowloris_is_dropped_while_others_are_served(make_client):
    client = await make_client(header_read_timeout_seconds=2.0)
    head = b"GET /v1/health HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 100

    async def trickle() -> float:
        """One header byte a second until the node closes the connection; how long."""
        reader, writer = await asyncio.open_connection(client.host, client.port)
        started = time.monotonic()
        try:
            for byte in head:
                writer.write(bytes([byte]))
                await writer.drain()
                try:
                    async with asyncio.timeout(1.0):
                        if await reader.read(1) == b"":
                            break
                except TimeoutError:
                    continue
        except ConnectionError:
            pass
        finally:
            writer.close()
        return time.monotonic() - started

    slow = [asyncio.create_task(trickle()) for _ in range(50)]
    await asyncio.sleep(0.5)
    for _ in range(5):  # meanwhile, a normal client is served promptly
        started = time.monotonic()
        assert (await client.get("/v1/health")).status == 200
        assert time.monotonic() - started < 0.5
        await asyncio.sleep(0.3)
    held = await asyncio.gather(*slow)
    assert all(1.5 < seconds < 5.0 for seconds in held), held


async def test_trickled_json_body_times_out(make_client):
    client = await make_client(body_read_timeout_seconds=1.0)
    started = time.monotonic()
    answer = await raw_exchange(
        client,
        b"POST /v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b'Content-Length: 100\r\n\r\n{"email": ',
    )
    assert answer.startswith(b"HTTP/1.1 408 ")
    assert b'{"error": "The request body did not arrive within 1 s.", "code": 408}' in answer
    assert time.monotonic() - started < 2.9  # 1 s, then 1 s of lingering at most
