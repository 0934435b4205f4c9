"""The middleware and signal every request passes through: request id + metrics + logging,
CORS preflight and error rendering, and the security/CORS headers of every response.

This is the hot path of every media GET (DESIGN "Performance targets": HLS origin at
≥ 30 % of nginx's req/s), hence the single middleware layer and the precomputed headers."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable

from aiohttp import hdrs, web
from aiohttp.typedefs import Handler, Middleware
from multidict import istr

from mediaserver.config import Settings
from mediaserver.errors import ServiceError
from mediaserver.log import REQUEST_ID, access_log, log_access, new_request_id, request_id_var
from mediaserver.metrics import Metrics

log = logging.getLogger("mediaserver.http")

request_id_key = web.RequestKey("request_id", str)
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


def endpoint_of(request: web.Request) -> str:
    """The route template (never the raw path, which would explode metric cardinality)."""
    info = request.match_info
    if info.http_exception is not None:
        return "unmatched"
    resource = info.route.resource
    return resource.canonical if resource is not None else "unmatched"


def make_middleware(metrics: Metrics) -> Middleware:
    """The one middleware of every request: request id, duration and count by route
    template (outermost), then CORS preflight, then error rendering. One layer rather than
    three, because each layer costs a coroutine and a frame per request."""
    observe = metrics.observe_request
    access_enabled = access_log.isEnabledFor
    clock = time.perf_counter

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        incoming = request.headers.get(_X_REQUEST_ID)
        request_id = incoming if incoming and REQUEST_ID.match(incoming) else new_request_id()
        request[request_id_key] = request_id
        token = request_id_var.set(request_id)
        started = clock()
        status = 500
        try:
            if request.method == "OPTIONS" and _AC_REQUEST_METHOD in request.headers:
                response: web.StreamResponse = web.Response(status=204, headers=_PREFLIGHT)
            else:
                try:
                    response = await handler(request)
                except ServiceError as exc:
                    response = web.json_response(exc.body(), status=exc.status, headers=exc.headers)
                except web.HTTPException as exc:
                    if exc.status < 400:
                        raise
                    response = _http_exception(request, exc)
                except Exception:  # the one place an unknown failure is turned into a 500
                    response = _internal_error(request, request_id)
            status = response.status
            return response
        except web.HTTPException as exc:  # redirects are not errors: aiohttp sends them
            status = exc.status
            raise
        finally:
            seconds = clock() - started
            observe(request.method, endpoint_of(request), status, seconds)
            if access_enabled(logging.INFO):
                log_access(request.method, request.path, status, seconds, request.remote)
            request_id_var.reset(token)

    return middleware


def _internal_error(request: web.Request, request_id: str) -> web.Response:
    """A generic 500 naming the request id; the exception is logged, never leaked."""
    log.exception("unhandled error", extra={"method": request.method, "path": request.path})
    body = {"error": "An unexpected error occurred", "code": 500, "request_id": request_id}
    return web.json_response(body, status=500)


def _http_exception(request: web.Request, exc: web.HTTPException) -> web.Response:
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
