"""`mediaserver serve --demo`: start the built-in demo source, register it as a public
stream of a demo DJ account, print where to listen, and remove it again on shutdown.

The demo source listens on a new port each run, so a demo stream left behind by a node
that crashed points at nothing: the demo DJ's streams are removed before registering."""

from __future__ import annotations

import asyncio
import secrets
import sys
from collections.abc import AsyncIterator

from aiohttp import web
from pydantic import SecretStr

from control.auth.schemas import RegisterIn
from control.auth.service import AUTH
from control.security import ROLE_SCOPES, Principal
from control.streams.schemas import StreamIn, StreamListQuery
from control.streams.service import STREAMS
from hls.tone import demo_clip
from mediaserver.config import SETTINGS, Settings
from mediaserver.errors import Conflict
from relay.demo import MOUNT, DemoSource

DEMO_EMAIL = "demo-dj@example.com"
SECONDS_PER_TITLE = 8.0


def with_stubs(settings: Settings) -> Settings:
    """A demo node sells plans and verifies domains with the stubs, unless the settings
    name a real provider or verifier (production nodes name them or leave them off)."""
    return settings.model_copy(
        update={
            "payment_provider": settings.payment_provider or "stub",
            "domain_verifier": settings.domain_verifier or "stub",
        }
    )


async def demo_context(app: web.Application) -> AsyncIterator[None]:
    """cleanup_ctx: runs after the services are up."""
    data, titles = await asyncio.to_thread(demo_clip, SECONDS_PER_TITLE)
    source = DemoSource.from_mp3(data, titles, SECONDS_PER_TITLE)
    await source.start()
    principal = await _demo_dj(app)
    await _remove_stale_streams(app, principal)
    body = StreamIn(
        name="mediaserver demo",
        shoutcast_url=source.url,
        mount=MOUNT,
        stream_key=SecretStr(source.password),
        genre="Ambient",
        description="A generated tone with changing titles",
    )
    created = await app[STREAMS].register(principal, body)
    base = f"{app[SETTINGS].base_url}/v1/streams/{created.stream_id}"
    print(
        f"demo stream ready:\n  MP3  {base}/live.mp3\n  HLS  {base}/live.m3u8\n"
        f"  now playing  {base}/status",
        file=sys.stderr,
        flush=True,
    )
    try:
        yield
    finally:
        await app[STREAMS].delete(principal, created.stream_id)
        await source.close()


async def _remove_stale_streams(app: web.Application, principal: Principal) -> None:
    """Delete what earlier runs registered (their relays, started with the node, stop)."""
    streams = app[STREAMS]
    query = StreamListQuery(mine=True, per_page=100)
    for _ in range(100):  # bounded: each round deletes a whole page
        page = await streams.directory(principal, query)
        for stream in page.streams:
            await streams.delete(principal, stream.stream_id)
        if len(page.streams) < query.per_page:
            return


async def _demo_dj(app: web.Application) -> Principal:
    auth = app[AUTH]
    password = secrets.token_urlsafe(12) + "aA1"
    try:
        user = await auth.register(
            RegisterIn(email=DEMO_EMAIL, password=password, name="Demo DJ", role="dj")
        )
        user_id = user.user_id
    except Conflict:
        existing = await auth.find_by_email(DEMO_EMAIL)
        assert existing is not None
        user_id = existing
    return Principal(user_id, DEMO_EMAIL, "dj", frozenset(ROLE_SCOPES["dj"]), "demo")
