"""What every request passes through: request id, duration and count by route template,
the access log, error rendering, and the security/CORS headers of the response
(`Envelope`); CORS preflight and the JSON 404/405 of unmatched requests (the catch-all
route, `Envelope.add_fallback`).

The envelope wraps each handler when the route table registers it, instead of being an
aiohttp middleware plus an `on_response_prepare` signal: a middleware makes aiohttp add a
layer of its own (`_fix_request_current_app`) and rebuild the chain's lookup on every
request, and a signal costs a dispatch and a coroutine per response, all on the hot path of
every media GET (playlist and segment GETs are held to ≥ 0.75 of a bare aiohttp handler's
rate, `tests/bench/bench_origin.py`). So:
- every route the node serves is registered through `Envelope.wrap` (a test checks it);
- a response the handler returns gets its headers here; a handler that sends its response
  itself (streamed media) sends the headers with `prepare` below (or calls
  `Envelope.decorate` before aiohttp's `prepare`);
- a media route that can answer from memory is a plain function returning its
  `web.Response`, or an awaitable when it must wait (a row or an object to read): in the
  steady state no coroutine is made for its handler."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import hdrs, web
from aiohttp.typedefs import Handler
from multidict import istr

from mediaserver.config import Settings
from mediaserver.errors import ServiceError
from mediaserver.log import REQUEST_ID, REQUEST_IDS, access_log, log_access, request_id_var
from mediaserver.metrics import Metrics

log = logging.getLogger("mediaserver.http")

#: The endpoint label of requests no route matched (never the raw path: metric cardinality).
UNMATCHED = "unmatched"
_ALLOWED_METHODS = "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"
_ALLOWED_HEADERS = (
    "Authorization, Content-Type, Range, Icy-MetaData, X-Request-ID, "
    "If-None-Match, If-Modified-Since"
)
_EXPOSED_HEADERS = (
    "Content-Length, Content-Range, Accept-Ranges, Retry-After, X-Request-ID, ETag, "
    "Last-Modified, icy-metaint, icy-name, icy-br"
)
# Header names as `istr`: the multidicts of requests and responses then skip case-folding.
_X_REQUEST_ID = istr("X-Request-ID")
_AC_REQUEST_METHOD = hdrs.ACCESS_CONTROL_REQUEST_METHOD
_X_CONTENT_TYPE_OPTIONS = istr("X-Content-Type-Options")
_MEDIA_HEADERS = (
    (_X_CONTENT_TYPE_OPTIONS, "nosniff"),
    (istr("Referrer-Policy"), "no-referrer"),
    (istr("Cross-Origin-Resource-Policy"), "cross-origin"),
)
_CSP = istr("Content-Security-Policy")
_X_FRAME_OPTIONS = istr("X-Frame-Options")
#: Documents (JSON, HTML, text) also may not be framed or load anything. Audio, video, HLS
#: playlists and images are not documents and do not get these: a browser opening
#: `live.mp3` (or an avatar) in a tab shows it with its own player or viewer, which
#: `default-src 'none'` would block. A page that sets its own CSP with `frame-ancestors`
#: (the embeddable player) decides its framing by itself: no `X-Frame-Options` is added.
_SECURITY_HEADERS = (
    *_MEDIA_HEADERS,
    (_CSP, "default-src 'none'; frame-ancestors 'none'"),
)
# Raster images only: an SVG is a document that can run script.
_MEDIA_TYPES = (
    "audio/",
    "video/",
    "application/vnd.apple.mpegurl",
    "image/jpeg",
    "image/png",
    "image/webp",
    "image/gif",
)
_PREFLIGHT = {
    hdrs.ACCESS_CONTROL_ALLOW_METHODS: _ALLOWED_METHODS,
    hdrs.ACCESS_CONTROL_ALLOW_HEADERS: _ALLOWED_HEADERS,
    hdrs.ACCESS_CONTROL_MAX_AGE: "600",
}
#: When a streamed response's headers went out (set by `decorate` before `prepare`).
_HEADERS_AT = web.RequestKey("headers_at", float)
#: The status counted and logged for a request whose client went away before its answer
#: (nginx's 499 "client closed request"); never sent.
CLIENT_CLOSED = 499
#: What `Server` says instead of aiohttp's default (`Python/3.11 aiohttp/3.x`): no versions.
SERVER = "mediaserver"
#: The path of the catch-all route (`Envelope.add_fallback`), registered after every other.
FALLBACK_PATH = "/{tail:.*}"
#: `static_headers` of a media type (the only kind built with them up front).
_MEDIA_STATIC = ((hdrs.SERVER, SERVER), *_MEDIA_HEADERS)


def static_headers(content_type: str) -> tuple[tuple[istr, str], ...] | None:
    """What every response of a media `content_type` gets whatever the request: `Server`
    and the media security headers, None for other types. A response built with them up
    front (`control.bodies` keeps them with each body) skips that part of
    `Envelope.decorate`, which adds them to a response lacking `X-Content-Type-Options`."""
    return _MEDIA_STATIC if content_type.startswith(_MEDIA_TYPES) else None


class Envelope:
    """Wraps handlers with what every request needs (module doc)."""

    def __init__(self, metrics: Metrics, settings: Settings) -> None:
        self._observe = metrics.observe_request
        self._listening = metrics.observe_listening
        self._wildcard = "*" in settings.cors_allow_origins
        self._origins = frozenset(settings.cors_allow_origins)
        #: The handlers `wrap` made, so a test can tell that every route goes through it.
        self.wrapped: set[Handler] = set()

    def wrap(
        self,
        endpoint: str,
        handler: Callable[[web.Request], Any],
        *,
        admit: Callable[[web.Request], Awaitable[None] | None] | None = None,
        respond: Callable[[Any], web.StreamResponse] | None = None,
        name: str | None = None,
    ) -> Handler:
        """`handler` inside the envelope; `endpoint` is its route template (the metric
        label). `admit` runs first (the route table's guard: an awaitable when it must
        wait); `respond` turns what the handler returns into the response; `name`: the
        route's (else the handler's)."""
        observe, access_enabled, clock = self._observe, access_log.isEnabledFor, time.perf_counter
        complete, listening = self._complete, self._listening

        async def enveloped(request: web.Request) -> web.StreamResponse:
            incoming = request.headers.get(_X_REQUEST_ID)
            request_id = incoming if incoming and REQUEST_ID.match(incoming) else next(REQUEST_IDS)
            token = request_id_var.set(request_id)
            started = clock()
            response: web.StreamResponse | None = None
            made = False  # the handler made `response` without sending it (not prepared)
            try:
                if admit is not None:
                    pending = admit(request)
                    if pending is not None:
                        await pending
                result = handler(request)
                # A media handler answering from memory returns its response, not a
                # coroutine (`type`, not `isinstance`: a response is an ABC's instance).
                if type(result) is web.Response:
                    response, made = result, True  # a plain function cannot have sent it
                else:
                    result = await result
                    if respond is None or isinstance(result, web.StreamResponse):
                        response = result  # as it is, without a call to `respond`
                    else:
                        response = respond(result)
            except ServiceError as exc:
                response = web.json_response(exc.body(), status=exc.status, headers=exc.headers)
                if exc.closes_connection:
                    response.force_close()
            except web.HTTPException as exc:
                response = _http_error(request, exc)
            except ConnectionResetError:  # aiohttp: the client left while we read its body
                response = web.Response(status=CLIENT_CLOSED)
            except Exception:  # the one place an unknown failure is turned into a 500
                response = _internal_error(request, request_id)
            finally:
                # None: cancelled, which aiohttp does when the client goes away (with
                # `handler_cancellation`) and at shutdown: no server error either way.
                ended = clock()
                seconds = ended - started
                if response is None:
                    status, prepared = CLIENT_CLOSED, True
                else:
                    status, prepared = response.status, not made and response.prepared
                # Streamed (sent by hand, or cancelled while streaming): the latency is until
                # its headers went out. A response returned whole has not been decorated
                # yet, so the request holds no such time (and a miss of the request's
                # mapping, a KeyError caught in Python, is not paid for).
                headers_at = request.get(_HEADERS_AT) if prepared else None
                if headers_at is not None:
                    listening(endpoint, ended - headers_at)
                    seconds = headers_at - started
                observe(request.method, endpoint, status, seconds)
                if access_enabled(logging.INFO):
                    log_access(request.method, request.path, status, seconds, request.remote)
                request_id_var.reset(token)
            assert response is not None  # set by each way out of the block above
            if not prepared:
                complete(request, response, request_id)
            return response

        enveloped.__name__ = name if name is not None else getattr(handler, "__name__", "handler")
        self.wrapped.add(enveloped)
        return enveloped

    def decorate(
        self, request: web.Request, response: web.StreamResponse, request_id: str | None = None
    ) -> None:
        """The security headers (defaults: a header the handler set is kept; documents get
        more than media), `X-Request-ID` and CORS. Call before `prepare` on a response sent
        by hand, once its `Content-Type` is set. (No HSTS: the node speaks plain HTTP, TLS
        ends at the ingress or CDN in front, which sends it.)"""
        request[_HEADERS_AT] = time.perf_counter()
        self._complete(request, response, request_id)

    def _complete(
        self, request: web.Request, response: web.StreamResponse, request_id: str | None
    ) -> None:
        headers = response.headers
        if _X_CONTENT_TYPE_OPTIONS not in headers:  # else built with `static_headers`
            headers[hdrs.SERVER] = SERVER  # aiohttp only sets its own when none is there
            media = headers.get(hdrs.CONTENT_TYPE, "").startswith(_MEDIA_TYPES)
            for name, value in _MEDIA_HEADERS if media else _SECURITY_HEADERS:
                headers.setdefault(name, value)
            if not media and "frame-ancestors *" not in headers.get(_CSP, ""):
                headers.setdefault(_X_FRAME_OPTIONS, "DENY")
        request_id = request_id or request_id_var.get()
        if request_id:
            headers[_X_REQUEST_ID] = request_id
        origin = request.headers.get(hdrs.ORIGIN)
        if origin and (self._wildcard or origin in self._origins):
            headers[hdrs.ACCESS_CONTROL_ALLOW_ORIGIN] = "*" if self._wildcard else origin
            headers[hdrs.ACCESS_CONTROL_EXPOSE_HEADERS] = _EXPOSED_HEADERS
            if not self._wildcard:
                headers.add(hdrs.VARY, "Origin")

    def add_fallback(self, app: web.Application) -> None:
        """Register the catch-all route; call after every other route is registered."""
        app.router.add_route("*", FALLBACK_PATH, self.wrap(UNMATCHED, _unmatched))


async def _unmatched(request: web.Request) -> web.StreamResponse:
    """A request no route took: a CORS preflight (204) for any path, else 405 when the path
    exists with other methods (RFC 9110 §15.5.6: with `Allow`), else 404."""
    if request.method == "OPTIONS" and _AC_REQUEST_METHOD in request.headers:
        return web.Response(status=204, headers=_PREFLIGHT)
    allowed: set[str] = set()
    for resource in request.app.router.resources():
        if resource.canonical == "/{tail}":
            continue
        _, methods = await resource.resolve(request)
        allowed |= methods
    if allowed:
        raise web.HTTPMethodNotAllowed(request.method, allowed)
    raise web.HTTPNotFound()


def _internal_error(request: web.Request, request_id: str) -> web.Response:
    """A generic 500 naming the request id; the exception is logged, never leaked."""
    log.exception("unhandled error", extra={"method": request.method, "path": request.path})
    body = {"error": "An unexpected error occurred", "code": 500, "request_id": request_id}
    return web.json_response(body, status=500)


def _http_error(request: web.Request, exc: web.HTTPException) -> web.Response:
    """A raised `HTTPException` as a response: redirects as they are, errors as JSON."""
    if exc.status < 400:
        return web.Response(
            status=exc.status, reason=exc.reason, text=exc.text, headers=exc.headers
        )
    headers = {}
    if exc.status == 404:
        message = f"No route matches {request.method} {request.path}"
    elif exc.status == 405:
        allowed = ", ".join(sorted(getattr(exc, "allowed_methods", ()) or ()))
        message = f"Method {request.method} is not allowed on {request.path}; allowed: {allowed}"
        headers["Allow"] = allowed
    elif exc.status == 413:
        message = "Request body is too large"
    else:
        message = exc.reason
    return web.json_response(
        {"error": message, "code": exc.status}, status=exc.status, headers=headers
    )


ENVELOPE = web.AppKey("envelope", Envelope)


async def prepare(request: web.Request, response: web.StreamResponse) -> None:
    """Send the headers of a response the handler streams itself, decorated as every
    response is (`Envelope.decorate`)."""
    request.app[ENVELOPE].decorate(request, response)
    await response.prepare(request)
