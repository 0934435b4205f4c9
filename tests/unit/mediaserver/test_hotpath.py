"""The pieces of the hot path that need no server: which heads a connection may answer
itself, what a kept response depends on, and that aiohttp still has what it reads."""

from __future__ import annotations

import contextvars

import pytest

from control.mediacache import TtlCache
from mediaserver import hotpath

GET = b"GET /v1/streams/x/live.m3u8 HTTP/1.1\r\nHost: a\r\nUser-Agent: p\r\n\r\n"


@pytest.mark.parametrize(
    ("data", "plain"),
    [
        (GET, True),
        (b"HEAD /x HTTP/1.1\r\nHost: a\r\n\r\n", True),
        (GET[:-2], False),  # not whole yet
        (GET + GET, False),  # pipelined: aiohttp's
        (b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n", False),
        (b"GET /x HTTP/1.1\r\nContent-Length: 3\r\n\r\n", False),  # a GET with a body
        (b"GET /x HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\n", False),
        (b"GET /ws HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n", False),
        (b"GET /x HTTP/1.1\nHost: a\n\nGET /y HTTP/1.1\r\n\r\n", False),  # bare LF
        (b"GET /x HTTP/1.1\rHost: a\r\n\r\n", False),  # bare CR
    ],
)
def test_only_one_whole_bodiless_head_is_plain(data: bytes, plain: bool) -> None:
    assert hotpath.one_plain_head(data) is plain


def test_aiohttp_still_has_what_the_handler_reads() -> None:
    # Fails on an aiohttp upgrade that renamed them: the node would serve without hot
    # responses (and say so in its log) until `HotRequestHandler` follows.
    assert hotpath.supported()


def _built_from(work) -> tuple:  # type: ignore[no-untyped-def]
    def run() -> tuple:
        hotpath.collect()
        work()
        return tuple(hotpath._built_from.get() or ())

    return contextvars.copy_context().run(run)


def test_a_response_depends_on_the_cached_rows_it_read() -> None:
    now = [0.0]
    rows: TtlCache[str, str] = TtlCache(ttl=1.0, clock=lambda: now[0])
    rows.put("stream", "row-1")
    built_from = _built_from(lambda: rows.get("stream"))
    assert len(built_from) == 1

    def fresh() -> bool:
        return all(source.holds(key, token) for source, key, token in built_from)

    assert fresh()
    rows.put("stream", "row-1")  # reloaded: another entry, even with an equal value
    assert not fresh()
    built_from = _built_from(lambda: rows.get("stream"))
    assert fresh()
    now[0] = 1.0  # expired
    assert not fresh()
    rows.put("stream", "row-2")
    built_from = _built_from(lambda: rows.get("stream"))
    rows.pop("stream")  # changed on this node
    assert not fresh()


def test_nothing_is_noted_outside_a_media_request() -> None:
    rows: TtlCache[str, str] = TtlCache()
    rows.put("k", "v")
    assert (
        contextvars.copy_context().run(lambda: (rows.get("k"), hotpath._built_from.get()))[1]
        is None
    )
    assert not _built_from(hotpath.uncached)[0][0].holds(None, None)


def test_the_date_line_is_an_http_date() -> None:
    line = hotpath._date()
    assert line.startswith(b"Date: ") and line.endswith(b" GMT\r\n")


def test_headers_set_afresh_per_request_are_left_out_of_the_key() -> None:
    plain = b"GET /v1/playlists/x/stream.m3u8 HTTP/1.1\r\nHost: a\r\nUser-Agent: p\r\n\r\n"
    assert hotpath.stable_head(plain) is None  # nothing volatile: the head is its own key
    stamped = (
        b"GET /v1/playlists/x/stream.m3u8 HTTP/1.1\r\nHost: a\r\nX-Request-ID: abc-1\r\n"
        b"User-Agent: p\r\nX-Forwarded-For: 192.0.2.9, 10.0.0.1\r\n"
        b"traceparent: 00-4bf92f3577b34da6-00f067aa0ba902b7-01\r\nCF-Ray: 8e1\r\n\r\n"
    )
    stable = hotpath.stable_head(stamped)
    assert stable is not None and stable.key == plain
    assert (stable.request_id, stable.forwarded) == ("abc-1", "192.0.2.9")
    # Only whole header names count: a path or another header that merely contains one
    # keeps its line.
    lookalike = b"GET /b3/cf-ray HTTP/1.1\r\nHost: a\r\nX-Request-IDs: 1\r\nB3: x\r\n\r\n"
    stable = hotpath.stable_head(lookalike)
    assert stable is not None
    assert stable.key == b"GET /b3/cf-ray HTTP/1.1\r\nHost: a\r\nX-Request-IDs: 1\r\n\r\n"
