"""`mediaserver serve --demo`: start the built-in demo source, register it as a public
stream of a demo DJ account, print where to listen, and disable it again on shutdown.

The demo stream keeps one id for a data dir (`DEMO_ID_FILE` there, else the demo DJ's
stream named `DEMO_NAME` in the database), so yesterday's demo link plays again today:
each run points that stream at the run's demo source (which listens on a new port) and
enables it. Other streams of the demo DJ (left by a node that
crashed, or by an older version that made a new stream each run) are removed."""

from __future__ import annotations

import asyncio
import secrets
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

from aiohttp import web
from pydantic import SecretStr

from control.auth.schemas import RegisterIn
from control.auth.service import AUTH
from control.security import ROLE_SCOPES, Principal
from control.streams.schemas import StreamIn, StreamListQuery, StreamUpdate
from control.streams.service import STREAMS
from hls.tone import demo_clip
from mediaserver.config import SETTINGS, Settings
from mediaserver.errors import Conflict
from relay.demo import MOUNT, DemoSource

DEMO_EMAIL = "demo-dj@example.com"
#: The demo stream's name: with the demo DJ, how a node finds it when the data dir has no
#: id file (a fresh volume beside the same database).
DEMO_NAME = "mediaserver demo"
SECONDS_PER_TITLE = 8.0
#: In the data dir: the demo stream's id.
DEMO_ID_FILE = "demo-stream-id"


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
    id_file = app[SETTINGS].data_dir / DEMO_ID_FILE
    kept = await asyncio.to_thread(_read_id, id_file) or await _named_stream(app, principal)
    await _remove_stale_streams(app, principal, kept)
    body = StreamIn(
        name=DEMO_NAME,
        shoutcast_url=source.url,
        mount=MOUNT,
        stream_key=SecretStr(source.password),
        genre="Ambient",
        description="A generated tone with changing titles",
    )
    streams = app[STREAMS]
    if kept is not None and await streams.repoint(principal, kept, body):
        stream_id = kept
    else:
        stream_id = (await streams.register(principal, body)).stream_id
    await asyncio.to_thread(_write_id, id_file, stream_id)
    base = f"{app[SETTINGS].base_url}/v1/streams/{stream_id}"
    print(
        f"demo stream ready:\n  MP3  {base}/live.mp3\n  HLS  {base}/live.m3u8\n"
        f"  now playing  {base}/status",
        file=sys.stderr,
        flush=True,
    )
    try:
        yield
    finally:
        # Disabled, not deleted: the next run enables it again under the same id.
        await streams.update(principal, stream_id, StreamUpdate.model_validate({"enabled": False}))
        await source.close()


async def _named_stream(app: web.Application, principal: Principal) -> uuid.UUID | None:
    """The demo DJ's oldest stream named `DEMO_NAME`, if any."""
    page = await app[STREAMS].directory(principal, StreamListQuery(mine=True, per_page=100))
    named = [s for s in page.streams if s.name == DEMO_NAME]
    return min(named, key=lambda s: s.created_at).stream_id if named else None


def _read_id(path: Path) -> uuid.UUID | None:
    try:
        return uuid.UUID(path.read_text().strip())
    except (OSError, ValueError):
        return None


def _write_id(path: Path, stream_id: uuid.UUID) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"{stream_id}\n")


async def _remove_stale_streams(
    app: web.Application, principal: Principal, kept: uuid.UUID | None
) -> None:
    """Delete the demo DJ's streams other than `kept` (their relays, started with the
    node, stop)."""
    streams = app[STREAMS]
    query = StreamListQuery(mine=True, per_page=100)
    for _ in range(100):  # bounded: each round deletes a whole page (but `kept`)
        page = await streams.directory(principal, query)
        stale = [s.stream_id for s in page.streams if s.stream_id != kept]
        for stream_id in stale:
            await streams.delete(principal, stream_id)
        if len(page.streams) < query.per_page or not stale:
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
