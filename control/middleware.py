"""Middlewares and signals every request passes through: request id + metrics + logging,
error rendering, CORS preflight, and the security/CORS headers of every response."""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable

from aiohttp import web

from mediaserver.config import Settings
from mediaserver.errors import ServiceError
from mediaserver.log import request_id_var
from mediaserver.metrics import Metrics

log = logging.getLogger("mediaserver.http")
access_log = logging.getLogger("mediaserver.access")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
request_id_key = web.RequestKey("request_id", str)
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_ALLOWED_METHODS = "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"
_ALLOWED_HEADERS = (
    "Authorization, Content-Type, Range, Icy-MetaData, X-Request-ID, "
    "If-None-Match, If-Modified-Since"
)
_EXPOSED_HEADERS = (
    "Content-Length, Content-Range, Accept-Ranges, Retry-After, X-Request-ID, ETag, "
    "Last-Modified, icy-metaint, icy-name, icy-br"
)


def endpoint_of(request: web.Request) -> str:
    """The route template (never the raw path, which would explode metric cardinality)."""
    info = request.match_info
    if info.http_exception is not None:
        return "unmatched"
    resource = info.route.resource
    return resource.canonical if resource is not None else "unmatched"


def make_observe_middleware(metrics: Metrics) -> Callable[..., Awaitable[web.StreamResponse]]:
    """Outermost: request id, duration and count by route template."""

    @web.middleware
    async def observe(request: web.Request, handler: Handler) -> web.StreamResponse:
        incoming = request.headers.get("X-Request-ID", "")
        request_id = incoming if _REQUEST_ID.match(incoming) else uuid.uuid4().hex
        request[request_id_key] = request_id
        token = request_id_var.set(request_id)
        started = time.perf_counter()
        status = 500
        try:
            response = await handler(request)
            status = response.status
            return response
        except web.HTTPException as exc:  # redirects escape the error middleware on purpose
            status = exc.status
            raise
        finally:
            seconds = time.perf_counter() - started
            metrics.observe_request(request.method, endpoint_of(request), status, seconds)
            if access_log.isEnabledFor(logging.INFO):
                access_log.info(
                    "%s %s %s",
                    request.method,
                    request.path,
                    status,
                    extra={
                        "status": status,
                        "duration_ms": round(seconds * 1000, 2),
                        "remote": request.remote,
                    },
                )
            request_id_var.reset(token)

    return observe


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Render every failure as `{"error": ..., "code": ...}`; 500s are logged, never leaked."""
    try:
        return await handler(request)
    except ServiceError as exc:
        return web.json_response(exc.body(), status=exc.status, headers=exc.headers)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return _http_exception(request, exc)
    except Exception:  # the one place an unknown failure is turned into a 500
        request_id = request.get(request_id_key, "")
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


def make_cors_middleware(settings: Settings) -> Callable[..., Awaitable[web.StreamResponse]]:
    """Answer CORS preflight requests for any path; routes never see them."""

    @web.middleware
    async def preflight(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers:
            return web.Response(
                status=204,
                headers={
                    "Access-Control-Allow-Methods": _ALLOWED_METHODS,
                    "Access-Control-Allow-Headers": _ALLOWED_HEADERS,
                    "Access-Control-Max-Age": "600",
                },
            )
        return await handler(request)

    return preflight


def make_header_signal(
    settings: Settings,
) -> Callable[[web.Request, web.StreamResponse], Awaitable[None]]:
    """`on_response_prepare` hook: runs for streamed responses too, just before headers go out."""
    wildcard = "*" in settings.cors_allow_origins
    allowed = frozenset(settings.cors_allow_origins)

    async def add_headers(request: web.Request, response: web.StreamResponse) -> None:
        headers = response.headers
        headers.setdefault("X-Content-Type-Options", "nosniff")
        headers.setdefault("X-Frame-Options", "DENY")
        headers.setdefault("Referrer-Policy", "no-referrer")
        headers.setdefault("Cross-Origin-Resource-Policy", "cross-origin")
        headers.setdefault("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")
        if request.url.scheme == "https":
            headers.setdefault("Strict-Transport-Security", "max-age=31536000")
        request_id = request.get(request_id_key)
        if request_id:
            headers["X-Request-ID"] = request_id
        origin = request.headers.get("Origin")
        if origin and (wildcard or origin in allowed):
            headers["Access-Control-Allow-Origin"] = "*" if wildcard else origin
            headers["Access-Control-Expose-Headers"] = _EXPOSED_HEADERS
            if not wildcard:
                headers.add("Vary", "Origin")

    return add_headers
