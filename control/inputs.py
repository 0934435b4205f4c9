"""Hostile input stopped at the edge, before validation, PostgreSQL or the encoder see it.

Every JSON body, query string and multipart text field passes through here once:

- `load_json(raw)`: `json.loads` with limits. A number longer than `MAX_NUMBER_CHARS`
  (Python refuses ints over 4 300 digits with a ValueError, and `1e999` is infinity), a
  non-finite constant (`NaN`, `Infinity`: not JSON, RFC 8259 §6) or nesting deeper than
  `MAX_DEPTH` is refused with a 400 naming the field; nesting too deep for the parser itself
  (`[[[[…` 50 000 levels) is refused without one.
- `check_text(value, where)`: no NUL (`\\u0000`: PostgreSQL's text cannot hold it) and no
  unpaired UTF-16 surrogate (`\\ud800`: not a Unicode scalar value, UTF-8 cannot encode it).
  `check_tree` applies it to every key and string of a parsed body.
- `check_encoding(request)`: a body in a `Content-Encoding` the node does not decode is
  refused before it is read; `read_body` reads and decodes one within a size and a time
  limit (aiohttp's own decoding is off: `control.connection`).

Each failure is an `InvalidInput` (400 `{"error": …, "code": 400}`)."""

from __future__ import annotations

import asyncio
import json
import math
import re
import zlib
from typing import Any, Literal

from aiohttp import hdrs, web

from mediaserver.errors import InvalidInput, RequestTimeout, TooLarge

MAX_DEPTH = 32
#: Characters of one JSON number: far beyond any id, count or price, far below Python's
#: 4 300-digit int limit.
MAX_NUMBER_CHARS = 100
#: The content codings of JSON bodies the node decodes (`read_body`).
ENCODINGS = frozenset({"identity", "gzip", "deflate", "x-gzip"})

Where = Literal["body", "query", "form"]
_BAD_TEXT = re.compile("[\x00\ud800-\udfff]")
_NOUNS = {"body": "Field", "query": "Query parameter", "form": "Form field"}
_OWNERS = {"body": "Request body", "query": "The query string", "form": "The form"}


class _Refused:
    """A number the loader would not take, kept in place so the walk can name its field."""

    __slots__ = ("reason",)

    def __init__(self, reason: str) -> None:
        self.reason = reason


def _number(text: str, parse: type[int] | type[float]) -> Any:
    if len(text) > MAX_NUMBER_CHARS:
        return _Refused(f"must be a number of at most {MAX_NUMBER_CHARS} characters")
    value = parse(text)
    if isinstance(value, float) and not math.isfinite(value):
        return _Refused("must be a finite number")
    return value


def _int(text: str) -> Any:
    return _number(text, int)


def _float(text: str) -> Any:
    return _number(text, float)


def _constant(_: str) -> Any:
    return _Refused("must be a finite number")


def load_json(raw: bytes) -> Any:
    """`raw` parsed as JSON within the limits of the module doc; `InvalidInput` otherwise."""
    try:
        data = json.loads(raw, parse_int=_int, parse_float=_float, parse_constant=_constant)
    except RecursionError:
        raise InvalidInput(f"Request body is nested more than {MAX_DEPTH} levels deep.") from None
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise InvalidInput("Request body must be valid JSON.") from None
    check_tree(data)
    return data


def check_tree(data: Any) -> None:
    """Every key and value of a parsed JSON document: text (`check_text`), numbers and
    depth (`load_json`); raises `InvalidInput` naming the first field that fails."""
    stack: list[tuple[Any, str, int]] = [(data, "", 0)]
    while stack:
        value, path, depth = stack.pop()
        if depth >= MAX_DEPTH:  # the body itself is level 1
            raise InvalidInput(f"Request body is nested more than {MAX_DEPTH} levels deep.")
        if isinstance(value, str):
            check_text(value, path or None, "body")
        elif isinstance(value, _Refused):
            raise InvalidInput(_sentence(path or None, "body", value.reason))
        elif isinstance(value, dict):
            for key, item in value.items():
                check_text(key, None, "body", key=True, parent=path)
                stack.append((item, f"{path}.{key}" if path else key, depth + 1))
        elif isinstance(value, list):
            stack.extend((item, f"{path}[{i}]", depth + 1) for i, item in enumerate(value))


def check_text(
    value: str,
    name: str | None,
    where: Where,
    *,
    key: bool = False,
    parent: str = "",
) -> None:
    """Raise `InvalidInput` when `value` holds a NUL or an unpaired surrogate. `name` is
    the field's name (None: the body itself); with `key=True`, `value` is a field name."""
    bad = _BAD_TEXT.search(value)
    if bad is None:
        return
    what = "NUL (\\u0000) characters" if bad.group() == "\x00" else "unpaired surrogates"
    if key:  # the offending name cannot be quoted back: it is the bad text
        owner = f"Field '{parent}'" if parent else _OWNERS[where]
        raise InvalidInput(f"{owner} has a field name with {what}, which are not allowed.")
    raise InvalidInput(_sentence(name, where, f"must not contain {what}"))


def check_query(query: Any) -> None:
    """Every name and value of a query string (`request.query`)."""
    for name, value in query.items():
        check_text(name, None, "query", key=True)
        check_text(value, name, "query")


def check_encoding(request: web.Request, allowed: frozenset[str] = ENCODINGS) -> str:
    """The body's content coding (RFC 9110 §8.4), lower-cased; `InvalidInput` unless it is
    one coding of `allowed`. aiohttp does not decode bodies here (`control.connection`)."""
    header = request.headers.get(hdrs.CONTENT_ENCODING)
    if header is None:
        return "identity"
    coding = header.strip().lower()
    if coding not in allowed:
        names = " or ".join(sorted(allowed - {"x-gzip"}))
        raise InvalidInput(f"Header 'Content-Encoding' must be {names} (a single coding).")
    return coding


def body_timed_out(seconds: float) -> RequestTimeout:
    return RequestTimeout(f"The request body did not arrive within {seconds:g} s.")


async def read_body(request: web.Request, limit: int, seconds: float) -> bytes:
    """The whole body, decoded, within `seconds` and `limit` bytes (decoded: a small
    gzip cannot inflate past it); `TooLarge` / `InvalidInput` / `RequestTimeout`."""
    coding = check_encoding(request)
    try:
        async with asyncio.timeout(seconds):
            raw = await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise TooLarge(f"Request body is too large (limit {limit} bytes).") from None
    except TimeoutError:
        raise body_timed_out(seconds) from None
    if coding in ("identity", ""):
        return raw
    wbits = 16 + zlib.MAX_WBITS if coding in ("gzip", "x-gzip") else zlib.MAX_WBITS
    inflater = zlib.decompressobj(wbits)
    try:
        data = inflater.decompress(raw, limit + 1)
    except zlib.error:
        raise InvalidInput(f"Request body is not valid {coding} data.") from None
    if len(data) > limit:
        raise TooLarge(f"Request body is too large (limit {limit} bytes).")
    if not inflater.eof:
        raise InvalidInput(f"Request body is not valid {coding} data.")
    return data


def _sentence(name: str | None, where: Where, text: str) -> str:
    if name is None:
        return f"Request body {text}."
    return f"{_NOUNS[where]} '{name}' {text}."
