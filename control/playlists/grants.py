"""Signed segment links of a playlist that is not open to everyone, for players that
cannot send an `Authorization` header (Safari's native HLS).

`stream.m3u8` served to a caller who may play the playlist lists its segments with
`?grant=…`: a user grant (`control.grants`) over the playlist, that caller and the
playlist's access rules then (visibility, monetization), valid from the `iat` of the
caller's token. A grant lasts six hours (a long playlist plays through on one manifest
load), but it is only as good as its user's access: each use re-runs the rules for that
user (`control.grants.Grantees`: account deleted or subscription lapsed → 403 within a
second; signed out everywhere since the token was issued → 403), and a change of the rules
(made private, monetization switched on) refuses every grant issued before it at once.
Grants expire on minute boundaries, so the manifest served to one caller, and its ETag,
stay the same for a minute.
"""

from __future__ import annotations

import functools
import uuid

from control.access import rules_of
from control.grants import Grantee, GrantSigner
from control.playlists.queries import PlaylistRow
from control.security import Principal
from mediaserver.clock import Clock, utcnow
from mediaserver.crypto import UrlSigner

GRANT_SECONDS = 6 * 3600  # a long playlist plays through on one manifest load
GRANT_BUCKET = 60  # grants expire on these boundaries (so the manifest text is shared)


class PlaylistGrants:
    """Issues and reads playlist segment grants; time from `clock`."""

    def __init__(self, signer: UrlSigner, clock: Clock = utcnow) -> None:
        self._grants = GrantSigner(signer)
        self._clock = clock

    def query(self, row: PlaylistRow, principal: Principal) -> str:
        """`?grant=…` for the segment URLs of the manifest served to `principal`."""
        now = int(self._clock().timestamp())
        expires = (now // GRANT_BUCKET + 1) * GRANT_BUCKET + GRANT_SECONDS
        resource_of = functools.partial(_resource, row)
        return "?grant=" + self._grants.issue(resource_of, Grantee.of(principal), expires)

    def user_of(self, row: PlaylistRow, grant: str) -> Grantee | None:
        """The user an unexpired grant of this playlist, issued under its current rules,
        was issued to; None for anything else (forged, expired, malformed, for another
        playlist, or from before a change of the rules)."""
        now = self._clock().timestamp()
        found = self._grants.verify(grant, functools.partial(_resource, row), now)
        return found.grantee if found is not None else None


def _resource(row: PlaylistRow, user_id: uuid.UUID) -> str:
    # Namespaced: the signer's key also signs stream and podcast grants.
    visibility, monetized = rules_of(row)
    return f"playlist:{row.playlist_id}:{user_id}:{visibility}:{int(monetized)}"
