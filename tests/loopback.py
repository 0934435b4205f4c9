"""Loopback servers for tests that can be stopped and started again on the same port.

The port is reserved by a bound, never-listening socket for the server's whole life, so a
stopped server refuses connections (like a killed process) while no other test can take
its port, and `start()` listens on it again (Linux lets SO_REUSEADDR sockets share a port
as long as only one of them listens).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Awaitable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Protocol, Self, TypeVar
from urllib.parse import parse_qs, urlsplit

import pytest
from aiohttp import web

HOST = "127.0.0.1"
_REQUEST_TIMEOUT = 10.0  # seconds a client may take to send its request head


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (racy: prefer a server's own)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def _bound_socket(port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((HOST, port))
    except OSError:
        sock.close()
        raise
    return sock


class LoopbackServer:
    """Lifecycle shared by every fake: `start()`, `stop()`, `close()`, `async with`, `url`.

    `port=0` picks a free port on first use of `port`/`url`/`start()`; both are usable
    before the server starts (e.g. to register a source that is still down)."""

    def __init__(self, *, port: int = 0) -> None:
        self._requested_port = port
        self._reservation: socket.socket | None = None
        self._running = False

    @property
    def port(self) -> int:
        if self._reservation is None:
            self._reservation = _bound_socket(self._requested_port)
        return int(self._reservation.getsockname()[1])

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def running(self) -> bool:
        return self._running

    async def start(self) -> None:
        """Listen (again) on `port`. Does nothing when already running."""
        if self._running:
            return
        await self._serve(_bound_socket(self.port))
        self._running = True

    async def stop(self) -> None:
        """Stop accepting and drop every open connection; the port stays reserved."""
        if self._running:
            self._running = False
            await self._shutdown()

    async def close(self) -> None:
        """`stop()`, then release the port."""
        await self.stop()
        if self._reservation is not None:
            self._reservation.close()
            self._reservation = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    async def _serve(self, sock: socket.socket) -> None:
        raise NotImplementedError

    async def _shutdown(self) -> None:
        raise NotImplementedError


@dataclass(frozen=True, slots=True)
class Request:
    """The head of an HTTP/1.x (or ICY-era) request."""

    method: str
    target: str
    version: str
    headers: dict[str, str] = field(default_factory=dict)  # names lower-cased

    @property
    def path(self) -> str:
        return urlsplit(self.target).path

    def query(self, name: str) -> str | None:
        values = parse_qs(urlsplit(self.target).query, keep_blank_values=True).get(name)
        return values[0] if values else None


def parse_request(head: bytes) -> Request | None:
    """Parse `GET /path HTTP/1.x` plus headers; None when it is not an HTTP request line."""
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        return None
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    return Request(parts[0].upper(), parts[1], parts[2], headers)


def response_head(status_line: str, headers: list[tuple[str, str]], separator: str = ": ") -> bytes:
    lines = [status_line, *(f"{name}{separator}{value}" for name, value in headers), "", ""]
    return "\r\n".join(lines).encode()


class RawHttpServer(LoopbackServer):
    """An asyncio server reading one request head per connection and handing it to
    `_handle`, which writes the whole response itself (these servers answer
    `Connection: close` and end streams by closing, never with chunked encoding)."""

    def __init__(self, *, port: int = 0) -> None:
        super().__init__(port=port)
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[Any]] = set()  # start_server's, one per client
        self._conversations: set[asyncio.Task[Any]] = set()  # ours, the cancellable work

    async def _serve(self, sock: socket.socket) -> None:
        self._server = await asyncio.start_server(self._on_connection, sock=sock)

    async def _shutdown(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        for task in self._conversations:
            task.cancel()
        await asyncio.gather(*self._conversations, return_exceptions=True)
        if self._connections:
            await asyncio.wait(self._connections)
        await server.wait_closed()

    async def _on_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        # Python 3.11's start_server logs a cancelled connection task as an error, so the
        # work runs in a task of our own: `stop()` cancels that one and this one returns.
        connection = asyncio.current_task()
        assert connection is not None
        work = asyncio.create_task(self._converse(reader, writer))
        for tasks, task in ((self._connections, connection), (self._conversations, work)):
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        try:
            await asyncio.wait([work])
        finally:
            work.cancel()

    async def _converse(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(_REQUEST_TIMEOUT):
                head = await reader.readuntil(b"\r\n\r\n")
            request = parse_request(head)
            if request is None:
                writer.write(b"HTTP/1.0 400 Bad Request\r\nConnection: close\r\n\r\n")
            else:
                await self._handle(request, writer)
            await writer.drain()
        except (
            ConnectionError,
            TimeoutError,
            asyncio.IncompleteReadError,
            asyncio.LimitOverrunError,
        ):
            pass  # the client went away or never sent a whole request: nothing to answer
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def _handle(self, request: Request, writer: asyncio.StreamWriter) -> None:
        raise NotImplementedError


class NotAStreamServer(LoopbackServer):
    """An ordinary web site (aiohttp): `200 text/html` "hello" to any method and path."""

    def __init__(self, *, port: int = 0) -> None:
        super().__init__(port=port)
        self._runner: web.AppRunner | None = None
        self.requests = 0

    async def _serve(self, sock: socket.socket) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._hello)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.SockSite(self._runner, sock).start()

    async def _shutdown(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def _hello(self, request: web.Request) -> web.Response:
        self.requests += 1
        return web.Response(text="<html><body>hello</body></html>", content_type="text/html")


ServerT = TypeVar("ServerT", bound=LoopbackServer)


class ServerFactory(Protocol):
    def __call__(self, kind: type[ServerT], /, **options: Any) -> Awaitable[ServerT]: ...


@pytest.fixture(name="fake_servers")
async def fake_servers_fixture() -> AsyncIterator[ServerFactory]:
    """The `fake_servers` fixture: start fakes on demand,
    `source = await fake_servers(IcecastSource, title="…")`; every one is closed
    (connections dropped, port released) when the test ends. Import it into a test module
    (`from tests.sources import fake_servers_fixture  # noqa: F401`) or list
    `"tests.sources"` in the root conftest's `pytest_plugins`."""
    async with AsyncExitStack() as stack:

        async def start(kind: type[ServerT], /, **options: Any) -> ServerT:
            return await stack.enter_async_context(kind(**options))

        yield start
