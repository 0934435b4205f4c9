"""The OpenAPI 3.1 document and the Postman collection, generated from the route table and
its pydantic models. `python -m control.openapi` rewrites `docs/openapi.yaml` and
`docs/postman_collection.json`; a test fails when they drift from the code."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from aiohttp import web
from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode

from control.api import PATH_PARAM, Api, Operation

OPENAPI = web.AppKey("openapi", dict[str, Any])
DOCS_DIR = Path(__file__).resolve().parent.parent / "docs"
VERSION = "0.1.0"

_REASONS = {
    200: "OK",
    201: "Created",
    204: "No Content",
    206: "Partial Content",
    304: "Not Modified",
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
_ERROR_EXAMPLES = {
    400: "Field 'email' must be a valid email address.",
    401: "Authentication required",
    402: "Payment failed: the payment method was declined.",
    403: "Access denied",
    404: "Not found",
    429: "Rate limit exceeded. Try again in 6 seconds.",
}
_ERROR_SCHEMA = {
    "type": "object",
    "required": ["error", "code"],
    "properties": {
        "error": {"type": "string", "description": "What went wrong, for a person to act on."},
        "code": {"type": "integer", "description": "The HTTP status code."},
        "details": {"description": "Optional extra information, e.g. every validation error."},
    },
    "example": {"error": "Field 'email' must be a valid email address.", "code": 400},
}


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
    "uuid": "3fa85f64-5717-4562-b3fc-2c963f66afa6",
    "date-time": "2025-06-01T12:00:00Z",
    "date": "2025-06-01",
    "uri": "https://example.com/",
}
_TYPE_EXAMPLES = {"string": "string", "integer": 1, "number": 1.5, "boolean": False, "null": None}


def example_of(schema: dict[str, Any], schemas: dict[str, Any], depth: int = 0) -> Any:
    """A plausible value for `schema`: its own example, else one built from its parts."""
    if "$ref" in schema:
        return example_of(schemas[schema["$ref"].rsplit("/", 1)[1]], schemas, depth + 1)
    for key in ("examples", "enum"):
        if schema.get(key):
            return schema[key][0]
    for key in ("const", "default", "example"):
        if key in schema and schema[key] is not None:
            return schema[key]
    if "anyOf" in schema:
        options = [o for o in schema["anyOf"] if o.get("type") != "null"] or schema["anyOf"]
        return example_of(options[0], schemas, depth + 1)
    kind = schema.get("type")
    if kind == "object" and depth < 6:
        props = schema.get("properties", {})
        return {name: example_of(prop, schemas, depth + 1) for name, prop in props.items()}
    if kind == "array" and depth < 6:
        return [example_of(schema.get("items", {}), schemas, depth + 1)]
    if kind == "string" and schema.get("format") in _FORMAT_EXAMPLES:
        return _FORMAT_EXAMPLES[schema["format"]]
    if kind == "integer" and "minimum" in schema:
        return schema["minimum"]
    return _TYPE_EXAMPLES.get(kind) if isinstance(kind, str) else None


def _add_examples(document: dict[str, Any]) -> None:
    """Every JSON request and response body gets an example (US-9.2)."""
    schemas = document["components"]["schemas"]
    for methods in document["paths"].values():
        for op in methods.values():
            bodies = [op.get("requestBody", {}), *op["responses"].values()]
            for body in bodies:
                media = body.get("content", {}).get("application/json")
                if media is not None and "schema" in media and "example" not in media:
                    media["example"] = example_of(media["schema"], schemas)


def build_document(api: Api, server_url: str = "/") -> dict[str, Any]:
    components = _Components()
    paths: dict[str, dict[str, Any]] = {}
    for op in api.operations:
        path = PATH_PARAM.sub(r"{\1}", op.path)
        paths.setdefault(path, {})[op.method.lower()] = _operation(op, path, components)
    document = {
        "openapi": "3.1.0",
        "info": {
            "title": "mediaserver API",
            "version": VERSION,
            "description": "Live relay, HLS, on-demand playlists, podcasts, analytics and "
            "monetization for DJs and their listeners. Every error is "
            '`{"error": "...", "code": N}`.',
        },
        "servers": [{"url": server_url}],
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": dict(sorted(components.schemas.items())),
            "securitySchemes": {
                "bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
                "relayToken": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "RELAY_SERVICE_TOKEN of the node",
                },
            },
        },
    }
    _add_examples(document)
    return document


def _operation(op: Operation, path: str, components: _Components) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "operationId": op.name.replace(".", "_"),
        "summary": op.summary,
        "tags": [op.tag],
    }
    if op.description:
        doc["description"] = op.description
    params = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in PATH_PARAM.findall(path)
    ]
    if op.query is not None:
        schema = op.query.model_json_schema()
        for name, prop in schema.get("properties", {}).items():
            params.append(
                {
                    "name": name,
                    "in": "query",
                    "required": name in schema.get("required", []),
                    "schema": prop,
                }
            )
    if params:
        doc["parameters"] = params
    if op.body is not None:
        doc["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": components.ref(op.body, "validation")}},
        }
    if op.auth == "required":
        doc["security"] = [{"bearerAuth": []}]
    elif op.auth == "optional":
        doc["security"] = [{"bearerAuth": []}, {}]
    elif op.auth == "service":
        doc["security"] = [{"relayToken": []}]
    notes = [
        f"Requires scope `{op.scope}`." if op.scope else "",
        f"Requires role `{op.role}`." if op.role else "",
    ]
    if any(notes):
        doc["description"] = " ".join(filter(None, [op.description, *notes]))
    doc["responses"] = _responses(op, components)
    return doc


def _responses(op: Operation, components: _Components) -> dict[str, Any]:
    success: dict[str, Any] = {"description": _REASONS.get(op.status, "OK")}
    if op.response is not None:
        success["content"] = {
            "application/json": {"schema": components.ref(op.response, "serialization")}
        }
    elif op.status != 204:
        success["content"] = {op.produces: {}}
    responses: dict[str, Any] = {str(op.status): success}
    for code in sorted(set(op.errors)):
        responses[str(code)] = {
            "description": _REASONS.get(code, "Error"),
            "content": {
                "application/json": {
                    "schema": {"$ref": "#/components/schemas/Error"},
                    "example": {
                        "error": _error_example(op, code),
                        "code": code,
                    },
                }
            },
        }
    return responses


def _error_example(op: Operation, code: int) -> str | None:
    """A message this route really gives: a 400 names one of its own fields."""
    if code == 400:
        model, noun = (op.body, "Field") if op.body is not None else (op.query, "Query parameter")
        if model is not None:
            fields = {info.alias or name: info for name, info in model.model_fields.items()}
            required = [name for name, info in fields.items() if info.is_required()]
            name = next(iter(required or fields), None)
            if name is not None:
                verb = "is required" if required else "is invalid"
                return f"{noun} '{name}' {verb}."
        return "Request body must be valid JSON." if op.body is not None else "Invalid request."
    return _ERROR_EXAMPLES.get(code, _REASONS.get(code))


def build_postman(document: dict[str, Any]) -> dict[str, Any]:
    """A Postman v2.1 collection with one request per operation and a status-code test."""
    folders: dict[str, list[dict[str, Any]]] = {}
    for path, methods in document["paths"].items():
        for method, op in methods.items():
            status = next(iter(op["responses"]))
            request: dict[str, Any] = {
                "method": method.upper(),
                "header": [],
                "url": {
                    "raw": "{{baseUrl}}" + path.replace("{", "{{").replace("}", "}}"),
                    "host": ["{{baseUrl}}"],
                    "path": [
                        p.replace("{", "{{").replace("}", "}}") for p in path.strip("/").split("/")
                    ],
                },
            }
            if "security" in op:
                request["header"].append(
                    {"key": "Authorization", "value": "Bearer {{accessToken}}"}
                )
            if "requestBody" in op:
                request["header"].append({"key": "Content-Type", "value": "application/json"})
                request["body"] = {"mode": "raw", "raw": "{}"}
            folders.setdefault(op["tags"][0], []).append(
                {
                    "name": op["summary"],
                    "request": request,
                    "event": [
                        {
                            "listen": "test",
                            "script": {
                                "type": "text/javascript",
                                "exec": [
                                    f"pm.test('status {status}', "
                                    f"() => pm.response.to.have.status({status}));"
                                ],
                            },
                        }
                    ],
                }
            )
    return {
        "info": {
            "name": "mediaserver API",
            "schema": "https://schema.getpostman.com/json/collection/v2.1.0/collection.json",
        },
        "variable": [
            {"key": "baseUrl", "value": "https://api.staging.example.com"},
            {"key": "accessToken", "value": ""},
        ],
        "item": [{"name": tag, "item": items} for tag, items in sorted(folders.items())],
    }


def render_files(api: Api) -> dict[Path, str]:
    """The committed documentation files, as they should read for this code."""
    import yaml  # test/dev dependency only: the server itself serves JSON

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
