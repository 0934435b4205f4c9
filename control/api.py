"""The route table of the control API.

Each route is declared once, with everything the rest of the system needs to know about
it: the pydantic models of its query, body and response (validation and the OpenAPI
document both read them), whether it needs a token, which scope or role, and which rate
limit class it belongs to. `Api.register` wraps every handler so that, by the time the
handler runs, the caller is authorised, within its rate limit, and its input parsed.

A handler receives the request plus `body=` / `query=` when declared, calls one service
method and returns a pydantic model, a dict, `None` (204) or a ready `StreamResponse`. A
media route without a query or body model may instead be a plain function answering with
its `web.Response` from memory, and with an awaitable when it must wait (`control.envelope`).
"""

from __future__ import annotations

import functools
import hmac
import json
import re
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from aiohttp import hdrs, web
from pydantic import BaseModel, ValidationError

from control.accounts import ACCOUNTS, AccountGate
from control.envelope import Envelope
from control.inputs import check_query, load_json, read_body
from control.security import Principal, TokenCodec, principal_key
from control.throttle import THROTTLE, Throttle
from mediaserver.config import SETTINGS, Settings
from mediaserver.db import parse_id
from mediaserver.errors import Forbidden, InvalidInput, NotFound, TooLarge, Unauthenticated

if TYPE_CHECKING:
    from control.media import MediaServices

M = TypeVar("M", bound=BaseModel)
RELAY_AUTH_REQUIRED = "A valid relay service token is required"
#: A route handler: a coroutine function, or a function answering from memory with its
#: `web.Response` and with an awaitable when it must wait (`control.envelope`).
Handler = Callable[..., Any]
RateClass = Literal["metadata", "write", "streaming", "auth"]
AuthMode = Literal["none", "optional", "required", "service"]


@dataclass(frozen=True, slots=True)
class Param:
    """A query or header parameter a handler reads itself (not through its `query` model):
    documented, not parsed here."""

    name: str
    where: Literal["query", "header"]
    description: str
    example: str
    schema: Mapping[str, Any] = field(default_factory=lambda: {"type": "string"})


#: `?grant=`: the signed link that stands in for a token where a player cannot send one.
GRANT = Param(
    "grant",
    "query",
    "A signed grant from `play_urls`, a playlist's segment URIs or a private feed URL: "
    "opens the media without an `Authorization` header while its user may listen.",
    "eyJ1IjoiM2ZhODVmNjQiLCJlIjoxNzQ4Nzc5MjAwfQ.c2lnbmF0dXJl",
)
RANGE = Param(
    "Range",
    "header",
    "One byte range (RFC 9110 §14.2): 206, or 416 when unsatisfiable.",
    "bytes=0-1023",
)
IF_NONE_MATCH = Param(
    "If-None-Match",
    "header",
    "The `ETag` of a copy the client holds: 304 when unchanged.",
    '"3a1f5c"',
)


@dataclass(frozen=True, slots=True)
class Operation:
    """One documented route. `errors` are the status codes it may answer besides `status`;
    `examples` the message it answers with for some of them, the rest being documented
    from the code that raises them (`control.openapi`); `params` what it reads besides its
    query model; `form` the text fields of a multipart/form-data body (read by the handler)
    and `file_field` its file part."""

    method: str
    path: str
    handler: Handler
    summary: str
    tag: str
    status: int = 200
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    response: type[BaseModel] | None = None
    errors: tuple[int, ...] = ()
    auth: AuthMode = "required"
    scope: str | None = None
    role: str | None = None
    rate: RateClass | None = None
    produces: str = "application/json"
    #: Other media types the success may carry instead (a live stream's AAC).
    also_produces: tuple[str, ...] = ()
    description: str = ""
    #: A GET that also answers HEAD (same handler; it checks `request.method`).
    allow_head: bool = False
    examples: Mapping[int, str | tuple[str, ...]] = field(default_factory=dict)
    params: tuple[Param, ...] = ()
    form: type[BaseModel] | None = None
    file_field: str | None = None
    #: Statuses below 400 it may answer besides `status` (206, 304, 307), with a reason.
    also: Mapping[int, str] = field(default_factory=dict)
    #: The request body's example, where the models' own examples do not make a request
    #: that works (fields that exclude each other, optional changes).
    body_example: Mapping[str, Any] | None = None
    #: The handler is called as `handler(media, request)`, `media` being the app's
    #: `control.media.MediaServices` (listener routes: no service looked up per request).
    bound: bool = False

    @property
    def name(self) -> str:
        return f"{self.tag}.{self.handler.__name__}"


