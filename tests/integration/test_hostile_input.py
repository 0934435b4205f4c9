"""Hostile input, sent as an attacker would, comes back as one 400 naming the field — never
a 500, never stored (issue 11): NUL bytes and lone surrogates in every kind of text field,
numbers and nesting the parser chokes on, dates outside the calendar, content codings the
node does not decode."""

from __future__ import annotations

import gzip
import json
import uuid
import zlib
from typing import Any

import pytest

from tests.accounts import login, register, unique_email, user_headers
from tests.uploads import UPLOADS, mp3_form

NUL, SURROGATE = "\u0000", "\ud800"
BAD_TEXT = [(NUL, "NUL (\\u0000) characters"), (SURROGATE, "unpaired surrogates")]


def raw_json(value: Any) -> bytes:
    """`value` as JSON text with \\u escapes kept (what a hostile client sends: a lone
    surrogate cannot be encoded as UTF-8 any other way)."""
    return json.dumps(value, ensure_ascii=True).encode()


async def send(client: Any, method: str, path: str, body: bytes, **headers: str) -> Any:
    response = await client.request(
        method, path, data=body, headers={"Content-Type": "application/json", **headers}
    )
    return response.status, await response.json()


@pytest.mark.parametrize(("bad", "what"), BAD_TEXT)
async def test_bad_text_in_every_json_text_field_is_400_naming_it(client, bad, what):
    dj, dj_h = await user_headers(client, "dj")
    cases: list[tuple[str, str, dict[str, Any], dict[str, str], str]] = [
        (
            "POST",
            "/v1/auth/register",
            {"email": unique_email(), "password": "Sup3rSecret!", "name": f"x{bad}y"},
            {},
            "name",
        ),
        (
            "POST",
            "/v1/auth/login",
            {"email": "a@example.com", "password": f"Sup3r{bad}Secret"},
            {},
            "password",
        ),
        ("PATCH", "/v1/users/me", {"name": f"evil{bad}"}, dj_h, "name"),
        ("POST", "/v1/playlists", {"title": f"p{bad}", "tracks": []}, dj_h, "title"),
        (
            "POST",
            "/v1/monetization/plans",
            {"name": f"plan{bad}", "price_cents": 100},
            dj_h,
            "name",
        ),
        (
            "POST",
            "/v1/streams",
            {"name": "s", "shoutcast_url": "http://127.0.0.1:1", "stream_key": f"k{bad}"},
            dj_h,
            "stream_key",
        ),
        (
            "PUT",
            "/v1/playlists/00000000-0000-0000-0000-000000000000",
            {"title": "p", "tracks": [{"upload_id": "x", "title": f"x{bad}"}]},
            dj_h,
            "tracks[0].title",
        ),
    ]
    for method, path, body, headers, field in cases:
        status, answer = await send(client, method, path, raw_json(body), **headers)
        assert status == 400, (path, answer)
        assert answer == {"error": f"Field '{field}' must not contain {what}.", "code": 400}
    # A field *name* with the bad text is refused too, without quoting it back.
    status, answer = await send(client, "PATCH", "/v1/users/me", raw_json({f"n{bad}": 1}), **dj_h)
    assert status == 400 and "field name" in answer["error"]
    me = await (await client.get("/v1/users/me", headers=dj_h)).json()
    assert me["name"] == dj["name"]  # nothing was stored


@pytest.mark.parametrize(("bad", "what"), BAD_TEXT)
async def test_bad_text_in_query_and_multipart_is_400(client, bad, what):
    _, dj_h = await user_headers(client, "dj")
    encoded = "%00" if bad == NUL else "%ED%A0%80"
    response = await client.get(f"/v1/streams?q=a{encoded}", headers=dj_h)
    # yarl decodes invalid UTF-8 as U+FFFD, which is valid text: a search for it is fine.
    assert response.status == (400 if bad == NUL else 200)
    if bad == NUL:
        assert await response.json() == {
            "error": f"Query parameter 'q' must not contain {what}.",
            "code": 400,
        }
    # The file name as RFC 5987 `filename*` (aiohttp's client refuses to send a NUL raw),
    # or raw bytes that are UTF-8 for a surrogate (which UTF-8 forbids).
    name = b"filename*=UTF-8''evil%00.mp3" if bad == NUL else b'filename="evil\xed\xa0\x80.mp3"'
    body = (
        b'--B\r\nContent-Disposition: form-data; name="file"; '
        + name
        + b"\r\nContent-Type: audio/mpeg\r\n\r\nID3\r\n--B--\r\n"
    )
    response = await client.post(
        UPLOADS, data=body, headers={**dj_h, "Content-Type": "multipart/form-data; boundary=B"}
    )
    assert await response.json() == {
        "error": f"Form field 'file (its file name)' must not contain {what}.",
        "code": 400,
    }
    form = mp3_form(b"ID3" + b"\x00" * 100, file_first=False, title=f"t{NUL}")
    response = await client.post(UPLOADS, data=form, headers=dj_h)
    assert response.status == 400
    assert await response.json() == {
        "error": "Form field 'title' must not contain NUL (\\u0000) characters.",
        "code": 400,
    }
    listed = await (await client.get(UPLOADS, headers=dj_h)).json()
    assert listed["uploads"] == []


