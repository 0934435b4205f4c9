"""The committed API documents match the code, document every route and nothing else, and
are a valid OpenAPI 3.1 document with an example for every body."""

from __future__ import annotations

import json

import pytest
from aiohttp import web
from openapi_spec_validator import validate

from control.api import Guard
from control.app import all_routes, setup_control
from control.envelope import FALLBACK_PATH
from control.openapi import build_document, render_files
from control.postman import SCENARIO
from mediaserver.config import Settings
from mediaserver.metrics import Metrics

DOCUMENT = build_document(all_routes())
FALLBACK = FALLBACK_PATH.split(":")[0] + "}"  # its canonical form, "/{tail}"
OPERATIONS = [
    (path, method, op)
    for path, methods in DOCUMENT["paths"].items()
    for method, op in methods.items()
]


def test_committed_docs_match_the_code():
    for path, expected in render_files(all_routes()).items():
        assert path.exists(), f"{path.name} missing: run `make docs`"
        assert path.read_text() == expected, f"{path.name} is stale: run `make docs`"


def test_the_document_is_valid_openapi_3_1():
    assert DOCUMENT["openapi"] == "3.1.0"
    validate(json.loads(json.dumps(DOCUMENT)))


def test_every_route_has_an_operation_and_every_operation_a_route():
    """What the node serves (its router, as `setup_control` builds it) against the
    document: same paths, same methods."""
    app = web.Application()
    setup_control(app, Settings(), Guard(None), Metrics())  # type: ignore[arg-type]
    served = {
        (route.resource.canonical, route.method.lower())
        for route in app.router.routes()
        if route.resource is not None and route.resource.canonical != FALLBACK
    }
    documented = {(path, method) for path, method, _ in OPERATIONS}
    assert len(served) == len(OPERATIONS) > 70
    assert served - documented == set(), "routes without an operation"
    assert documented - served == set(), "operations without a route"


@pytest.mark.parametrize(("path", "method", "op"), OPERATIONS, ids=lambda v: str(v)[:60])
def test_each_operation_is_complete(path, method, op):
    assert op["summary"] and op["operationId"]
    assert "Rate limit" in op["description"] or "Not rate-limited" in op["description"]
    assert isinstance(op["security"], list)
    for param in op.get("parameters", []):
        assert "example" in param, f"{method} {path}: parameter {param['name']} has no example"
    for media_type, media in op.get("requestBody", {}).get("content", {}).items():
        assert "example" in media, f"{method} {path}: {media_type} request without example"
    for status, response in op["responses"].items():
        for media in response.get("content", {}).values():
            if media.get("schema", {}).get("format") == "binary":
                continue  # audio and MPEG-TS: bytes, not an example
            assert media.get("example") or media.get("examples"), f"{method} {path} {status}"
        if int(status) >= 400 and method != "head":
            if "text/html" in response["content"]:  # a page saying what went wrong
                assert response["content"]["text/html"]["example"], (method, path, status)
                continue
            media = response["content"]["application/json"]
            bodies = (
                [media["example"]]
                if "example" in media
                else [e["value"] for e in media["examples"].values()]
            )
            for body in bodies:
                assert body["code"] == int(status)
                assert body["error"] not in {"Conflict", "Unprocessable", "Not found", "Error"}


def test_security_scopes_and_special_parameters_are_declared():
    paths = DOCUMENT["paths"]
    assert paths["/v1/streams"]["post"]["security"] == [{"bearerAuth": ["streams:write"]}]
    assert paths["/v1/users/me"]["get"]["security"] == [{"bearerAuth": []}]
    heartbeat = paths["/v1/streams/{stream_id}/heartbeat"]["post"]
    assert heartbeat["security"] == [{"relayToken": []}]
    live_mp3 = paths["/v1/streams/{stream_id}/live.mp3"]["get"]
    names = {(p["name"], p["in"]) for p in live_mp3["parameters"]}
    assert {("grant", "query"), ("Icy-MetaData", "header")} <= names
    for path in ("/v1/podcasts/{podcast_id}/rss.xml", "/v1/streams/{stream_id}/live.m3u8"):
        assert "grant" in {p["name"] for p in paths[path]["get"]["parameters"]}
    upload = paths["/v1/uploads/audio"]["post"]["requestBody"]["content"]["multipart/form-data"]
    assert upload["schema"]["required"] == ["file"]
    assert upload["schema"]["properties"]["file"]["format"] == "binary"
    assert {"title", "artist"} <= set(upload["schema"]["properties"])
    register = paths["/v1/auth/register"]["post"]
    schema_ref = register["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    schema = DOCUMENT["components"]["schemas"][schema_ref.rsplit("/", 1)[1]]
    assert set(schema["required"]) == {"email", "password", "name"}


def test_the_postman_scenario_names_every_operation_once():
    ids = [op["operationId"] for _, _, op in OPERATIONS]
    assert sorted(SCENARIO) == sorted(ids)
