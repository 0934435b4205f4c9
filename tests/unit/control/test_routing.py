"""The route table as aiohttp sees it: one resource per path (a route per method), listener
routes first. Every declared operation must still be the one that serves its own URLs."""

from __future__ import annotations

import re
import uuid

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from control.api import Api, Guard, Operation
from control.app import all_routes
from control.envelope import Envelope
from mediaserver.config import Settings
from mediaserver.metrics import Metrics

_PARAM = re.compile(r"\{(\w+)(?::((?:[^{}]|\{[^{}]*\})*))?\}")
#: A value for each path parameter regex in use (the default one first).
_SAMPLES = (str(uuid.uuid4()), "12", "segment001.ts")
_TEMPLATE_PARAM = re.compile(r"\{(\w+):[^}]*\}+")


def canonical(template: str) -> str:
    """aiohttp's `resource.canonical`: `{name:regex}` → `{name}`."""
    return _TEMPLATE_PARAM.sub(r"{\1}", template)


def sample_path(template: str) -> str:
    """A URL path that `template` matches, every parameter filled in."""

    def fill(match: re.Match[str]) -> str:
        pattern = match.group(2) or "[^{}/]+"
        for value in _SAMPLES:
            if re.fullmatch(pattern, value):
                return value
        raise AssertionError(f"no sample value for {{{match.group(1)}:{pattern}}} in {template}")

    return _PARAM.sub(fill, template)


@pytest.fixture(scope="module")
def app() -> web.Application:
    app = web.Application()
    all_routes().register(app, Guard(None), Envelope(Metrics(), Settings()))  # type: ignore[arg-type]
    return app


async def resolve(app: web.Application, method: str, path: str) -> web.UrlMappingMatchInfo:
    return await app.router.resolve(make_mocked_request(method, path, app=app))  # type: ignore[return-value]


OPERATIONS = all_routes().operations


@pytest.mark.parametrize("op", OPERATIONS, ids=lambda op: f"{op.method} {op.path}")
async def test_each_operation_serves_its_own_urls(app: web.Application, op: Operation) -> None:
    path = sample_path(op.path)
    for method in (op.method, "HEAD") if op.allow_head else (op.method,):
        info = await resolve(app, method, path)
        assert info.http_exception is None, f"{method} {path}: {info.http_exception}"
        assert info.route.method == method
        assert info.route.resource is not None
        assert info.route.resource.canonical == canonical(op.path)
        assert info.handler.__name__ == op.handler.__name__


def test_one_resource_per_path_listener_routes_first(app: web.Application) -> None:
    resources = list(app.router.resources())
    paths = [resource.canonical for resource in resources]
    assert len(paths) == len(set(paths))  # methods of a path share its resource
    streaming = {canonical(op.path) for op in OPERATIONS if op.rate == "streaming"}
    first = paths[: len(streaming)]
    assert set(first) == streaming


async def test_a_wrong_method_on_a_shared_path_lists_every_allowed_one(
    app: web.Application,
) -> None:
    info = await resolve(app, "PUT", f"/v1/streams/{uuid.uuid4()}")
    assert isinstance(info.http_exception, web.HTTPMethodNotAllowed)
    assert info.http_exception.allowed_methods == {"GET", "PATCH", "DELETE"}


async def test_path_ids_match_as_aiohttp_s_default_pattern_does() -> None:
    """Ids are matched possessively where they fill a path segment; an id followed by more
    than `/` keeps aiohttp's own pattern (a possessive one would swallow the suffix)."""

    async def whole(request: web.Request) -> None: ...
    async def suffixed(request: web.Request) -> None: ...

    api = Api()
    api.get("/x/{name}/tail", summary="", tag="t", auth="none")(whole)
    api.get("/y/{name}.json", summary="", tag="t", auth="none")(suffixed)
    app = web.Application()
    api.register(app, Guard(None), Envelope(Metrics(), Settings()))  # type: ignore[arg-type]
    for path, name in (("/x/a.b-c/tail", "a.b-c"), ("/y/some.name.json", "some.name")):
        info = await resolve(app, "GET", path)
        assert info.http_exception is None, path
        assert info["name"] == name
    for path in ("/x/a/b/tail", "/x/%7Bid%7D/tail", "/y/a/b.json"):
        assert (await resolve(app, "GET", path)).http_exception is not None, path
