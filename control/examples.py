"""Examples of the OpenAPI document (`control.openapi`): values for schemas (`example_of`),
bodies of the text media types, and the error messages each operation answers with
(`error_messages`): declared next to the route (`Operation.examples`, taken from the
services' constants where they have one) or produced by the very code that raises them —
the body and query validation (`parse_model`), the guard's scope and role checks
(`authorise`), `path_uuid`'s 404, the size limits' 413, the rate limiter's 429."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from typing import Any

from control.api import (
    PATH_PARAM,
    RELAY_AUTH_REQUIRED,
    Operation,
    authorise,
    body_too_large,
    parse_model,
)
from control.inputs import body_timed_out
from control.security import Principal
from control.uploads.form import file_too_large, upload_stalled
from mediaserver.config import Settings
from mediaserver.errors import RateLimited, ServiceError, Unauthenticated

EXAMPLE_ID = "3fa85f64-5717-4562-b3fc-2c963f66afa6"
DEFAULTS = Settings.model_fields
#: Bodies of the text media types, as the server sends them (abridged).
TEXT_EXAMPLES = {
    "application/vnd.apple.mpegurl": "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:6\n"
    "#EXT-X-MEDIA-SEQUENCE:41\n#EXTINF:6.000,\nhls/41.ts\n#EXTINF:6.000,\nhls/42.ts\n",
    "application/rss+xml": '<?xml version="1.0" encoding="UTF-8"?>\n'
    '<rss version="2.0" xmlns:itunes="http://www.itunes.com/dtds/podcast-1.0.dtd">'
    "<channel><title>Night Shift</title>…</channel></rss>\n",
    "text/plain": "# TYPE http_requests_total counter\n"
    'http_requests_total{endpoint="/v1/health",method="GET",status="200"} 3.0\n',
    "text/html": '<!DOCTYPE html>\n<html lang="en">…</html>\n',
    "text/css": ":root { --ink: #1b1b1f; --accent: #0a4fb4; }\n…\n",
    "application/javascript": 'window.ui = SwaggerUIBundle({url: "/openapi.json"});\n',
    "text/event-stream": 'retry: 3000\n\nevent: nowplaying\ndata: {"stations":[…]}\n\n'
    'event: title\ndata: {"stream_id":"…","song":{"text":"Artist - Track",…}}\n\n'
    ": keepalive\n\n",
}

_FORMAT_EXAMPLES = {
    "email": "dj@example.com",
    "uuid": EXAMPLE_ID,
    "date-time": "2025-06-01T12:00:00Z",
    "date": "2025-06-01",
    "uri": "https://example.com/",
}
_TYPE_EXAMPLES = {"string": "string", "integer": 1, "number": 1.5, "boolean": False, "null": None}


#: Examples of response fields no request model shows, by field name.
_FIELD_EXAMPLES: dict[str, Any] = {
    "stripe_subscription_id": "sub_1PqR2sT3uV4wX5yZ",
    "stripe_price_id": "price_1PqR2sT3uV4wX5yZ",
    "stripe_product_id": "prod_QhR2sT3uV4wX5y",
    "instructions": "Add a TXT record named _mediaserver-challenge.podcasts.example.com "
    "with the value acme-challenge=8f14e45fceea167a; the domain is verified once it resolves.",
    "host": "ingest.example.com",
    "mount": "/live",
    "password": "Zq3vX9rT2kLm8pWs4nB7",
    "rss_feed_url": "https://radio.example.com/v1/podcasts/3fa85f64-5717-4562-b3fc-2c963f66afa6/"
    "rss.xml",
    "custom_feed_url": "https://podcasts.example.com/rss.xml",
    "media_url": "https://cdn.example.com/ep1.mp3",
    "url": "https://cdn.example.com/audio/track2.mp3",
    "error_message": None,
    "currency": "USD",
    "features": ["live_streams", "playlist_access"],
    "owner_name": "DJ Example",
    "owner_email": "dj@example.com",
}
_MODEL_SUFFIX = re.compile(r"(In|Out|Created|Update|Updated|Summary|List|Detail|Query)$")


def example_of(
    schema: dict[str, Any],
    schemas: dict[str, Any],
    depth: int = 0,
    known: dict[str, Any] | None = None,
    name: str | None = None,
    model: str = "",
) -> Any:
    """A plausible value for `schema`: its own example, else one built from its parts; a
    field without one takes the example of the same field elsewhere (`known`: a request
    model's, or `_FIELD_EXAMPLES`), preferring one of a model of the same noun (`PodcastIn`
    for `PodcastOut`)."""
    known = _FIELD_EXAMPLES if known is None else known
    if "$ref" in schema:
        ref = schema["$ref"].rsplit("/", 1)[1]
        return example_of(schemas[ref], schemas, depth + 1, known, name, _noun(ref))
    for key in ("examples", "enum"):
        if schema.get(key):
            return schema[key][0]
    for key in ("const", "default", "example"):
        if key in schema and schema[key] is not None:
            return schema[key]
    for field in (f"{model}.{name}", name):
        if field in known:
            return known[field]
    if "anyOf" in schema:
        options = [o for o in schema["anyOf"] if o.get("type") != "null"] or schema["anyOf"]
        return example_of(options[0], schemas, depth + 1, known, name, model)
    kind = schema.get("type")
    if kind == "object" and depth < 6:
        props = schema.get("properties", {})
        return {
            field: example_of(prop, schemas, depth + 1, known, field, model)
            for field, prop in props.items()
        }
    if kind == "array" and depth < 6:
        return [example_of(schema.get("items", {}), schemas, depth + 1, known, None, model)]
    if kind == "string" and schema.get("format") in _FORMAT_EXAMPLES:
        return _FORMAT_EXAMPLES[schema["format"]]
    if kind == "integer" and "minimum" in schema:
        return schema["minimum"]
    return _TYPE_EXAMPLES.get(kind) if isinstance(kind, str) else None


def _noun(model: str) -> str:
    return _MODEL_SUFFIX.sub("", model)


def known_examples(schemas: dict[str, Any]) -> dict[str, Any]:
    """Every field's example (or default) in the models, by `Noun.field` and by field."""
    known: dict[str, Any] = dict(_FIELD_EXAMPLES)
    for model, schema in schemas.items():
        for field, prop in schema.get("properties", {}).items():
            values = prop.get("examples") or (
                [prop["default"]] if prop.get("default") is not None else []
            )
            if values:
                known.setdefault(f"{_noun(model)}.{field}", values[0])
                if prop.get("examples"):
                    known.setdefault(field, values[0])
    return known