@dataclass
class Api:
    """A list of operations that registers itself on an aiohttp router."""

    operations: list[Operation] = field(default_factory=list)

    def route(self, method: str, path: str, **meta: Any) -> Callable[[Handler], Handler]:
        def decorate(handler: Handler) -> Handler:
            if "rate" not in meta:
                meta["rate"] = "metadata" if method in ("GET", "HEAD") else "write"
            self.operations.append(Operation(method, path, handler, **meta))
            return handler

        return decorate

    def get(self, path: str, **meta: Any) -> Callable[[Handler], Handler]:
        return self.route("GET", path, **meta)

    def post(self, path: str, **meta: Any) -> Callable[[Handler], Handler]:
        return self.route("POST", path, **meta)

    def put(self, path: str, **meta: Any) -> Callable[[Handler], Handler]:
        return self.route("PUT", path, **meta)

    def patch(self, path: str, **meta: Any) -> Callable[[Handler], Handler]:
        return self.route("PATCH", path, **meta)

    def delete(self, path: str, **meta: Any) -> Callable[[Handler], Handler]:
        return self.route("DELETE", path, **meta)

    def extend(self, other: Api) -> None:
        self.operations.extend(other.operations)

    def register(
        self,
        app: web.Application,
        guard: Guard,
        envelope: Envelope,
        media: MediaServices | None = None,
    ) -> None:
        """One aiohttp resource per path, a route per method. aiohttp tries the dynamic
        resources under a path prefix (`/v1/streams`, ...) one by one, in registration
        order, each a coroutine and a regex: so the listener routes (`rate="streaming"`) go
        first, playlists before segments. A live player asks for one of each per target
        duration; whichever goes second is first tried against the other's template (~2.5 k
        instructions), which weighs less on a segment GET (~460 k in all) than on a
        playlist's (~280 k), and playlists are the ones closer to the origin's target
        (tests/bench/bench_origin.py).
        No two templates here match the same URL, so the order changes which route serves
        a URL for none (tests/unit/control/test_routing.py checks it). `media`: what the
        handlers of `bound` operations are given (None: a route table never started)."""
        resources: dict[str, web.Resource] = {}
        for op in sorted(self.operations, key=_registration_order):
            resource = resources.get(op.path)
            if resource is None:
                resource = resources[op.path] = app.router.add_resource(
                    _possessive(op.path), name=op.name
                )
            handler = envelope.wrap(
                op.path,
                _handler(op, media),
                name=op.handler.__name__,
                admit=functools.partial(guard.admit, op),
                respond=functools.partial(_respond, op.status),
            )
            resource.add_route(op.method, handler)
            if op.allow_head:
                resource.add_route("HEAD", handler)


def _possessive(path: str) -> str:
    """`path` for aiohttp, each parameter without a pattern of its own that fills a whole
    segment given aiohttp's default one taken possessively (`[^{}/]++`: the same URLs match,
    as what follows is `/` or the end, which it cannot take). A URL tried against a template
    it does not fit (a playlist's URL against its segments' template) then fails at once:
    with `[^{}/]+` the regex engine gave the id back one character at a time, retrying the
    rest after each, and a miss cost more than a match."""
    return _WHOLE_SEGMENT_PARAM.sub(r"{\1:[^{}/]++}", path)


_WHOLE_SEGMENT_PARAM = re.compile(r"\{(\w+)\}(?=/|$)")


def _registration_order(op: Operation) -> tuple[bool, int]:
    return op.rate != "streaming", _MEDIA_ORDER.get(op.produces, len(_MEDIA_ORDER))


#: Among the listener routes, the most requested first (see `Api.register`).
_MEDIA_ORDER = {"application/vnd.apple.mpegurl": 0, "video/mp2t": 1}


