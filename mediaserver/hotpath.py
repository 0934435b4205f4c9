"""Hot responses: a media GET repeated on a connection is answered there, without aiohttp.

Players poll `live.m3u8` every few seconds and fetch each new segment, thousands of them
and the CDN alike: the same request again and again (DESIGN "Performance targets": the HLS
origin at ≥ 30 % of nginx's req/s). A media route serving a 200 may `offer` it; the node
then keeps the response's bytes, keyed by the bytes of the request's head (less the headers
that proxies and tracers set afresh on every request, `VOLATILE`), while it is fresh: at
most `MEDIA_HOT_SECONDS` (1 s; 0 turns this off), no longer than the token it was served
to, and only while everything it was built from is unchanged — the cached rows and objects
its handler read (`note`, from `TtlCache`, `ObjectCache` and `AccountGate`) and the route's
own `valid` test. A connection (`HotRequestHandler`, aiohttp's protocol) that receives such
a head while it has nothing in flight writes those bytes back with a fresh `Date` and
`X-Request-ID` (the one the request brought, if any), takes the hit from the rate limit,
runs the route's `on_hit` (play counts, HLS sessions), and counts and logs the request as
the middleware would. Anything else goes to aiohttp as before: another header, a body, a
request behind one in flight, an entry gone stale.

Keyed by the head, a hit repeats what aiohttp answered to the same request: nothing about
access is decided here. The handler subclass reads a few of aiohttp's private attributes;
`supported()` checks they exist, and without them the node serves as before."""

from __future__ import annotations

import asyncio
import contextvars
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import formatdate
from typing import Any, Protocol

from aiohttp import HttpVersion11, hdrs, web
from aiohttp.web_protocol import RequestHandler

from mediaserver.log import REQUEST_ID, access_log, log_access, new_request_id

log = logging.getLogger(__name__)

MAX_ENTRIES = 4096
MAX_BYTES = 64 * 1024 * 1024
#: A body larger than this is written on its own rather than copied behind the headers.
JOIN_BELOW = 16 * 1024
#: A client this far behind in reading gets aiohttp, which waits for it (backpressure).
WRITE_BACKLOG = 256 * 1024
_PER_HIT = frozenset({"Date", "X-Request-ID"})
#: Request headers that proxies, CDNs and tracers set afresh on every request and that no
#: media answer depends on: left out of the key (else no two requests would share one);
#: the request id (echoed) and the forwarded address (rate limits) are read per hit.
VOLATILE = frozenset(
    {
        b"x-request-id",
        b"x-forwarded-for",
        b"x-real-ip",
        b"traceparent",
        b"tracestate",
        b"baggage",
        b"b3",
        b"x-b3-traceid",
        b"x-b3-spanid",
        b"x-b3-parentspanid",
        b"x-b3-sampled",
        b"x-amzn-trace-id",
        b"x-amz-cf-id",
        b"cf-ray",
        b"x-cloud-trace-context",
        b"sentry-trace",
        b"x-datadog-trace-id",
        b"x-datadog-parent-id",
    }
)
_VOLATILE_MARKS = tuple(b"\r\n" + name + b":" for name in VOLATILE)
#: What `HotRequestHandler` reads of aiohttp's `RequestHandler`.
_PRIVATE = (
    "_waiter",
    "_messages",
    "_close",
    "_force_close",
    "_keepalive_timeout",
    "_next_keepalive_close_time",
    "_loop",
)


class Source(Protocol):
    """A cache whose entries a response may be built from."""

    def holds(self, key: Any, token: Any) -> bool:
        """Whether `key` still maps to what `token` stands for."""
        ...


Dependency = tuple[Source, Any, Any]
_built_from: contextvars.ContextVar[list[Dependency] | None] = contextvars.ContextVar(
    "hot_built_from", default=None
)


def collect() -> None:
    """Note, for the rest of this request's task, what its response is built from."""
    _built_from.set([])


