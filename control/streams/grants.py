"""Signed, expiring links to a live stream's media, for players that cannot send an
`Authorization` header (Safari's native HLS, VLC, an HTML `<audio>` element).

Two kinds, signed over different resources so that neither stands in for the other:

- a *play* grant, handed out by `GET /v1/streams/{id}` (in `play_urls`) to a caller the
  media routes would serve, opens `live.mp3` and `live.m3u8` until it expires
  (`PLAY_URL_TTL_SECONDS`). It is bound to the stream's access rules when it was issued
  (visibility, monetization): once the DJ makes the stream stricter, old links stop working
  and players must come back through the access check;
- a *segment* grant, in the segment URLs of a playlist served to an authorised client,
  opens that stream's segments for about ten minutes. It cannot open the playlist, so
  reloading the playlist never extends a play grant past its expiry."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from aiohttp import web

from control.streams.queries import StreamRow
from control.streams.schemas import PlayUrls
from mediaserver.clock import Clock, utcnow
from mediaserver.crypto import UrlSigner

#: How long a segment grant lasts past its one-minute bucket (a playlist reload renews it).
SEGMENT_GRANT_SECONDS = 600


def is_open(row: StreamRow) -> bool:
    """Public and free: anyone may listen, links need no grant."""
    return row.visibility == "public" and not row.monetization_enabled


class StreamGrants:
    """Issues and checks the grants above with one `UrlSigner`; time from `clock`."""

    def __init__(self, signer: UrlSigner, play_seconds: int, clock: Clock = utcnow) -> None:
        if play_seconds < 1:
            raise ValueError("play grants must last at least a second")
        self._signer = signer
        self._play_seconds = play_seconds
        self._clock = clock

    def play_urls(self, base_url: str, row: StreamRow) -> PlayUrls:
        """`live.mp3` and `live.m3u8` under `base_url`: plain for an open stream, else
        each carrying a play grant that expires `play_seconds` from now."""
        base = f"{base_url}/v1/streams/{row.stream_id}"
        if is_open(row):
            return PlayUrls(mp3=f"{base}/live.mp3", hls=f"{base}/live.m3u8", expires_at=None)
        expires = int(self._clock().timestamp()) + self._play_seconds
        query = "?grant=" + self._signer.sign(_play_resource(row), expires)
        return PlayUrls(
            mp3=f"{base}/live.mp3{query}",
            hls=f"{base}/live.m3u8{query}",
            expires_at=datetime.fromtimestamp(expires, UTC),
        )

    def play_ok(self, row: StreamRow, grant: str) -> bool:
        """Whether `grant` is an unexpired play grant issued under the row's current rules."""
        return self._signer.verify(_play_resource(row), grant, self._clock().timestamp())

    def segment_query(self, stream_id: uuid.UUID) -> str:
        """`?grant=…` for the segment URLs of a playlist. Expiry in one-minute buckets, so
        the rendered playlist stays the same (and cacheable) for a minute."""
        expires = (int(self._clock().timestamp()) // 60 + 1) * 60 + SEGMENT_GRANT_SECONDS
        return "?grant=" + self._signer.sign(str(stream_id), expires)

    def segment_ok(self, stream_id: uuid.UUID, grant: str) -> bool:
        return self._signer.verify(str(stream_id), grant, self._clock().timestamp())


def _play_resource(row: StreamRow) -> str:
    # The rules a grant was issued under are part of what is signed (module doc).
    return f"{row.stream_id}/live/{row.visibility}/{int(row.monetization_enabled)}"


GRANTS = web.AppKey("stream_grants", StreamGrants)