class Guard:
    """Checks run before every handler: authentication, rate limit, role and scope."""

    def __init__(self, codec: TokenCodec, service_token: str | None = None) -> None:
        self._codec = codec
        self._service_token = service_token
        #: The node's account gate and throttle, taken from the app once it has started
        #: (`bind`), not looked up on every request. None: not checked (a bare route table).
        self._accounts: AccountGate | None = None
        self._throttle: Throttle | None = None

    async def bind(self, app: web.Application) -> None:
        """`on_startup` hook, after the services exist: the ones the checks use."""
        self._accounts, self._throttle = app.get(ACCOUNTS), app.get(THROTTLE)

    def admit(self, op: Operation, request: web.Request) -> Awaitable[None] | None:
        """Authenticate the caller (stored under `principal_key`), then its account, rate
        limit, role and scope, in that order; raises the 401/403/429. None when all was
        decided here (remembered tokens, accounts and rate-limit leases: the media routes'
        steady state), else an awaitable that finishes the checks (an account or the shared
        limiter to read): one coroutine fewer per request than an `async def` for each."""
        try:
            header = request.headers.get(hdrs.AUTHORIZATION)
            principal = None
            if op.auth == "service":  # the relays' routes: their service token is required
                self._service(header)
            elif header is not None and op.auth != "none":  # else anonymous: the common listener
                principal = self._codec.verify(_bearer(header))
        except Unauthenticated as refused:
            # A bad token costs its sender a request of the route's class as an anonymous
            # caller would: a flood of forged tokens is limited like any other.
            if self._throttle is None or not self._throttle.enabled:
                raise
            return self._refuse_later(request, op, self._throttle, refused)
        if principal is not None:
            request[principal_key] = principal
        accounts, throttle = self._accounts, self._throttle
        if principal is not None and accounts is not None and not accounts.passes(principal):
            return self._admit_later(request, op, principal, accounts, throttle)
        if throttle is not None and not throttle.admits(request, op):
            return self._admit_later(request, op, principal, None, throttle)
        if principal is not None or op.auth == "required":  # else `authorise` passes it
            authorise(op, principal)
        return None

    def _service(self, header: str | None) -> None:
        """401 unless `header` carries the relays' service token (they act as no user)."""
        token = _bearer(header) if header is not None else None
        if (
            token is None
            or not self._service_token
            or not hmac.compare_digest(token.encode(), self._service_token.encode())
        ):
            raise Unauthenticated(RELAY_AUTH_REQUIRED)

    async def _refuse_later(
        self, request: web.Request, op: Operation, throttle: Throttle, refused: Unauthenticated
    ) -> None:
        await throttle.check_route(request, op, None)  # 429 once over the limit
        raise refused

    async def _admit_later(
        self,
        request: web.Request,
        op: Operation,
        principal: Principal | None,
        accounts: AccountGate | None,
        throttle: Throttle | None,
    ) -> None:
        if accounts is not None and principal is not None:
            await accounts.check(principal)
        if throttle is not None:
            await throttle.check_route(request, op, principal)
        authorise(op, principal)


def authorise(op: Operation, principal: Principal | None) -> None:
    if op.auth == "required" and principal is None:
        raise Unauthenticated()
    if principal is not None:
        if op.role is not None and principal.role != op.role and not principal.is_admin:
            raise Forbidden(f"This action requires the '{op.role}' role")
        if op.scope is not None and op.scope not in principal.scopes:
            raise Forbidden(f"Your token lacks the '{op.scope}' scope")


def _bearer(header: str) -> str:
    """The token of an `Authorization: Bearer <token>` header (401 for anything else)."""
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("Authorization header must be 'Bearer <token>'")
    return token.strip()


def _handler(op: Operation, media: MediaServices | None) -> Handler:
    """What the envelope calls for `op`: its handler itself (given `media` when `bound`), or,
    with a query or body model, a call that parses them first."""
    call = op.handler
    if op.bound:
        call = functools.partial(call, media)
    if op.query is None and op.body is None:
        return call

    async def parsed(request: web.Request) -> Any:
        kwargs: dict[str, Any] = {}
        if op.query is not None:
            check_query(request.query)
            kwargs["query"] = parse_model(op.query, dict(request.query), "query")
        if op.body is not None:
            kwargs["body"] = parse_model(op.body, await read_json(request), "body")
        return await call(request, **kwargs)

    parsed.__name__ = call.__name__
    return parsed


def _respond(status: int, result: Any) -> web.StreamResponse:
    """What a handler returned as the response: a response as is, None as 204, a model or
    dict as JSON with the operation's `status`."""
    if isinstance(result, web.StreamResponse):
        return result
    if result is None:
        return web.Response(status=204)
    if isinstance(result, BaseModel):
        result = result.model_dump(mode="json")
    return web.json_response(result, status=status, dumps=_dumps)


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


async def read_json(request: web.Request) -> Any:
    """The request body as JSON; 400 when it is not JSON (or hostile: `control.inputs`),
    413 when over the size limit."""
    settings = request.app[SETTINGS]
    raw = await read_body(request, settings.max_json_body_bytes, settings.body_read_timeout_seconds)
    if not raw.strip():
        raise InvalidInput("Request body must be a JSON object.")
    return load_json(raw)


def body_too_large(limit: int) -> TooLarge:
    return TooLarge(f"Request body is too large (limit {limit} bytes).")