def note(source: Source, key: Any, token: Any) -> None:
    """The response being built depends on `source` still holding `token` under `key`."""
    built_from = _built_from.get()
    if built_from is not None:
        built_from.append((source, key, token))


class _Never:
    def holds(self, key: Any, token: Any) -> bool:
        return False


_NEVER = _Never()


def uncached() -> None:
    """The response being built rests on a read made for it alone: never repeat it hot."""
    note(_NEVER, None, None)


@dataclass(frozen=True, slots=True)
class Terms:
    valid: Callable[[], bool] | None
    on_hit: Callable[[str], None] | None  # called with the peer address (`request.remote`)
    expires_at: float | None  # epoch seconds


TERMS = web.RequestKey("hot_terms", Terms)


def offer(
    request: web.Request,
    *,
    valid: Callable[[], bool] | None = None,
    on_hit: Callable[[str], None] | None = None,
    expires_at: float | None = None,
) -> None:
    """Let the 200 this handler returns answer the same request again (module doc). Only
    under `collect()` (the route table calls it for media GETs): without knowing what the
    response was built from, it is not kept."""
    request[TERMS] = Terms(valid, on_hit, expires_at)


@dataclass(slots=True)
class Entry:
    status_line: bytes
    rest: bytes  # the other headers, the blank line and, when small, the body
    body: bytes  # a large body, written after `rest`
    expires: float  # loop time
    built_from: tuple[Dependency, ...]
    terms: Terms
    method: str
    endpoint: str
    path: str

    @property
    def size(self) -> int:
        return len(self.rest) + len(self.body)

    def fresh(self, now: float) -> bool:
        if now >= self.expires:
            return False
        if self.terms.valid is not None and not self.terms.valid():
            return False
        return all(source.holds(key, token) for source, key, token in self.built_from)


