"""The OpenAPI 3.1 document, generated from the route table and its pydantic models.
`python -m control.openapi` rewrites `docs/openapi.yaml` and `docs/postman_collection.json`
(`control.postman`); a test fails when they drift from the code.

Every request and response has an example (`control.examples`), errors with the messages
the server really sends."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

from aiohttp import web
from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode

from control.api import PATH_PARAM, Api, Operation, Param
from control.examples import (
    DEFAULTS,
    EXAMPLE_ID,
    TEXT_EXAMPLES,
    error_messages,
    example_of,
    known_examples,
)

OPENAPI = web.AppKey("openapi", dict[str, Any])
DOCS_DIR = Path(__file__).resolve().parent.parent / "docs"
VERSION = "0.1.0"

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
    408: "The request body did not arrive in time",
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
#: The limit of each rate class: the setting, and whom it counts.
_RATES = {
    "metadata": ("RATE_LIMIT_METADATA_PER_MINUTE", "rate_limit_metadata_per_minute", "user"),
    "write": ("RATE_LIMIT_WRITE_PER_MINUTE", "rate_limit_write_per_minute", "user"),
    "streaming": ("RATE_LIMIT_STREAMING_PER_MINUTE", "rate_limit_streaming_per_minute", "ip"),
    "auth": ("RATE_LIMIT_AUTH_PER_IP_PER_MINUTE", "rate_limit_auth_per_ip_per_minute", "ip"),
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
    known = known_examples(schemas)
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
            "per_minute": DEFAULTS[field].default,
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
    return f"Rate limit: `{setting}` ({DEFAULTS[field].default}) requests a minute {whom}."


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


_NAME_EXAMPLES = {"segment": "segment000.ts", "name": "swagger-ui.css", "asset": "pages.css"}


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
        return None if op.form is None else _urlencoded_body(op.form)
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


def _urlencoded_body(form: type[BaseModel]) -> dict[str, Any]:
    """The fields an HTML form posts (`application/x-www-form-urlencoded`)."""
    schema = form.model_json_schema()
    example = {name: example_of(prop, {}) for name, prop in schema["properties"].items()}
    media = {"schema": schema, "example": example}
    return {"required": True, "content": {"application/x-www-form-urlencoded": media}}


def _responses(op: Operation, components: _Components, *, head: bool) -> dict[str, Any]:
    success: dict[str, Any] = {"description": _REASONS.get(op.status, "OK")}
    if op.status != 204 and not head:
        if op.response is not None:
            schema = components.ref(op.response, "serialization")
            success["content"] = {"application/json": {"schema": schema}}
        else:
            types = (op.produces, *op.also_produces)
            success["content"] = {media: _media_content(media) for media in types}
    responses: dict[str, Any] = {str(op.status): success}
    for code, reason in sorted(op.also.items()):
        responses[str(code)] = {"description": reason}
    for code in sorted(set(op.errors) | _body_errors(op)):
        responses[str(code)] = _error_response(op, code, head=head)
    return responses


def _body_errors(op: Operation) -> set[int]:
    """What reading a request body can answer besides the operation's own errors: 408 when
    the client stops sending it (`BODY_READ_TIMEOUT_SECONDS`, the upload's idle limit)."""
    reads = op.body is not None or op.file_field is not None or op.form is not None
    return {408} if reads else set()


def _media_content(media_type: str) -> dict[str, Any]:
    if media_type.startswith(_BINARY_TYPES):
        return {"schema": {"type": "string", "format": "binary"}}
    example = TEXT_EXAMPLES.get(media_type, "")
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
    if code == 400 and op.produces == "text/html":  # a form's page, saying what to correct
        response["content"] = {"text/html": _media_content("text/html")}
        return response
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
