"""Checking a DJ's source against the admin interfaces of real-protocol fakes on loopback:
the server kind is detected, a wrong key, a dead port, a silent server and an ordinary web
site each get their own message, and the key never reaches the logs."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator

import pytest

from control.streams.probe import ProbeResult, SourceProbe
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
    probe = SourceProbe(timeout_seconds=2.0)
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
    assert message == "The source rejected the stream key"


async def test_a_closed_port_is_unreachable(probe):
    server = NotAStreamServer()  # its port is reserved but nobody listens on it
    url = server.url
    try:
        message = await refusal(probe, url)
    finally:
        await server.close()
    assert message == f"Cannot connect to the source at {url}: connection refused"


async def test_an_unknown_host_is_unreachable(probe):
    message = await refusal(probe, "http://no-such-host.invalid")
    assert message == (
        "Cannot connect to the source at http://no-such-host.invalid: "
        "the host name does not resolve"
    )


async def test_a_server_that_never_answers_times_out_quickly():
    left = asyncio.Event()

    async def mute(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # reads the request, answers nothing until the client leaves
        writer.close()
        left.set()

    server = await asyncio.start_server(mute, "127.0.0.1", 0)
    url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    probe = SourceProbe(timeout_seconds=0.3)
    started = time.monotonic()
    try:
        message = await refusal(probe, url)
    finally:
        await probe.close()
        server.close()
        await server.wait_closed()
    assert message == f"Cannot connect to the source at {url}: no answer within 0.3 s"
    assert time.monotonic() - started < 2
    # Python 3.11's `wait_closed` does not wait for the handler: it closes its side once
    # the probe has gone, before the loop does (else its transport is left unclosed).
    async with asyncio.timeout(5):
        await left.wait()


async def test_an_ordinary_web_site_is_not_a_stream_server(fake_servers, probe):
    site = await fake_servers(NotAStreamServer)
    message = await refusal(probe, site.url)
    assert message == f"{site.url} does not look like a SHOUTcast or Icecast server"
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