class HotResponses:
    """The node's hot responses (module doc); `record` is its `on_response_prepare` hook."""

    def __init__(
        self,
        seconds: float,
        observe: Callable[[str, str, int, float], None],
        endpoint_of: Callable[[web.Request], str],
        *,
        trust_forwarded_for: bool = False,
        max_entries: int = MAX_ENTRIES,
        max_bytes: int = MAX_BYTES,
    ) -> None:
        self.seconds = seconds
        self._observe = observe
        self._endpoint_of = endpoint_of
        self._trust_forwarded_for = trust_forwarded_for
        self._max_entries = max_entries
        self._max_bytes = max_bytes
        self._entries: OrderedDict[bytes, Entry] = OrderedDict()
        self._bytes = 0
        #: Takes one hit of the client's streaming rate limit, if it can without waiting
        #: (False: let aiohttp decide). Set once the node's throttle exists.
        self.admit: Callable[[str], bool] | None = None
        self.hits = 0

    def __len__(self) -> int:
        return len(self._entries)

    async def record(self, request: web.Request, response: web.StreamResponse) -> None:
        terms = request.get(TERMS)
        head = getattr(request.protocol, "hot_head", None)
        built_from = _built_from.get()
        if terms is None or head is None or built_from is None or self.seconds <= 0:
            return  # (without `collect()`, what it was built from is unknown: not kept)
        request.protocol.hot_head = None
        body = response.body if isinstance(response, web.Response) else None
        if (
            response.status != 200
            or not isinstance(body, bytes)
            or response.compression
            or response.chunked
            or hdrs.SET_COOKIE in response.headers
            or request.version != HttpVersion11
            or not request.keep_alive
            or request.body_exists
        ):
            return
        loop_now = asyncio.get_running_loop().time()
        expires = loop_now + self.seconds
        if terms.expires_at is not None:
            expires = min(expires, loop_now + terms.expires_at - time.time())
        lines = [f"{name}: {value}\r\n" for name, value in response.headers.items()]
        headers = "".join(line for line in lines if line.split(":", 1)[0] not in _PER_HIT)
        if request.method == "HEAD":
            body = b""
        rest = headers.encode("latin-1") + b"\r\n"
        if len(body) < JOIN_BELOW:
            rest, body = rest + body, b""
        stable = stable_head(head)
        self._keep(
            head if stable is None else stable.key,
            Entry(
                f"HTTP/1.1 {response.status} {response.reason}\r\n".encode("latin-1"),
                rest,
                body,
                expires,
                tuple(built_from),
                terms,
                request.method,
                self._endpoint_of(request),
                request.path,
            ),
        )

    def _keep(self, head: bytes, entry: Entry) -> None:
        old = self._entries.pop(head, None)
        if old is not None:
            self._bytes -= old.size
        self._entries[head] = entry
        self._bytes += entry.size
        while len(self._entries) > self._max_entries or self._bytes > self._max_bytes:
            _, evicted = self._entries.popitem(last=False)
            self._bytes -= evicted.size

    def get(self, head: bytes) -> Entry | None:
        return self._entries.get(head)

    def serve(
        self,
        handler: HotRequestHandler,
        key: bytes,
        entry: Entry,
        now: float,
        volatile: Stable | None = None,
    ) -> bool:
        """Answer the request whose key is `key` (its `volatile` header values, if it had
        any) from `entry` on `handler`'s connection (`now`: loop time); False: let aiohttp
        answer it."""
        transport = handler.transport
        if not entry.fresh(now):
            if self._entries.get(key) is entry:
                del self._entries[key]
                self._bytes -= entry.size
            return False
        if transport is None or transport.get_write_buffer_size() > WRITE_BACKLOG:
            return False
        client = handler.hot_peer
        request_id = None
        if volatile is not None:
            if self._trust_forwarded_for and volatile.forwarded:
                client = volatile.forwarded
            if volatile.request_id and REQUEST_ID.match(volatile.request_id):
                request_id = volatile.request_id
        if self.admit is not None and not self.admit(client):
            return False
        started = time.perf_counter()
        request_id = request_id or new_request_id()
        transport.write(
            b"".join((entry.status_line, _date(), b"X-Request-ID: ", request_id.encode(), b"\r\n"))
            + entry.rest
        )
        if entry.body:
            transport.write(entry.body)
        handler.hot_served(now)
        self.hits += 1
        if entry.terms.on_hit is not None:
            try:
                entry.terms.on_hit(handler.hot_peer)
            except Exception:  # a hook's failure must not take the connection down
                log.exception("hot response hook failed", extra={"path": entry.path})
        seconds = time.perf_counter() - started
        self._observe(entry.method, entry.endpoint, 200, seconds)
        if access_log.isEnabledFor(logging.INFO):
            log_access(
                entry.method, entry.path, 200, seconds, client, request_id=request_id, hot=True
            )
        return True


_clock_second = 0
_date_line = b""


def _date() -> bytes:
    """`Date: …\\r\\n` (RFC 9110 §6.6.1), formatted once a second."""
    global _clock_second, _date_line
    now = int(time.time())
    if now != _clock_second:
        _clock_second = now
        _date_line = f"Date: {formatdate(now, usegmt=True)}\r\n".encode()
    return _date_line


@dataclass(frozen=True, slots=True)
class Stable:
    """A request head without its `VOLATILE` headers, and what two of them said."""

    key: bytes
    request_id: str | None
    forwarded: str | None  # the first address of X-Forwarded-For


def stable_head(data: bytes) -> Stable | None:
    """`data` without its volatile header lines; None when it has none (its own key)."""
    lowered = data.lower()
    if not any(mark in lowered for mark in _VOLATILE_MARKS):
        return None
    kept: list[bytes] = []
    request_id = forwarded = None
    for line in data.split(b"\r\n"):
        name, colon, value = line.partition(b":")
        name = name.lower()
        if not colon or name not in VOLATILE:
            kept.append(line)
        elif name == b"x-request-id" and request_id is None:
            request_id = value.strip().decode("latin-1")
        elif name == b"x-forwarded-for" and forwarded is None:
            forwarded = value.split(b",")[0].strip().decode("latin-1") or None
    return Stable(b"\r\n".join(kept), request_id, forwarded)