async def test_numbers_nesting_and_constants_the_parser_chokes_on(client):
    _, dj_h = await user_headers(client, "dj")
    huge = b'{"name": "plan", "price_cents": ' + b"9" * 5001 + b"}"
    status, answer = await send(client, "POST", "/v1/monetization/plans", huge, **dj_h)
    assert (status, answer["error"]) == (
        400,
        "Field 'price_cents' must be a number of at most 100 characters.",
    )
    for number in (b"1e999", b"NaN", b"-Infinity"):
        body = b'{"name": "plan", "price_cents": ' + number + b"}"
        status, answer = await send(client, "POST", "/v1/monetization/plans", body, **dj_h)
        assert (status, answer["error"]) == (400, "Field 'price_cents' must be a finite number.")
    for deep in (b"[" * 50_000 + b"]" * 50_000, b'{"a":' * 50_000 + b"1" + b"}" * 50_000):
        status, answer = await send(client, "POST", "/v1/auth/login", deep)
        assert (status, answer["code"]) == (400, 400)
        assert "nested more than 32 levels" in answer["error"] or "JSON object" in answer["error"]
    body = b'{"email": "a@example.com", "password": "x", "n": ' + b"[" * 40 + b"]" * 40 + b"}"
    status, answer = await send(client, "POST", "/v1/auth/login", body)
    assert answer == {"error": "Request body is nested more than 32 levels deep.", "code": 400}


async def test_dates_outside_the_calendar_are_400(client):
    _, dj_h = await user_headers(client, "dj")
    for query in ("to=0001-01-01", "from=0001-01-01", "to=9999-12-31", "from=9999-12-31"):
        response = await client.get(f"/v1/analytics/playlists/{uuid.uuid4()}?{query}", headers=dj_h)
        assert response.status == 400, query
        answer = await response.json()
        name = query.split("=")[0]
        message = f"Query parameter '{name}' must be a date between 2000-01-01 and 9999-12-01."
        assert (answer["error"], answer["code"]) == (message, 400)


async def test_content_codings_the_node_does_not_decode_are_400(client):
    user = await register(client, "listener")
    body = raw_json({"email": user["email"], "password": user["password"]})
    status, answer = await send(
        client, "POST", "/v1/auth/login", body, **{"Content-Encoding": "br"}
    )
    assert answer == {
        "error": "Header 'Content-Encoding' must be deflate or gzip or identity (a single coding).",
        "code": 400,
    }
    assert status == 400
    _, dj_h = await user_headers(client, "dj")
    response = await client.post(
        UPLOADS,
        data=mp3_form(b"ID3" + b"\x00" * 100),
        headers={**dj_h, "Content-Encoding": "zstd"},
    )
    assert response.status == 400
    assert await response.json() == {
        "error": "Header 'Content-Encoding' must be identity (a single coding).",
        "code": 400,
    }
    # gzip and deflate are decoded, within the body limit: a bomb is a 413.
    for coding, packed in (("gzip", gzip.compress(body)), ("deflate", zlib.compress(body))):
        status, answer = await send(
            client, "POST", "/v1/auth/login", packed, **{"Content-Encoding": coding}
        )
        assert status == 200, answer
    bomb = gzip.compress(b'{"email": "' + b" " * (2 << 20) + b'"}')
    status, answer = await send(
        client, "POST", "/v1/auth/login", bomb, **{"Content-Encoding": "gzip"}
    )
    assert (status, answer["code"]) == (413, 413)
    status, answer = await send(
        client, "POST", "/v1/auth/login", b"not gzip", **{"Content-Encoding": "gzip"}
    )
    assert answer == {"error": "Request body is not valid gzip data.", "code": 400}
    assert (await login(client, user["email"]))["access_token"]


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        # a control character in a part's header (found by the fuzzer: was a 500)
        (b'--B\r\nContent-Disposition: form-data; name="a\x06b"\r\n\r\nx\r\n--B--\r\n', "B"),
        # a broken RFC 5987 file name
        (b"--B\r\nContent-Disposition: form-data; name=\"file\"; filename*=UTF-8''%FF%FE"
         b"\r\n\r\nID3\r\n--B--\r\n", "B"),
        # truncated: no closing boundary
        (b'--B\r\nContent-Disposition: form-data; name="title"\r\n\r\nhalf a ti', "B"),
        # a nested multipart part
        (b"--B\r\nContent-Type: multipart/mixed; boundary=C\r\n\r\n--C\r\n\r\nx\r\n--C--"
         b"\r\n--B--\r\n", "B"),
        # the boundary announced is not the one used
        (b'--X\r\nContent-Disposition: form-data; name="file"\r\n\r\nID3\r\n--X--\r\n', "B"),
        (b"garbage without any boundary", ""),
    ],
)  # fmt: skip
async def test_malformed_multipart_is_400(client, body, content_type):
    _, dj_h = await user_headers(client, "dj")
    boundary = f"; boundary={content_type}" if content_type else ""
    response = await client.post(
        UPLOADS,
        data=body,
        headers={**dj_h, "Content-Type": f"multipart/form-data{boundary}"},
    )
    assert response.status == 400, await response.text()
    assert (await response.json())["code"] == 400
