"""The OpenAPI 3.1 document, generated from the route table and its pydantic models.
`python -m control.openapi` rewrites `docs/openapi.yaml` and `docs/postman_collection.json`
(`control.postman`); a test fails when they drift from the code.

Every example is what the server really says: request bodies from the models' own
examples, and error messages either declared next to the route (`Operation.examples`,
taken from the services' constants where they have one) or produced by the very code that
raises them — the body and query validation (`parse_model`), the guard's scope and role
checks (`authorise`), `path_uuid`'s 404, the rate limiter's 429."""

from __future__ import annotations

import json
import re
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiohttp import web
from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode

from control.api import (
    PATH_PARAM,
    RELAY_AUTH_REQUIRED,
    Api,
    Operation,
    Param,
    authorise,
    body_too_large,
    parse_model,
)
from control.security import Principal
from control.uploads.form import file_too_large
from mediaserver.config import Settings
from mediaserver.errors import RateLimited, ServiceError, Unauthenticated

OPENAPI = web.AppKey("openapi", dict[str, Any])
DOCS_DIR = Path(__file__).resolve().parent.parent / "docs"
VERSION = "0.1.0"
EXAMPLE_ID = "3fa85f64-5717-4562-b3fc-2c963f66afa6"

_REASONS = {
    200: "OK",
    201: "Created",
    204: "No Content",
    206: "Partial Content",
    304: "Not Modified",
    307: "Temporary Redirect",
    400: "Invalid input",
    401: "Missing, invalid or expired token",
    402: "Payment failed",
    403: "Not allowed",
    404: "Not found",
    409: "Conflict",
    410: "Gone",
    413: "Body too large",
    416: "Range not satisfiable",
    422: "Unprocessable",
    429: "Rate limit exceeded",
    503: "Unavailable",
}
_ERROR_SCHEMA = {
    "type": "object",
    "required": ["error", "code"],
    "properties": {
        "error": {"type": "string", "description": "What went wrong, for a person to act on."},
        "code": {"type": "integer", "description": "The HTTP status code."},
        "details": {"description": "Optional extra information, e.g. every validation error."},
    },
    "example": {"error": "Field 'email' is required.", "code": 400},
}
_DEFAULTS = Settings.model_fields
#: The limit of each rate class: the setting, and whom it counts.
_RATES = {
    "metadata": ("RATE_LIMIT_METADATA_PER_MINUTE", "rate_limit_metadata_per_minute", "user"),
    "write": ("RATE_LIMIT_WRITE_PER_MINUTE", "rate_limit_write_per_minute", "user"),
    "streaming": ("RATE_LIMIT_STREAMING_PER_MINUTE", "rate_limit_streaming_per_minute", "ip"),
    "auth": ("RATE_LIMIT_AUTH_PER_IP_PER_MINUTE", "rate_limit_auth_per_ip_per_minute", "ip"),
}
#: Bodies of the text media types, as the server sends them (abridged).
_TEXT_EXAMPLES = {
    "application/vnd.apple.mpegurl": "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:6\n"
    "#EXT-X-MEDIA-SEQUENCE:41\n#EXTINF:6.000,\nhls/41.ts\n#EXTINF:6.000,\nhls/42.ts\n",
    "application/rss+xml; charset=utf-8": '<?xml version="1.0" encoding="UTF-8"?>\n'
    '<rss version="2.0" xmlns:itunes="http://www.itunes.com/dtds/podcast-1.0.dtd">'
    "<channel><title>Night Shift</title>…</channel></rss>\n",
    "text/plain": "# TYPE http_requests_total counter\n"
    'http_requests_total{endpoint="/v1/health",method="GET",status="200"} 3.0\n',
    "text/html": '<!DOCTYPE html>\n<html lang="en">…</html>\n',
    "application/javascript": 'window.ui = SwaggerUIBundle({url: "/openapi.json"});\n',
}
_BINARY_TYPES = ("audio/", "video/", "image/", "application/octet-stream")


class _Components:
    def __init__(self) -> None:
        self.schemas: dict[str, Any] = {"Error": _ERROR_SCHEMA}

    def ref(self, model: type[BaseModel], mode: JsonSchemaMode) -> dict[str, str]:
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}", mode=mode)
        self.schemas.update(schema.pop("$defs", {}))
        self.schemas[model.__name__] = schema
        return {"$ref": f"#/components/schemas/{model.__name__}"}


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


def _known_examples(schemas: dict[str, Any]) -> dict[str, Any]:
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


def openapi_path(op: Operation) -> str:
    """The operation's path as OpenAPI writes it (`{name:regex}` → `{name}`)."""
    return PATH_PARAM.sub(r"{\1}", op.path)