def one_plain_head(data: bytes) -> bool:
    """`data` is exactly one GET/HEAD request head, CRLF-delimited, with no body, so that
    aiohttp's parser holds nothing once it has read it."""
    if data.find(b"\r\n\r\n") != len(data) - 4:
        return False
    if not (data.startswith(b"GET ") or data.startswith(b"HEAD ")):
        return False
    if data.count(b"\n") != data.count(b"\r\n") or data.count(b"\r") != data.count(b"\r\n"):
        return False
    lowered = data.lower()
    return not any(
        name in lowered for name in (b"content-length", b"transfer-encoding", b"upgrade")
    )


class HotRequestHandler(RequestHandler):
    """aiohttp's connection protocol, answering hot requests itself (module doc).

    It stays usable for them while everything it passed to aiohttp was whole bodiless
    GET/HEAD heads (`one_plain_head`): aiohttp's parser then holds no partial request, and
    once aiohttp waits for the next message, nothing it was given is unanswered."""

    __slots__ = ("_hot", "_hot_plain", "hot_head", "hot_peer")

    def __init__(self, manager: HotServer, **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self._hot = manager.hot
        self._hot_plain = True
        #: The head aiohttp is answering, when it is the only request it has.
        self.hot_head: bytes | None = None
        self.hot_peer = "unknown"

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        peer = transport.get_extra_info("peername")
        if isinstance(peer, tuple | list) and peer:
            self.hot_peer = str(peer[0])

    def data_received(self, data: bytes) -> None:
        if self._hot_plain:
            idle = (
                self._waiter is not None
                and not self._messages
                and not self._close
                and not self._force_close
            )
            key, stable = data, None
            entry = self._hot.get(data)
            if entry is None and (stable := stable_head(data)) is not None:
                key, entry = stable.key, self._hot.get(stable.key)
            if entry is None:
                self._hot_plain = one_plain_head(data)
            elif idle and self._hot.serve(self, key, entry, self._loop.time(), stable):
                return
            self.hot_head = data if idle and self._hot_plain else None
        super().data_received(data)

    def hot_served(self, now: float) -> None:
        """A request was answered here: the connection's keep-alive restarts."""
        self._next_keepalive_close_time = now + self._keepalive_timeout


class HotServer(web.Server):
    """aiohttp's server, making `HotRequestHandler`s for its connections."""

    hot: HotResponses

    def __call__(self) -> RequestHandler:
        return HotRequestHandler(self, loop=self._loop, **self._kwargs)


class HotAppRunner(web.AppRunner):
    """`web.AppRunner` whose server answers `hot`'s requests on the connection."""

    def __init__(self, app: web.Application, hot: HotResponses | None, **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        self._hot = hot if hot is not None and hot.seconds > 0 and supported() else None

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        if self._hot is not None:
            # aiohttp builds its Server in `Application._make_handler`; we change only what
            # `__call__` makes, so it is the same object with another class.
            server.__class__ = HotServer
            server.hot = self._hot  # type: ignore[attr-defined]
        return server


def supported() -> bool:
    """Whether aiohttp's `RequestHandler` still has what `HotRequestHandler` reads."""
    slots: set[str] = set()
    for cls in RequestHandler.__mro__:
        slots.update(getattr(cls, "__slots__", ()))
    missing = [name for name in _PRIVATE if name not in slots]
    if missing:
        log.warning("hot responses off: aiohttp's RequestHandler lacks %s", ", ".join(missing))
    return not missing


HOT = web.AppKey("hot_responses", HotResponses)
