"""`send_body`: a representation in memory as players and caches see it — its headers, the
gzip variant and which validator a 304 names, a range of the identity coding, HEAD."""

from __future__ import annotations

import gzip

from aiohttp import web
from aiohttp.test_utils import make_mocked_request
from multidict import CIMultiDict

from control.bodies import send_body
from control.mediacache import Body

TEXT = b"#EXTM3U\n" + b"#EXTINF:6.0,\nhttps://cdn.example/live/1.ts\n" * 40
MANIFEST = Body.of(TEXT, compress=True)
SEGMENT = Body.of(bytes(range(256)) * 8)
CACHE = "public, max-age=60"


def send(body: Body, method: str = "GET", **fields: str) -> web.Response:
    headers = CIMultiDict({name.replace("_", "-"): value for name, value in fields.items()})
    request = make_mocked_request(method, "/media", headers=headers)
    return send_body(request, body, "application/vnd.apple.mpegurl", CACHE)


def test_the_common_request_gets_the_bytes_and_their_validator():
    response = send(SEGMENT, User_Agent="player/1", Accept_Encoding="gzip")
    assert (response.status, response.body) == (200, SEGMENT.data)
    assert dict(response.headers) == {
        "Content-Type": "application/vnd.apple.mpegurl",
        "Cache-Control": CACHE,
        "Accept-Ranges": "bytes",
        "ETag": SEGMENT.etag,
        # What the envelope would add to any media response, made once with the body's
        # headers (so the envelope skips them).
        "Server": "mediaserver",
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "Cross-Origin-Resource-Policy": "cross-origin",
    }


def test_the_headers_of_a_body_are_made_once_per_way_of_sending_it():
    first, again = send(SEGMENT), send(SEGMENT, User_Agent="another player")
    assert dict(first.headers) == dict(again.headers)
    assert len(SEGMENT.headers) == 1  # one content type, cache and coding: one set
    first.headers["X-Request-ID"] = "abc"  # a response's headers are its own copy
    assert "X-Request-ID" not in send(SEGMENT).headers


def test_text_goes_gzipped_to_who_accepts_it_with_its_own_etag():
    assert MANIFEST.gzipped is not None and MANIFEST.gzip_etag is not None
    packed = send(MANIFEST, Accept_Encoding="gzip, deflate")
    assert packed.headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(packed.body) == TEXT
    assert packed.headers["ETag"] == MANIFEST.gzip_etag != MANIFEST.etag
    plain = send(MANIFEST)
    assert plain.body == TEXT and "Content-Encoding" not in plain.headers
    assert plain.headers["ETag"] == MANIFEST.etag
    assert plain.headers["Vary"] == packed.headers["Vary"] == "Accept-Encoding"


def test_a_304_names_the_coding_the_client_holds():
    gz = MANIFEST.gzip_etag
    assert gz is not None
    for held, accepts, status, named in [
        (gz, "gzip", 304, gz),
        (MANIFEST.etag, "gzip", 304, MANIFEST.etag),  # identity suits anyone
        (gz, "identity", 200, MANIFEST.etag),  # it cannot take what it holds
        (f"{MANIFEST.etag}, {gz}", "gzip", 304, gz),  # a cache holding both: the selected one
        ("*", "gzip", 304, gz),
    ]:
        response = send(MANIFEST, If_None_Match=held, Accept_Encoding=accepts)
        assert (response.status, response.headers["ETag"]) == (status, named), held
        if status == 304:
            assert response.body is None and "Content-Encoding" not in response.headers
            assert "Content-Type" not in response.headers
            assert response.headers["Vary"] == "Accept-Encoding"


def test_a_range_is_of_the_identity_coding():
    response = send(MANIFEST, Range="bytes=0-6", Accept_Encoding="gzip")
    assert (response.status, response.body) == (206, b"#EXTM3U")
    assert response.headers["Content-Range"] == f"bytes 0-6/{len(TEXT)}"
    assert response.headers["ETag"] == MANIFEST.etag
    assert "Content-Encoding" not in response.headers
    matched = send(MANIFEST, Range="bytes=0-6", If_Range=MANIFEST.etag)
    assert matched.status == 206
    for if_range in (MANIFEST.gzip_etag, f"W/{MANIFEST.etag}", "Tue, 10 Jun 2025 14:00:00 GMT"):
        changed = send(MANIFEST, Range="bytes=0-6", If_Range=if_range or "")
        assert (changed.status, changed.body) == (200, TEXT)  # no Last-Modified to compare


def test_an_unsatisfiable_range_is_416():
    response = send(SEGMENT, Range="bytes=2048-")
    assert response.status == 416
    assert response.headers["Content-Range"] == "bytes */2048"
    assert response.headers["Content-Type"] == "application/json; charset=utf-8"


def test_head_gets_the_headers_of_the_whole_body():
    response = send(SEGMENT, "HEAD", Range="bytes=0-9")
    assert response.status == 200 and "Content-Range" not in response.headers
    assert response.body == SEGMENT.data  # aiohttp sends a HEAD response's headers only