def operation_ids(op: Operation) -> list[tuple[str, str]]:
    """(method, operationId) of each documented operation of `op`: HEAD too when it answers
    HEAD."""
    base = op.name.replace(".", "_")
    methods = [(op.method.lower(), base)]
    if op.allow_head:
        methods.append(("head", f"{base}_head"))
    return methods


def build_document(api: Api, server_url: str = "/") -> dict[str, Any]:
    components = _Components()
    paths: dict[str, dict[str, Any]] = {}
    for op in api.operations:
        path = openapi_path(op)
        for method, operation_id in operation_ids(op):
            doc = _operation(op, path, components, operation_id, head=method == "head")
            paths.setdefault(path, {})[method] = doc
    schemas = components.schemas
    known = _known_examples(schemas)
    for methods in paths.values():
        for doc in methods.values():
            _add_examples(doc, schemas, known)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "mediaserver API",
            "version": VERSION,
            "description": "Live relay, HLS, on-demand playlists, podcasts, analytics and "
            "monetization for DJs and their listeners. Every error is "
            '`{"error": "...", "code": N}` (sometimes with `details`). Rate limits are token '
            "buckets refilled evenly; a refused request gets 429 with `Retry-After`. "
            "Set `RATE_LIMIT_ENABLED=false` to turn them all off.",
        },
        "servers": [{"url": server_url}],
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": dict(sorted(schemas.items())),
            "securitySchemes": {
                "bearerAuth": {
                    "type": "http",
                    "scheme": "bearer",
                    "bearerFormat": "JWT",
                    "description": "The `access_token` of `POST /v1/auth/login` (RS256). "
                    "An operation's listed roles are the token scopes it needs.",
                },
                "relayToken": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "The node's `RELAY_SERVICE_TOKEN`, for external relays.",
                },
            },
        },
    }


def _operation(
    op: Operation, path: str, components: _Components, operation_id: str, *, head: bool
) -> dict[str, Any]:
    summary = f"{op.summary} (headers only)" if head else op.summary
    doc: dict[str, Any] = {"operationId": operation_id, "summary": summary, "tags": [op.tag]}
    notes = [
        op.description,
        f"Requires the token scope `{op.scope}`." if op.scope else "",
        f"Requires the role `{op.role}` (admins pass)." if op.role else "",
        _rate_note(op),
    ]
    doc["description"] = " ".join(filter(None, notes))
    if op.rate is not None:
        setting, field, per = _RATES[op.rate]
        doc["x-rate-limit"] = {
            "class": op.rate,
            "setting": setting,
            "per_minute": _DEFAULTS[field].default,
            "per": per,
        }
    params = _parameters(op, path)
    if params:
        doc["parameters"] = params
    body = _request_body(op, components)
    if body is not None:
        doc["requestBody"] = body
    if op.auth == "required":
        doc["security"] = [{"bearerAuth": [op.scope] if op.scope else []}]
    elif op.auth == "optional":
        doc["security"] = [{"bearerAuth": [op.scope] if op.scope else []}, {}]
    elif op.auth == "service":
        doc["security"] = [{"relayToken": []}]
    else:
        doc["security"] = []
    doc["responses"] = _responses(op, components, head=head)
    return doc


def _rate_note(op: Operation) -> str:
    if op.rate is None:
        if op.path == "/v1/auth/login":
            return (
                "Rate limit: `RATE_LIMIT_LOGIN_PER_EMAIL_PER_MINUTE` (5) attempts a minute per "
                "email and `RATE_LIMIT_LOGIN_PER_IP_PER_MINUTE` (20) per IP."
            )
        return "Not rate-limited."
    setting, field, per = _RATES[op.rate]
    whom = "per user (per IP when anonymous)" if per == "user" else "per client IP"
    return f"Rate limit: `{setting}` ({_DEFAULTS[field].default}) requests a minute {whom}."


def _parameters(op: Operation, path: str) -> list[dict[str, Any]]:
    params = [_path_param(name, op.path) for name in PATH_PARAM.findall(path)]
    if op.query is not None:
        schema = op.query.model_json_schema()
        required = schema.get("required", [])
        for name, prop in schema.get("properties", {}).items():
            param = {"name": name, "in": "query", "required": name in required, "schema": prop}
            if "description" in prop:
                param["description"] = prop["description"]
            param["example"] = example_of(prop, {})
            params.append(param)
    for extra in op.params:
        params.append(_param(extra))
    return params


def _param(param: Param) -> dict[str, Any]:
    return {
        "name": param.name,
        "in": param.where,
        "required": False,
        "description": param.description,
        "schema": dict(param.schema),
        "example": param.example,
    }


_NAME_EXAMPLES = {"segment": "segment000.ts", "name": "swagger-ui.css"}


