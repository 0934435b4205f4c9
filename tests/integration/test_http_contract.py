"""What every client sees whatever the route: JSON errors, request ids, headers, CORS,
rate limits, health and metrics (Epic 8, US-7.4, US-9.1)."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from datetime import datetime

import pytest
from aiohttp import web

from control.envelope import ENVELOPE, prepare
from mediaserver.app import POOL, build_app
from mediaserver.log import JsonFormatter
from tests.accounts import PASSWORD, login, register, unique_email, user_headers


async def test_unknown_route_and_wrong_method_are_json(client):
    response = await client.get("/v1/nothing-here")
    assert response.status == 404
    assert await response.json() == {"error": "No route matches GET /v1/nothing-here", "code": 404}
    response = await client.delete("/v1/health")
    assert response.status == 405
    body = await response.json()
    assert body["code"] == 405 and "allowed: GET" in body["error"]
    assert "GET" in response.headers["Allow"]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"{not json", "Request body must be valid JSON."),
        (b"", "Request body must be a JSON object."),
        (b"[1, 2]", "Request body must be a JSON object."),
        (b"\xff\xfe", "Request body must be valid JSON."),
    ],
)
async def test_bodies_that_are_not_json_objects(client, data, message):
    response = await client.post(
        "/v1/auth/login", data=data, headers={"Content-Type": "application/json"}
    )
    assert response.status == 400
    assert await response.json() == {"error": message, "code": 400}


async def test_oversize_body_is_413_json(make_client):
    client = await make_client(max_json_body_bytes=2048)
    response = await client.post(
        "/v1/auth/register",
        data=b"{" + b" " * 10_000 + b"}",
        headers={"Content-Type": "application/json"},
    )
    assert response.status == 413
    body = await response.json()
    assert body["code"] == 413 and "too large" in body["error"]


async def test_unhandled_exception_is_a_generic_500_with_request_id(
    make_client, make_settings, test_secrets, caplog
):
    app = build_app(make_settings(), test_secrets)

    async def boom(request: web.Request) -> web.Response:
        raise RuntimeError("secret internal detail")

    app.router.add_get("/boom", app[ENVELOPE].wrap("/boom", boom))
    client = await make_client(app)
    with caplog.at_level(logging.ERROR):
        response = await client.get("/boom", headers={"X-Request-ID": "req-123"})
    assert response.status == 500
    body = await response.json()
    assert body == {"error": "An unexpected error occurred", "code": 500, "request_id": "req-123"}
    assert "secret internal detail" not in await response.text()
    record = next(r for r in caplog.records if r.getMessage() == "unhandled error")
    assert "secret internal detail" in str(record.exc_info[1])


async def test_log_lines_are_json_with_the_request_id(make_client, make_settings, test_secrets):
    app = build_app(make_settings(), test_secrets)

    async def boom(request: web.Request) -> web.Response:
        raise RuntimeError("disk on fire")

    app.router.add_get("/boom", app[ENVELOPE].wrap("/boom", boom))
    client = await make_client(app)
    lines = io.StringIO()
    handler = logging.StreamHandler(lines)
    handler.setFormatter(JsonFormatter())
    logging.getLogger().addHandler(handler)
    try:
        await client.get("/boom", headers={"X-Request-ID": "req-json-1"})
    finally:
        logging.getLogger().removeHandler(handler)
    entries = [json.loads(line) for line in lines.getvalue().splitlines()]
    [error] = [e for e in entries if e["message"] == "unhandled error"]
    assert error["level"] == "ERROR" and error["request_id"] == "req-json-1"
    assert "RuntimeError: disk on fire" in error["exc"]  # the stack trace, in the log only
    assert datetime.fromisoformat(error["time"])


async def test_request_id_is_honoured_or_generated(client):
    response = await client.get("/healthz", headers={"X-Request-ID": "abc-1"})
    assert response.headers["X-Request-ID"] == "abc-1"
    generated = (await client.get("/healthz")).headers["X-Request-ID"]
    assert len(generated) == 32
    hostile = await client.get("/healthz", headers={"X-Request-ID": "x <script>"})
    assert hostile.headers["X-Request-ID"] != "x <script>"


async def test_security_headers_on_success_and_error(client):
    for response in (await client.get("/v1/health"), await client.get("/nope")):
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["X-Frame-Options"] == "DENY"
        assert response.headers["Referrer-Policy"] == "no-referrer"


async def test_cors_preflight_and_allowed_origin(client):
    response = await client.options(
        "/v1/auth/login",
        headers={"Origin": "https://player.example", "Access-Control-Request-Method": "POST"},
    )
    assert response.status == 204
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert "POST" in response.headers["Access-Control-Allow-Methods"]
    assert "Range" in response.headers["Access-Control-Allow-Headers"]
    simple = await client.get("/v1/health", headers={"Origin": "https://player.example"})
    assert simple.headers["Access-Control-Allow-Origin"] == "*"
    assert "Content-Range" in simple.headers["Access-Control-Expose-Headers"]


def test_every_route_of_the_node_goes_through_the_envelope(make_settings, test_secrets):
    """No aiohttp middleware does it for them: a route registered around the envelope would
    answer without request id, metrics, access log or JSON errors."""
    app = build_app(make_settings(), test_secrets)
    routes = list(app.router.routes())
    assert len(routes) > 50
    outside = [
        route.resource.canonical for route in routes if route.handler not in app[ENVELOPE].wrapped
    ]
    assert outside == []


async def test_streamed_responses_and_redirects_get_the_headers_and_are_counted(
    make_client, make_settings, test_secrets
):
    app = build_app(make_settings(), test_secrets)

    async def streamed(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        await prepare(request, response)  # a handler that sends its own response
        await response.write(b"chunk")
        return response

    async def moved(request: web.Request) -> web.Response:
        raise web.HTTPFound("/v1/health")

    envelope = app[ENVELOPE]  # routes outside the route table go through it too
    app.router.add_get("/streamed", envelope.wrap("/streamed", streamed))
    app.router.add_get("/moved", envelope.wrap("/moved", moved))
    client = await make_client(app)
    origin = {"Origin": "https://player.example"}
    response = await client.get("/streamed", headers={**origin, "X-Request-ID": "s-1"})
    assert await response.read() == b"chunk"
    assert response.headers["X-Request-ID"] == "s-1"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    redirect = await client.get("/moved", allow_redirects=False, headers=origin)
    assert redirect.status == 302 and redirect.headers["Location"] == "/v1/health"
    assert redirect.headers["X-Content-Type-Options"] == "nosniff"
    assert len(redirect.headers["X-Request-ID"]) == 32
    text = await (await client.get("/metrics")).text()
    assert 'http_requests_total{code="200",endpoint="/streamed",method="GET"} 1.0' in text
    assert 'http_requests_total{code="302",endpoint="/moved",method="GET"} 1.0' in text


async def test_cors_restricted_to_configured_origins(make_client):
    client = await make_client(cors_allow_origins=("https://good.example",))
    good = await client.get("/v1/health", headers={"Origin": "https://good.example"})
    assert good.headers["Access-Control-Allow-Origin"] == "https://good.example"
    assert "Origin" in good.headers["Vary"]
    bad = await client.get("/v1/health", headers={"Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in bad.headers


# --- rate limits ------------------------------------------------------------------------


async def test_write_limit_per_user_returns_429_with_retry_after(make_client):
    client = await make_client(rate_limit_write_per_minute=3)
    _, headers = await user_headers(client)  # register + login: 2 writes from this IP
    statuses = []
    for _ in range(4):
        response = await client.patch("/v1/users/me", json={"name": "n"}, headers=headers)
        statuses.append(response.status)
    assert statuses == [200, 200, 200, 429]
    assert int(response.headers["Retry-After"]) == 20  # 3/min → one token every 20 s
    assert await response.json() == {
        "error": "Rate limit exceeded. Try again in 20 seconds.",
        "code": 429,
    }


async def test_metadata_limit_is_per_user_not_global(make_client):
    client = await make_client(rate_limit_metadata_per_minute=2)
    _, first = await user_headers(client)
    _, second = await user_headers(client)
    assert [(await client.get("/v1/users/me", headers=first)).status for _ in range(3)] == [
        200,
        200,
        429,
    ]
    assert (await client.get("/v1/users/me", headers=second)).status == 200


async def test_login_attempts_limited_per_email(make_client):
    client = await make_client(rate_limit_login_per_email_per_minute=3)
    user = await register(client)
    bad = {"email": user["email"], "password": "Wr0ngPass"}
    statuses = [(await client.post("/v1/auth/login", json=bad)).status for _ in range(4)]
    assert statuses == [401, 401, 401, 429]
    # Even the right password is refused until the bucket refills: that is the point.
    response = await client.post("/v1/auth/login", json={"email": user["email"], "password": "x"})
    assert response.status == 429
    # Other accounts are unaffected.
    other = await register(client)
    await login(client, other["email"])


async def test_login_attempts_limited_per_ip(make_client):
    client = await make_client(rate_limit_login_per_ip_per_minute=2)
    statuses = [
        (
            await client.post(
                "/v1/auth/login", json={"email": unique_email(), "password": "Wr0ngPass"}
            )
        ).status
        for _ in range(3)
    ]
    assert statuses == [401, 401, 429]


async def test_account_routes_have_their_own_per_ip_limit_not_the_write_limit(make_client):
    # Ten people behind one NAT signing up and in must not exhaust the 10/min write limit.
    client = await make_client(rate_limit_write_per_minute=2, rate_limit_auth_per_ip_per_minute=6)
    users = [await register(client) for _ in range(3)]
    tokens = [await login(client, user["email"]) for user in users]
    refreshed = await client.post(
        "/v1/auth/refresh", json={"refresh_token": tokens[0]["refresh_token"]}
    )
    assert refreshed.status == 200
    # 3 registers + 1 refresh so far: two more account calls are allowed, then 429.
    body = {"refresh_token": tokens[1]["refresh_token"]}
    statuses = [(await client.post("/v1/auth/logout", json=body)).status for _ in range(3)]
    assert statuses == [204, 204, 429]
    assert (
        await client.post("/v1/auth/login", json={"email": users[2]["email"], "password": PASSWORD})
    ).status == 200


async def test_limits_shared_between_nodes_through_redis(make_client, redis_url):
    import redis.asyncio as aioredis

    # Two nodes on one Redis: the limit holds across both.
    settings = {"redis_url": redis_url, "rate_limit_login_per_ip_per_minute": 3}
    node_a, node_b = await make_client(**settings), await make_client(**settings)
    email = unique_email()
    body = {"email": email, "password": "Wr0ngPass"}
    client_ip_key = "ms:rl:login:ip:127.0.0.1"
    redis = aioredis.from_url(redis_url)
    await redis.delete(client_ip_key)
    try:
        statuses = [
            (await node.post("/v1/auth/login", json=body)).status
            for node in (node_a, node_b, node_a, node_b)
        ]
        assert statuses == [401, 401, 401, 429]
        assert await redis.ttl(client_ip_key) > 0
    finally:
        await redis.delete(client_ip_key, f"ms:rl:login:email:{email}")
        await redis.aclose()


async def test_rate_limits_can_be_disabled(make_client):
    client = await make_client(rate_limit_enabled=False, rate_limit_metadata_per_minute=1)
    assert [(await client.get("/healthz")).status for _ in range(3)] == [200] * 3
    _, headers = await user_headers(client)
    assert [(await client.get("/v1/users/me", headers=headers)).status for _ in range(3)] == [
        200
    ] * 3


# --- health and metrics -----------------------------------------------------------------


async def test_health_ok_then_503_when_database_is_gone(client):
    response = await client.get("/v1/health")
    assert (response.status, await response.json()) == (200, {"status": "ok"})
    await client.app[POOL].close()
    response = await client.get("/v1/health")
    assert response.status == 503
    body = await response.json()
    assert body["code"] == 503 and body["failing"] == ["database"]


async def test_metrics_use_route_templates(client):
    _, headers = await user_headers(client)
    await client.get("/v1/users/me", headers=headers)
    await client.get("/v1/nothing/12345")
    text = await (await client.get("/metrics")).text()
    assert 'http_requests_total{code="200",endpoint="/v1/users/me",method="GET"}' in text
    assert 'endpoint="/v1/nothing/12345"' not in text
    assert 'http_requests_total{code="404",endpoint="unmatched",method="GET"}' in text
    assert "http_request_duration_seconds_bucket" in text
    assert "process_resident_memory_bytes" in text


async def test_docs_and_openapi_are_served(client):
    doc = await (await client.get("/openapi.json")).json()
    assert doc["openapi"].startswith("3.") and "/v1/auth/register" in doc["paths"]
    page = await client.get("/docs")
    assert page.status == 200 and "swagger-ui-bundle.js" in await page.text()
    asset = await client.get("/docs/static/swagger-ui-bundle.js")
    assert asset.status == 200 and len(await asset.read()) > 100_000


async def test_parallel_requests_do_not_mix_request_ids(client):
    responses = await asyncio.gather(
        *(client.get("/healthz", headers={"X-Request-ID": f"id-{i}"}) for i in range(20))
    )
    assert [r.headers["X-Request-ID"] for r in responses] == [f"id-{i}" for i in range(20)]