def parse_model(model: type[M], data: Any, where: Literal["body", "query"]) -> M:
    if where == "body" and not isinstance(data, dict):
        raise InvalidInput("Request body must be a JSON object.")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        messages = [describe_error(err, where) for err in exc.errors()]
        raise InvalidInput(messages[0], details=messages) from None


def path_uuid(request: web.Request, name: str, what: str) -> uuid.UUID:
    """A UUID path parameter; anything else cannot name an existing `what` → 404."""
    text = request.match_info[name]
    parsed = _PARSED_UUIDS.get(text)
    if parsed is None:
        try:
            parsed = parse_id(text)  # 32 hex digits, with or without the hyphens
        except ValueError:
            raise NotFound(f"{what} not found") from None
        if len(_PARSED_UUIDS) >= _PARSED_UUIDS_MAX:
            _PARSED_UUIDS.clear()
        _PARSED_UUIDS[text] = parsed
    return parsed


#: Path ids parsed lately: players ask for the same stream, upload or playlist again and
#: again, and parsing a UUID costs more than the rest of a segment GET's access check.
_PARSED_UUIDS: dict[str, uuid.UUID] = {}
_PARSED_UUIDS_MAX = 10_000


def public_origin(request: web.Request, settings: Settings | None = None) -> str:
    """Base of absolute URLs: MEDIASERVER_PUBLIC_URL, else the origin the client used
    (scheme and `Host`, without building the request's URL). `settings`: the app's, when
    the caller holds them."""
    public_url = (settings or request.app[SETTINGS]).public_url
    return public_url or f"{request.scheme}://{request.host}"


_SIMPLE = {
    "missing": "is required",
    "extra_forbidden": "is not a recognised field",
    "string_type": "must be a string",
    "int_type": "must be an integer",
    "int_parsing": "must be an integer",
    "int_from_float": "must be an integer",
    "float_type": "must be a number",
    "float_parsing": "must be a number",
    "bool_type": "must be true or false",
    "bool_parsing": "must be true or false",
    "list_type": "must be a list",
    "dict_type": "must be an object",
    "model_type": "must be an object",
    "uuid_type": "must be a valid UUID",
    "uuid_parsing": "must be a valid UUID",
    "date_type": "must be a date in YYYY-MM-DD format",
    "date_parsing": "must be a date in YYYY-MM-DD format",
    "date_from_datetime_parsing": "must be a date in YYYY-MM-DD format",
    "date_from_datetime_inexact": "must be a date in YYYY-MM-DD format",
    "datetime_type": "must be an ISO 8601 date-time",
    "datetime_parsing": "must be an ISO 8601 date-time",
    "datetime_from_date_parsing": "must be an ISO 8601 date-time",
    "url_type": "must be a valid URL",
    "url_parsing": "must be a valid URL",
    "url_scheme": "must be an http or https URL",
}
_WITH_CTX = {
    "string_too_short": "must be at least {min_length} characters long",
    "string_too_long": "must be at most {max_length} characters long",
    "too_short": "must contain at least {min_length} items",
    "too_long": "must contain at most {max_length} items",
    "greater_than_equal": "must be at least {ge}",
    "greater_than": "must be greater than {gt}",
    "less_than_equal": "must be at most {le}",
    "less_than": "must be less than {lt}",
    "literal_error": "must be {expected}",
    "enum": "must be {expected}",
    "string_pattern_mismatch": "has an invalid format",
}


def describe_error(error: Any, where: Literal["body", "query"]) -> str:
    """Turn one pydantic error into a sentence a person can act on."""
    loc = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error["loc"]).lstrip(".")
    kind = error["type"]
    if kind == "value_error":
        text = str(error["ctx"]["error"])
    elif kind in _SIMPLE:
        text = _SIMPLE[kind]
    elif kind == "string_too_short" and error.get("ctx", {}).get("min_length") == 1:
        text = "must not be empty"
    elif kind in _WITH_CTX:
        text = _WITH_CTX[kind].format(**error.get("ctx", {}))
        text = re.sub(r"\b1 (character|item)s\b", r"1 \1", text)  # "at most 1 item"
    else:
        text = f"is invalid ({error['msg']})"
    if not loc:
        if kind in ("model_type", "dict_type"):
            return "Request body must be a JSON object."
        return text if text.endswith(".") else f"{text}."
    noun = "Field" if where == "body" else "Query parameter"
    return f"{noun} '{loc}' {text}."


#: aiohttp path templates → OpenAPI path templates ({name:regex} → {name}).
PATH_PARAM = re.compile(r"\{(\w+)(?::[^}]*)?\}")
