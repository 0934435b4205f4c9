"""The error examples of the OpenAPI document are what the server says: a sample of requests
that fail, each compared with the examples documented for its route and status."""

from __future__ import annotations

import uuid
from typing import Any

import aiohttp

from control.app import all_routes
from control.openapi import build_document
from tests.accounts import PASSWORD, user_headers
from tests.integration.test_monetization import create_plan
from tests.sources import ShoutcastV1Source, fake_servers_fixture  # noqa: F401

DOCUMENT = build_document(all_routes())


def documented(method: str, path: str, status: int) -> list[dict[str, Any]]:
    response = DOCUMENT["paths"][path][method.lower()]["responses"][str(status)]
    media = response["content"]["application/json"]
    if "example" in media:
        return [media["example"]]
    return [example["value"] for example in media["examples"].values()]


async def check(response: aiohttp.ClientResponse, method: str, path: str, status: int) -> None:
    body = await response.json()
    assert response.status == status, body
    assert {"error": body["error"], "code": body["code"]} in documented(method, path, status)


async def test_documented_errors_are_the_real_ones(client, fake_servers):
    dj, dj_headers = await user_headers(client, "dj")
    _, listener_headers = await user_headers(client, "listener")
    nobody = str(uuid.uuid4())

    await check(await client.post("/v1/auth/register", json={}), "POST", "/v1/auth/register", 400)
    again = {"email": dj["email"], "password": PASSWORD, "name": "Again"}
    await check(
        await client.post("/v1/auth/register", json=again), "POST", "/v1/auth/register", 409
    )
    wrong = {"email": dj["email"], "password": "Wr0ngPassword"}
    await check(await client.post("/v1/auth/login", json=wrong), "POST", "/v1/auth/login", 401)
    await check(await client.get("/v1/users/me"), "GET", "/v1/users/me", 401)
    await check(await client.get("/v1/users", headers=dj_headers), "GET", "/v1/users", 403)
    await check(
        await client.get("/v1/uploads/audio?page=x", headers=dj_headers),
        "GET",
        "/v1/uploads/audio",
        400,
    )
    await check(
        await client.post("/v1/monetization/plans", json={}, headers=listener_headers),
        "POST",
        "/v1/monetization/plans",
        403,
    )
    await check(await client.get(f"/v1/streams/{nobody}"), "GET", "/v1/streams/{stream_id}", 404)
    await check(
        await client.post(f"/v1/streams/{nobody}/heartbeat", json={}),
        "POST",
        "/v1/streams/{stream_id}/heartbeat",
        401,
    )
    await check(
        await client.delete(f"/v1/domains/{nobody}", headers=dj_headers),
        "DELETE",
        "/v1/domains/{domain_id}",
        404,
    )
    await check(
        await client.get("/rss.xml", headers={"Host": "nowhere.example.com"}),
        "GET",
        "/rss.xml",
        404,
    )
    await check(await client.get("/docs/static/nothing.js"), "GET", "/docs/static/{name}", 404)

    # A source that refuses the stream key.
    source = await fake_servers(ShoutcastV1Source)
    stream = {"name": "Wrong key", "shoutcast_url": source.url, "mount": "/", "stream_key": "no"}
    await check(
        await client.post("/v1/streams", json=stream, headers=dj_headers),
        "POST",
        "/v1/streams",
        422,
    )

    # The upload's multipart errors.
    form = aiohttp.FormData()
    form.add_field("file", b"<html>not audio</html>", filename="page.mp3")
    await check(
        await client.post("/v1/uploads/audio", data=form, headers=dj_headers),
        "POST",
        "/v1/uploads/audio",
        400,
    )
    await check(
        await client.post("/v1/uploads/audio", json={"file": "x"}, headers=dj_headers),
        "POST",
        "/v1/uploads/audio",
        400,
    )
    form = aiohttp.FormData()
    form.add_field("title", "No file")
    await check(
        await client.post("/v1/uploads/audio", data=form, headers=dj_headers),
        "POST",
        "/v1/uploads/audio",
        400,
    )

    # A declined payment, then a second subscription to the same plan.
    plan = await create_plan(client, dj_headers)
    buy = {"plan_id": plan["plan_id"], "stripe_payment_method_id": "fail_pm"}
    path = "/v1/monetization/subscriptions"
    await check(await client.post(path, json=buy, headers=listener_headers), "POST", path, 402)
    buy["stripe_payment_method_id"] = "pm_card_visa"
    assert (await client.post(path, json=buy, headers=listener_headers)).status == 201
    await check(await client.post(path, json=buy, headers=listener_headers), "POST", path, 409)
