"""DJ public profiles (issue 14, the DJ platform spec's `stageName`, `bio`, `genres`,
`avatarUrl`): what a station page says about who is playing."""

from __future__ import annotations

import hashlib
import logging
import uuid

import asyncpg
from aiohttp import web

from control.profiles import queries
from control.profiles.avatar import to_avatar
from control.profiles.schemas import (
    DjPage,
    DjPlaylist,
    DjPodcast,
    DjStream,
    Link,
    ProfileIn,
    ProfileOut,
)
from control.security import Principal
from mediaserver.clock import Clock, utcnow
from mediaserver.errors import NotFound
from mediaserver.storage import ObjectStore

log = logging.getLogger(__name__)

NO_PROFILE = "This DJ has no public profile"
NO_AVATAR = "This DJ has no avatar"
NEEDS_PROFILE = "Create the profile first (PUT /v1/users/me/profile)"


class ProfilesService:
    def __init__(
        self, pool: asyncpg.Pool, store: ObjectStore, base_url: str, clock: Clock = utcnow
    ) -> None:
        self._pool = pool
        self._store = store
        self._base_url = base_url
        self._clock = clock

    async def put(self, principal: Principal, body: ProfileIn) -> ProfileOut:
        """Create or replace the caller's profile (the avatar is kept)."""
        links = [link.model_dump() for link in body.links]
        row = await queries.upsert(
            self._pool,
            principal.user_id,
            body.stage_name,
            body.bio,
            body.genres,
            links,
            self._clock(),
        )
        return self._out(row)

    async def set_avatar(self, principal: Principal, image: bytes) -> ProfileOut:
        """Resize the image to a JPEG avatar and store it; 404 before the profile exists,
        400 for anything but a PNG, JPEG or WebP image."""
        avatar = await to_avatar(image)
        digest = hashlib.sha256(avatar).hexdigest()[:32]
        key = f"avatars/{principal.user_id}/{digest}.jpg"
        await self._store.put_bytes(key, avatar, "image/jpeg")
        async with self._pool.acquire() as conn, conn.transaction():
            exists, old = await queries.set_avatar(conn, principal.user_id, key, self._clock())
            row = await queries.public(conn, principal.user_id)
        if not exists or row is None:
            await self._store.delete(key)
            raise NotFound(NEEDS_PROFILE)
        if old is not None and old != key:
            await self._store.delete(old)
        return self._out(row)

    async def page(self, dj_id: uuid.UUID) -> DjPage:
        """The public profile with the DJ's on-air streams, public playlists and podcasts."""
        row = await queries.public(self._pool, dj_id)
        if row is None:
            raise NotFound(NO_PROFILE)
        streams, playlists, podcasts = await queries.offer(self._pool, dj_id)
        return DjPage(
            **self._out(row).model_dump(),
            streams=[DjStream(**dict(r)) for r in streams],
            playlists=[DjPlaylist(**dict(r)) for r in playlists],
            podcasts=[
                DjPodcast(
                    podcast_id=r["podcast_id"],
                    title=r["title"],
                    feed_url=f"{self._base_url}/v1/podcasts/{r['podcast_id']}/rss.xml",
                )
                for r in podcasts
            ],
        )

    async def avatar(self, dj_id: uuid.UUID) -> tuple[bytes, str]:
        """The avatar's JPEG and its ETag."""
        row = await queries.public(self._pool, dj_id)
        if row is None or row.avatar_key is None:
            raise NotFound(NO_AVATAR)
        data = await self._store.read(row.avatar_key)
        return data, f'"{row.avatar_key.rsplit("/", 1)[1].removesuffix(".jpg")}"'

    async def account_deleted(self, user_id: uuid.UUID) -> None:
        """The profile and its avatar go with the account."""
        key = await queries.drop(self._pool, user_id)
        if key is not None:
            await self._store.delete(key)

    def _out(self, row: queries.ProfileRow) -> ProfileOut:
        avatar_url = None
        if row.avatar_key is not None:
            avatar_url = f"{self._base_url}/v1/djs/{row.user_id}/avatar.jpg"
        return ProfileOut(
            dj_id=row.user_id,
            stage_name=row.stage_name,
            bio=row.bio,
            genres=row.genres,
            links=[Link(**link) for link in row.links],
            avatar_url=avatar_url,
            updated_at=row.updated_at,
        )


PROFILES = web.AppKey("profiles_service", ProfilesService)