def _path_param(name: str, template: str) -> dict[str, Any]:
    schema: dict[str, Any]
    example: Any
    if name.endswith("_id"):
        schema, example = {"type": "string", "format": "uuid"}, EXAMPLE_ID
    elif name == "seq":
        schema, example = {"type": "integer", "minimum": 0}, 42
    else:
        match = re.search(r"\{" + name + r":([^}]*)\}", template)
        schema, example = {"type": "string"}, _NAME_EXAMPLES.get(name, "string")
        if match:
            schema["pattern"] = f"^{match.group(1)}$"
    return {"name": name, "in": "path", "required": True, "schema": schema, "example": example}


def _request_body(op: Operation, components: _Components) -> dict[str, Any] | None:
    if op.body is not None:
        media: dict[str, Any] = {"schema": components.ref(op.body, "validation")}
        if op.body_example is not None:
            media["example"] = dict(op.body_example)
        return {"required": True, "content": {"application/json": media}}
    if op.file_field is None:
        return None
    properties: dict[str, Any] = {
        op.file_field: {
            "type": "string",
            "format": "binary",
            "contentMediaType": "audio/mpeg",
            "description": "The audio file.",
        }
    }
    if op.form is not None:
        properties |= op.form.model_json_schema().get("properties", {})
    schema = {"type": "object", "required": [op.file_field], "properties": properties}
    example = {op.file_field: "(the MP3's bytes)"} | {
        name: example_of(prop, {}) for name, prop in properties.items() if name != op.file_field
    }
    form = {
        "schema": schema,
        "encoding": {op.file_field: {"contentType": "audio/mpeg"}},
        "example": example,
    }
    return {"required": True, "content": {"multipart/form-data": form}}


def _responses(op: Operation, components: _Components, *, head: bool) -> dict[str, Any]:
    success: dict[str, Any] = {"description": _REASONS.get(op.status, "OK")}
    if op.status != 204 and not head:
        if op.response is not None:
            schema = components.ref(op.response, "serialization")
            success["content"] = {"application/json": {"schema": schema}}
        else:
            success["content"] = {op.produces: _media_content(op.produces)}
    responses: dict[str, Any] = {str(op.status): success}
    for code, reason in sorted(op.also.items()):
        responses[str(code)] = {"description": reason}
    for code in sorted(set(op.errors)):
        responses[str(code)] = _error_response(op, code, head=head)
    return responses


def _media_content(media_type: str) -> dict[str, Any]:
    if media_type.startswith(_BINARY_TYPES):
        return {"schema": {"type": "string", "format": "binary"}}
    example = _TEXT_EXAMPLES.get(media_type, "")
    if media_type == "application/json":
        return {"schema": {"type": "object"}, "example": {"openapi": "3.1.0"}}
    return {"schema": {"type": "string"}, "example": example}


def _error_response(op: Operation, code: int, *, head: bool) -> dict[str, Any]:
    response: dict[str, Any] = {"description": _REASONS.get(code, "Error")}
    if code == 429:
        response["headers"] = {
            "Retry-After": {"description": "Seconds until a retry may pass", "schema": {}}
        }
        response["headers"]["Retry-After"]["schema"] = {"type": "integer"}
    if head:
        return response  # a HEAD answer has no body
    messages = error_messages(op, code)
    media: dict[str, Any] = {"schema": {"$ref": "#/components/schemas/Error"}}
    bodies = [{"error": message, "code": code} for message in messages]
    if len(bodies) == 1:
        media["example"] = bodies[0]
    else:
        media["examples"] = {
            f"example{n}": {"summary": body["error"], "value": body}
            for n, body in enumerate(bodies, 1)
        }
    response["content"] = {"application/json": media}
    return response


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
            return file_too_large(_DEFAULTS["upload_max_bytes"].default).message
        return body_too_large(_DEFAULTS["max_json_body_bytes"].default).message
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


def _add_examples(doc: dict[str, Any], schemas: dict[str, Any], known: dict[str, Any]) -> None:
    """Every JSON request and response body gets an example (US-9.2)."""
    bodies = [doc.get("requestBody", {}), *doc["responses"].values()]
    for body in bodies:
        media = body.get("content", {}).get("application/json")
        if media is None or "example" in media or "examples" in media:
            continue
        if "schema" in media:
            media["example"] = example_of(media["schema"], schemas, known=known)


def render_files(api: Api) -> dict[Path, str]:
    """The committed documentation files, as they should read for this code."""
    import yaml  # test/dev dependency only: the server itself serves JSON

    from control.postman import build_postman

    document = build_document(api)
    return {
        DOCS_DIR / "openapi.yaml": yaml.safe_dump(document, sort_keys=False, allow_unicode=True),
        DOCS_DIR / "postman_collection.json": json.dumps(build_postman(document), indent=2) + "\n",
    }


def main() -> int:
    from control.app import all_routes

    for path, text in render_files(all_routes()).items():
        path.write_text(text)
        print(f"wrote {path.relative_to(DOCS_DIR.parent)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