def error_messages(op: Operation, code: int) -> list[str]:
    """The messages `op` answers with `code`: those declared with the route, else the one
    the code that raises it produces for this route."""
    declared = op.examples.get(code)
    if declared is not None:
        return [declared] if isinstance(declared, str) else list(declared)
    return [_raised(op, code)]


def _raised(op: Operation, code: int) -> str:
    if code == 400:
        return _validation_message(op)
    if code == 401:
        if op.auth == "service":
            return RELAY_AUTH_REQUIRED
        if op.auth == "optional":
            return "Invalid access token"
        return Unauthenticated().message
    if code == 403:
        return _message(lambda: authorise(op, _principal_without_rights()))
    if code == 404:
        names = [n for n in PATH_PARAM.findall(op.path) if n.endswith("_id")]
        if names:
            return f"{names[-1].removesuffix('_id').capitalize()} not found"
    if code == 413:
        if op.file_field is not None:
            return file_too_large(DEFAULTS["upload_max_bytes"].default).message
        return body_too_large(DEFAULTS["max_json_body_bytes"].default).message
    if code == 408:
        seconds = DEFAULTS["body_read_timeout_seconds"].default
        return (upload_stalled if op.file_field is not None else body_timed_out)(seconds).message
    if code == 429:
        return RateLimited(6).message
    raise LookupError(f"{op.method} {op.path}: declare the {code} message in `examples`")


def _principal_without_rights() -> Principal:
    return Principal(uuid.UUID(EXAMPLE_ID), "listener@example.com", "listener", frozenset(), "x")


def _message(call: Callable[[], object]) -> str:
    try:
        call()
    except ServiceError as exc:
        return exc.message
    raise AssertionError("expected the check to refuse")


def _validation_message(op: Operation) -> str:
    """The 400 of a request missing its body's required fields, or with a query
    parameter of the wrong type, as `parse_model` words it."""
    body, query = op.body, op.query
    if body is not None:
        required = [n for n, f in body.model_fields.items() if f.is_required()]
        if required:
            return _message(lambda: parse_model(body, {}, "body"))
        return "Request body must be valid JSON."
    if query is not None:
        fields = query.model_json_schema().get("properties", {})
        name = next(iter(fields))
        bad = "x" if fields[name].get("type") != "string" else {"x": 1}
        return _message(lambda: parse_model(query, {name: bad}, "query"))
    raise LookupError(f"{op.method} {op.path}: declare the 400 message in `examples`")
