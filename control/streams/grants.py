"""Signed, expiring links to a live stream's media, for players that cannot send an
`Authorization` header (Safari's native HLS, VLC, an HTML `<audio>` element).

Two kinds, signed over different resources so that neither stands in for the other:

- a *play* grant, handed out by `GET /v1/streams/{id}` (in `play_urls`) to a caller the
  media routes would serve, opens `live.mp3` and `live.m3u8` until it expires
  (`PLAY_URL_TTL_SECONDS`). It is a user grant (`control.grants`) over the stream, the
  user it was issued to and the stream's access rules then (visibility, monetization),
  valid from the `iat` of the user's token: once the DJ changes the rules, old links stop
  working and players must come back through the access check; and every use re-checks
  that user's access like a token's (`control.grants.Grantees`: a deleted account or a
  lapsed subscription is refused within a second, a sign-out everywhere since the token
  was issued at once), so a link copied out of a player is no bearer pass to a paid
  stream;
- a *segment* grant, in the segment URLs of a playlist served to an authorised client,
  opens that stream's segments for about ten minutes. It is signed over the stream and its
  current rules too, so a stricter setting refuses it at once. It cannot open the
  playlist, so reloading the playlist never extends a play grant past its expiry, and the
  player's reloads (each a play grant check) keep deciding who goes on listening."""

from __future__ import annotations

import functools
import uuid
from datetime import UTC, datetime

from aiohttp import web

from control.access import is_open, rules_of
from control.grants import Grantee, GrantSigner
from control.security import Principal
from control.streams.queries import StreamRow
from control.streams.schemas import PlayUrls
from mediaserver.clock import Clock, utcnow
from mediaserver.crypto import UrlSigner

#: How long a segment grant lasts past its one-minute bucket (a playlist reload renews it).
SEGMENT_GRANT_SECONDS = 600


class StreamGrants:
    """Issues and checks the grants above with one `UrlSigner`; time from `clock`."""

    def __init__(self, signer: UrlSigner, play_seconds: int, clock: Clock = utcnow) -> None:
        if play_seconds < 1:
            raise ValueError("play grants must last at least a second")
        self._signer = signer
        self._grants = GrantSigner(signer)
        self._play_seconds = play_seconds
        self._clock = clock

    def play_urls(self, base_url: str, row: StreamRow, principal: Principal | None) -> PlayUrls:
        """`live.mp3` and `live.m3u8` under `base_url`: plain for an open stream, else
        each carrying a play grant to `principal` that expires `play_seconds` from now."""
        base = f"{base_url}/v1/streams/{row.stream_id}"
        if is_open(row):
            return PlayUrls(mp3=f"{base}/live.mp3", hls=f"{base}/live.m3u8", expires_at=None)
        if principal is None:
            raise ValueError("a play grant of a private or monetized stream needs its user")
        expires = int(self._clock().timestamp()) + self._play_seconds
        resource_of = functools.partial(_play_resource, row)
        query = "?grant=" + self._grants.issue(resource_of, Grantee.of(principal), expires)
        return PlayUrls(
            mp3=f"{base}/live.mp3{query}",
            hls=f"{base}/live.m3u8{query}",
            expires_at=datetime.fromtimestamp(expires, UTC),
        )

    def play_user(self, row: StreamRow, grant: str, *, expired_too: bool = False) -> Grantee | None:
        """The user an unexpired play grant of this stream, issued under its current
        rules, was issued to; None for anything else (forged, expired, malformed, for
        another stream, or from before a change of the rules). `expired_too`: a genuine
        grant past its expiry counts (a listener it let in goes on listening)."""
        now = None if expired_too else self._clock().timestamp()
        found = self._grants.verify(grant, functools.partial(_play_resource, row), now)
        return found.grantee if found is not None else None

    def segment_query(self, row: StreamRow) -> str:
        """`?grant=…` for the segment URLs of a playlist. Expiry in one-minute buckets, so
        the rendered playlist stays the same (and cacheable) for a minute."""
        expires = (int(self._clock().timestamp()) // 60 + 1) * 60 + SEGMENT_GRANT_SECONDS
        return "?grant=" + self._signer.sign(_segment_resource(row), expires)

    def segment_ok(self, row: StreamRow, grant: str) -> bool:
        """Whether `grant` is an unexpired segment grant of the stream under its current
        rules."""
        return self._signer.verify(_segment_resource(row), grant, self._clock().timestamp())


# Namespaced: the signer's key also signs playlist and podcast grants.
def _play_resource(row: StreamRow, user_id: uuid.UUID) -> str:
    visibility, monetized = rules_of(row)
    return f"stream-play:{row.stream_id}:{user_id}:{visibility}:{int(monetized)}"


def _segment_resource(row: StreamRow) -> str:
    visibility, monetized = rules_of(row)
    return f"stream-segments:{row.stream_id}:{visibility}:{int(monetized)}"


GRANTS = web.AppKey("stream_grants", StreamGrants)
