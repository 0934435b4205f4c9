"""Checking a DJ's source against the admin interfaces of real-protocol fakes on loopback:
the server kind is detected; a wrong key, a dead port, a silent server, an ordinary web
site and a private address all get the same message (no network map), and the key never
reaches the logs."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator

import pytest

from control.streams.probe import PROBE_FAILED, ProbeResult, SourceProbe
from control.urlguard import UrlGuard
from mediaserver.errors import Unprocessable
from relay.status import StreamSource
from tests.sources import (
    IcecastSource,
    NotAStreamServer,
    ShoutcastV1Source,
    ShoutcastV2Source,
    fake_servers_fixture,  # noqa: F401 - provides the fake_servers fixture
)

TITLE = "DJ Example - Opening Track"
KINDS = [
    (ShoutcastV1Source, "shoutcast1", None),
    (ShoutcastV2Source, "shoutcast2", 1),
    (IcecastSource, "icecast2", None),
]


@pytest.fixture
async def probe() -> AsyncIterator[SourceProbe]:
    probe = SourceProbe(UrlGuard(allow_private=True), timeout_seconds=2.0)
    yield probe
    await probe.close()


async def refusal(probe: SourceProbe, url: str, key: str = "changeme", mount: str = "/") -> str:
    with pytest.raises(Unprocessable) as refused:
        await probe.probe(url, key, mount)
    assert refused.value.status == 422
    return refused.value.message


@pytest.mark.parametrize(("fake", "kind", "sid"), KINDS)
async def test_each_server_kind_is_detected_with_its_now_playing(
    fake_servers, probe, fake, kind, sid
):
    source = await fake_servers(fake, title=TITLE)
    found = await probe.probe(source.url, source.admin_password, source.mount)
    assert found == ProbeResult(kind, sid, TITLE, 128, 0)


async def test_an_icecast_mount_that_is_not_live_yet_still_registers(fake_servers, probe):
    source = await fake_servers(IcecastSource)
    found = await probe.probe(source.url, source.admin_password, "/later")
    assert found == ProbeResult("icecast2", None, None, None, None)


@pytest.mark.parametrize("fake", [kind[0] for kind in KINDS])
async def test_a_wrong_key_is_reported_as_such(fake_servers, probe, fake):
    source = await fake_servers(fake)
    message = await refusal(probe, source.url, "not-the-key", source.mount)
    assert message == PROBE_FAILED


async def test_a_closed_port_is_unreachable(probe):
    server = NotAStreamServer()  # its port is reserved but nobody listens on it
    url = server.url
    try:
        message = await refusal(probe, url)
    finally:
        await server.close()
    assert message == PROBE_FAILED


async def test_an_unknown_host_is_unreachable(probe):
    message = await refusal(probe, "http://no-such-host.invalid")
    assert message == PROBE_FAILED


async def test_a_server_that_never_answers_times_out_quickly():
    left = asyncio.Event()

    async def mute(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # reads the request, answers nothing until the client leaves
        writer.close()
        left.set()

    server = await asyncio.start_server(mute, "127.0.0.1", 0)
    url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    probe = SourceProbe(UrlGuard(allow_private=True), timeout_seconds=0.3)
    started = time.monotonic()
    try:
        message = await refusal(probe, url)
    finally:
        await probe.close()
        server.close()
        await server.wait_closed()
    assert message == PROBE_FAILED
    assert time.monotonic() - started < 2
    # Python 3.11's `wait_closed` does not wait for the handler: it closes its side once
    # the probe has gone, before the loop does (else its transport is left unclosed).
    async with asyncio.timeout(5):
        await left.wait()


async def test_an_ordinary_web_site_is_not_a_stream_server(fake_servers, probe):
    site = await fake_servers(NotAStreamServer)
    message = await refusal(probe, site.url)
    assert message == PROBE_FAILED
    assert site.requests == 3  # Icecast, SHOUTcast v2 and v1 admin pages were all tried


@pytest.mark.parametrize(("fake", "kind", "sid"), KINDS)
async def test_fetch_stats_follows_the_title_and_fails_softly(fake_servers, probe, fake, kind, sid):
    source = await fake_servers(fake, title=TITLE)
    registered = StreamSource(uuid.uuid4(), source.url, source.mount, kind, sid, "n", None, None)
    source.set_title("DJ Example - Second Track")
    stats = await probe.fetch_stats(registered, source.admin_password)
    assert stats == ProbeResult(kind, sid, "DJ Example - Second Track", 128, 0)

    assert await probe.fetch_stats(registered, "not-the-key") is None
    await source.stop()
    assert await probe.fetch_stats(registered, source.admin_password) is None


async def test_the_key_never_reaches_the_logs_or_messages(fake_servers, probe, caplog):
    caplog.set_level(logging.DEBUG)
    key = "s3cr3t-KEY-8d1f"
    source = await fake_servers(IcecastSource, admin_password=key)
    site = await fake_servers(NotAStreamServer)
    await probe.probe(source.url, key, source.mount)
    messages = [await refusal(probe, site.url, key), await refusal(probe, source.url, key + "x")]
    assert caplog.records  # the checks are logged…
    assert key not in caplog.text  # …without the key
    assert all(key not in m for m in messages)


class _FirstAnswerPublic(UrlGuard):
    """A guard whose up-front check passed, as when DNS first answered a public address:
    what is left is the check on the address each connection resolves to."""

    async def check(self, url: str) -> None:
        return None


@pytest.mark.parametrize("rebinding", [False, True])
async def test_private_sources_are_refused_with_the_same_message(fake_servers, rebinding):
    source = await fake_servers(IcecastSource)  # a real, working source on loopback
    guard = _FirstAnswerPublic() if rebinding else UrlGuard(allow_private=False)
    probe = SourceProbe(guard, timeout_seconds=2.0)
    url = source.url.replace("127.0.0.1", "localhost")  # a name, resolved at connect time
    try:
        message = await refusal(probe, url, source.admin_password, source.mount)
        assert (
            await probe.fetch_stats(
                StreamSource(uuid.uuid4(), url, source.mount, "icecast2", None, "n", None, None),
                source.admin_password,
            )
            is None
        )
    finally:
        await probe.close()
    assert message == PROBE_FAILED
