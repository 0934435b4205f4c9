"""Operational routes: health, liveness, metrics, the OpenAPI document and Swagger UI.

Swagger UI 5 (the first that reads OpenAPI 3.1) comes from PyPI's `swagger-ui-bundle-v2`,
the maintained continuation of `swagger-ui-bundle` (stuck at Swagger UI 4.15): same
`swagger_ui_bundle.swagger_ui_path`, served from the installed package, nothing from a CDN.
"""

from __future__ import annotations

import functools
import hmac
from pathlib import Path

from aiohttp import web
from swagger_ui_bundle import swagger_ui_path

from control.api import Api
from control.health import HEALTH
from control.openapi import OPENAPI
from mediaserver.cluster import CLUSTER, RedisCluster
from mediaserver.config import SETTINGS
from mediaserver.errors import NotFound, Unauthenticated
from mediaserver.metrics import CONTENT_TYPE, METRICS

api = Api()

NO_ASSET = "No such documentation asset"
_DOCS_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>mediaserver API</title>
<link rel="icon" type="image/png" href="/docs/static/favicon-32x32.png">
<link rel="stylesheet" href="/docs/static/swagger-ui.css"></head>
<body><div id="ui"></div>
<script src="/docs/static/swagger-ui-bundle.js"></script>
<script src="/docs/static/init.js"></script></body></html>
"""
_DOCS_INIT = (
    'window.ui = SwaggerUIBundle({url: "/openapi.json", dom_id: "#ui", '
    "deepLinking: true, displayOperationId: true, tryItOutEnabled: false});\n"
)
#: What Swagger UI needs and no more (tests/integration/test_docs_ui.py opens it in Chromium
#: and fails on any violation): its script and style sheet from here, its icons as data:
#: URIs, the document and "Try it out" calls on this origin; nothing inline, no other origin.
_DOCS_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data:; connect-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


@api.get(
    "/v1/health",
    summary="Readiness: 200 when the database (and Redis) answer",
    tag="system",
    auth="none",
    rate=None,
    errors=(503,),
    examples={503: "Unavailable: database"},
)
async def health(request: web.Request) -> web.Response:
    failing = await request.app[HEALTH].failing()
    if failing:
        body = {
            "status": "unavailable",
            "error": f"Unavailable: {', '.join(failing)}",
            "code": 503,
            "failing": failing,
        }
        return web.json_response(body, status=503)
    return web.json_response({"status": "ok"})


@api.get(
    "/readyz",
    summary="Readiness: 200 while this node can take listeners",
    description="503 once the node is shutting down (SIGTERM) or cannot reach its "
    "database. A Redis or object-store outage does not make it unready (every node would "
    "leave the Service at once, and MP3 fan-out needs neither); `/v1/health` reports those. "
    "The body names the node and, in a cluster, the members it sees and the streams it relays.",
    tag="system",
    auth="none",
    rate=None,
    errors=(503,),
    examples={503: "Not ready: shutting down"},
)
async def readyz(request: web.Request) -> web.Response:
    app = request.app
    reason = await app[HEALTH].ready()
    node = app.get(CLUSTER)
    body: dict[str, object] = {"status": "ready" if reason is None else "unavailable"}
    if node is not None:
        body["node"] = node.node_name
    if isinstance(node, RedisCluster):
        body["members"] = [member.name for member in node.members]
        body["streams_owned"] = node.owned
    if reason is not None:
        body |= {"error": f"Not ready: {reason}", "code": 503}
        return web.json_response(body, status=503)
    return web.json_response(body)


@api.get(
    "/healthz",
    summary="Liveness: 200 while the process serves requests",
    tag="system",
    auth="none",
    rate=None,
)
async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


@api.get(
    "/metrics",
    summary="Prometheus metrics",
    tag="system",
    auth="none",
    rate=None,
    produces="text/plain",
    errors=(401,),
    description="With `METRICS_TOKEN` set, only for `Authorization: Bearer <METRICS_TOKEN>` "
    '(401 otherwise). Private and paid streams are summed under `stream="unlisted"`.',
)
async def metrics(request: web.Request) -> web.Response:
    token = request.app[SETTINGS].metrics_token
    if token is not None and not _bearer_is(request, token.get_secret_value()):
        raise Unauthenticated("Metrics require 'Authorization: Bearer <METRICS_TOKEN>'")
    body = request.app[METRICS].render()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})


def _bearer_is(request: web.Request, token: str) -> bool:
    scheme, _, sent = request.headers.get("Authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(sent.strip().encode(), token.encode())


@api.get(
    "/openapi.json", summary="This API's OpenAPI 3.1 document", tag="system", auth="none", rate=None
)
async def openapi(request: web.Request) -> web.Response:
    return web.json_response(request.app[OPENAPI])


@api.get(
    "/docs",
    summary="Interactive API documentation (Swagger UI)",
    tag="system",
    auth="none",
    rate=None,
    produces="text/html",
)
async def docs(request: web.Request) -> web.Response:
    return web.Response(
        text=_DOCS_PAGE, content_type="text/html", headers={"Content-Security-Policy": _DOCS_CSP}
    )


@api.get(
    "/docs/static/init.js",
    summary="Swagger UI's start-up script for this API",
    tag="system",
    auth="none",
    rate=None,
    produces="application/javascript",
)
async def docs_init(request: web.Request) -> web.Response:
    return web.Response(text=_DOCS_INIT, content_type="application/javascript")


@api.get(
    "/docs/static/{name}",
    summary="A Swagger UI asset (script, style sheet, icon)",
    description="Only the files the installed Swagger UI ships, by name.",
    tag="system",
    auth="none",
    rate=None,
    produces="application/octet-stream",
    errors=(404,),
    examples={404: NO_ASSET},
)
async def docs_asset(request: web.Request) -> web.FileResponse:
    path = _assets().get(request.match_info["name"])
    if path is None:
        raise NotFound(NO_ASSET)
    return web.FileResponse(path)


@functools.cache
def _assets() -> dict[str, Path]:
    """Swagger UI's files by name (a name is never joined into a path); read once."""
    return {path.name: path for path in Path(str(swagger_ui_path)).iterdir() if path.is_file()}
