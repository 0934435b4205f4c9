"""What every request passes through: request id, duration and count by route template,
the access log and error rendering (`Envelope`), CORS preflight and the JSON 404/405 of
unmatched requests (`Envelope.fallback`), and the security/CORS headers of every response
(`make_header_signal`).

The envelope wraps each handler when the route table registers it, instead of being an
aiohttp middleware: a middleware makes aiohttp add a second layer of its own
(`_fix_request_current_app`) and rebuild the chain's lookup on every request, two coroutine
frames per request on the hot path of every media GET (playlist and segment GETs are held
to ≥ 0.75 of a bare aiohttp handler's rate, `tests/bench/bench_origin.py`). Every route the
node serves is registered through `Envelope.wrap` (a unit test checks it)."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable

from aiohttp import hdrs, web
from aiohttp.typedefs import Handler
from multidict import istr

from mediaserver.config import Settings
from mediaserver.errors import ServiceError
from mediaserver.log import REQUEST_ID, access_log, log_access, new_request_id, request_id_var
from mediaserver.metrics import Metrics

log = logging.getLogger("mediaserver.http")

request_id_key = web.RequestKey("request_id", str)
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
_HSTS = istr("Strict-Transport-Security")
_SECURITY_HEADERS = (
    (istr("X-Content-Type-Options"), "nosniff"),
    (istr("X-Frame-Options"), "DENY"),
    (istr("Referrer-Policy"), "no-referrer"),
    (istr("Cross-Origin-Resource-Policy"), "cross-origin"),
    (istr("Content-Security-Policy"), "default-src 'none'; frame-ancestors 'none'"),
)
_PREFLIGHT = {
    hdrs.ACCESS_CONTROL_ALLOW_METHODS: _ALLOWED_METHODS,
    hdrs.ACCESS_CONTROL_ALLOW_HEADERS: _ALLOWED_HEADERS,
    hdrs.ACCESS_CONTROL_MAX_AGE: "600",
}
#: The path of the catch-all route (`Envelope.fallback`), registered after every other.
FALLBACK_PATH = "/{tail:.*}"


class Envelope:
    """Wraps handlers with what every request needs (module doc)."""

    def __init__(self, metrics: Metrics) -> None:
        self._observe = metrics.observe_request
        #: The handlers `wrap` made, so a test can tell that every route goes through it.
        self.wrapped: set[Handler] = set()

    def wrap(self, endpoint: str, handler: Handler) -> Handler:
        """`handler` inside the envelope; `endpoint` is its route template (the metric label)."""
        observe, access_enabled, clock = self._observe, access_log.isEnabledFor, time.perf_counter

        async def enveloped(request: web.Request) -> web.StreamResponse:
            incoming = request.headers.get(_X_REQUEST_ID)
            request_id = incoming if incoming and REQUEST_ID.match(incoming) else new_request_id()
            request[request_id_key] = request_id
            token = request_id_var.set(request_id)
            started = clock()
            status = 500
            try:
                try:
                    response = await handler(request)
                except ServiceError as exc:
                    response = web.json_response(exc.body(), status=exc.status, headers=exc.headers)
                except web.HTTPException as exc:
                    if exc.status < 400:  # redirects are not errors: aiohttp sends them
                        status = exc.status
                        raise
                    response = _http_error(request, exc)
                except Exception:  # the one place an unknown failure is turned into a 500
                    response = _internal_error(request, request_id)
                status = response.status
                return response
            finally:
                seconds = clock() - started
                observe(request.method, endpoint, status, seconds)
                if access_enabled(logging.INFO):
                    log_access(request.method, request.path, status, seconds, request.remote)
                request_id_var.reset(token)

        enveloped.__name__ = getattr(handler, "__name__", "handler")
        self.wrapped.add(enveloped)
        return enveloped

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


def make_header_signal(
    settings: Settings,
) -> Callable[[web.Request, web.StreamResponse], Awaitable[None]]:
    """`on_response_prepare` hook: runs for streamed responses too, just before headers go out.
    A header a handler set itself is kept (the security headers are defaults)."""
    wildcard = "*" in settings.cors_allow_origins
    allowed = frozenset(settings.cors_allow_origins)

    async def add_headers(request: web.Request, response: web.StreamResponse) -> None:
        headers = response.headers
        for name, value in _SECURITY_HEADERS:
            headers.setdefault(name, value)
        if request.scheme == "https":  # what `request.url.scheme` says, without building the URL
            headers.setdefault(_HSTS, "max-age=31536000")
        request_id = request.get(request_id_key)
        if request_id:
            headers[_X_REQUEST_ID] = request_id
        origin = request.headers.get(hdrs.ORIGIN)
        if origin and (wildcard or origin in allowed):
            headers[hdrs.ACCESS_CONTROL_ALLOW_ORIGIN] = "*" if wildcard else origin
            headers[hdrs.ACCESS_CONTROL_EXPOSE_HEADERS] = _EXPOSED_HEADERS
            if not wildcard:
                headers.add(hdrs.VARY, "Origin")

    return add_headers


ENVELOPE = web.AppKey("envelope", Envelope)
