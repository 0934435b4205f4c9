"""Signed links to live streams and playlist segments: a play grant is bound to its stream,
its user and the rules it was issued under; a segment grant to its stream and the rules;
playlist segment grants to playlist, user and rules. Hostile input is refused, never an
exception."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from control.grantees import Grantee
from control.playlists.grants import GRANT_SECONDS, PlaylistGrants
from control.playlists.queries import PlaylistRow
from control.security import Principal
from control.streams.grants import SEGMENT_GRANT_SECONDS, StreamGrants
from control.streams.queries import StreamRow
from mediaserver.crypto import UrlSigner

NOON = datetime(2025, 6, 10, 12, 0, 30, tzinfo=UTC)
USER = uuid.uuid4()
ISSUED = NOON.timestamp() - 600.123  # the token's `iat`, with its milliseconds
PRINCIPAL = Principal(USER, "dj@example.com", "listener", frozenset(), "jti", issued_at=ISSUED)
GRANTEE = Grantee(USER, round(ISSUED * 1000))
SIGNER = UrlSigner(b"k" * 32)
HOSTILE = [
    "",
    ".",
    "\u00b2",
    f"{USER.hex}.\u00b2.{'0' * 32}",
    f"{USER.hex}.1.2.3",
    "\u00b2." + "0" * 32,
]


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def stream(**changes: object) -> StreamRow:
    row = StreamRow(
        stream_id=uuid.uuid4(),
        owner_id=uuid.uuid4(),
        name="Members Only",
        source_url="http://127.0.0.1:8000",
        mount="/live",
        server_kind="icecast2",
        sid=None,
        stream_key_enc=b"",
        genre=None,
        description=None,
        visibility="private",
        monetization_enabled=False,
        enabled=True,
        created_at=NOON,
        updated_at=NOON,
        deleted_at=None,
    )
    return replace(row, **changes)


def grant_of(url: str) -> str:
    return url.split("?grant=")[1]


def test_a_play_grant_names_its_user_and_holds_under_the_same_rules_only() -> None:
    clock = Clock(NOON)
    grants = StreamGrants(SIGNER, 3600, clock)
    row = stream()
    urls = grants.play_urls("https://radio.example", row, PRINCIPAL)
    grant = grant_of(urls.hls)
    assert grant == grant_of(urls.mp3) and grant.startswith(f"{USER.hex}.")
    assert urls.expires_at == NOON.replace(microsecond=0) + timedelta(hours=1)
    assert grants.play_user(row, grant) == GRANTEE  # valid from the token's `iat`
    # Another user's id in front of the same MAC, another start, another stream, other
    # rules: refused.
    other = uuid.uuid4()
    assert grants.play_user(row, grant.replace(USER.hex, other.hex)) is None
    later = grant.replace(f".{GRANTEE.valid_from_ms}.", f".{GRANTEE.valid_from_ms + 1}.")
    assert later != grant and grants.play_user(row, later) is None
    assert grants.play_user(replace(row, stream_id=uuid.uuid4()), grant) is None
    assert grants.play_user(replace(row, monetization_enabled=True), grant) is None
    assert grants.play_user(replace(row, visibility="public"), grant) is None
    # Up to its expiry, not after.
    clock.now = NOON + timedelta(seconds=3599)
    assert grants.play_user(row, grant) == GRANTEE
    clock.now = NOON + timedelta(seconds=3601)
    assert grants.play_user(row, grant) is None


def test_open_streams_get_plain_links_and_others_need_a_user() -> None:
    grants = StreamGrants(SIGNER, 3600, Clock(NOON))
    urls = grants.play_urls("https://radio.example", stream(visibility="public"), None)
    assert "grant" not in urls.mp3 and urls.expires_at is None
    with pytest.raises(ValueError, match="needs its user"):
        grants.play_urls("https://radio.example", stream(), None)


def test_a_segment_grant_is_refused_once_the_rules_change() -> None:
    clock = Clock(NOON)
    grants = StreamGrants(SIGNER, 3600, clock)
    row = stream()
    grant = grant_of(grants.segment_query(row))
    assert grants.segment_ok(row, grant)
    assert not grants.segment_ok(replace(row, monetization_enabled=True), grant)
    assert not grants.segment_ok(replace(row, stream_id=uuid.uuid4()), grant)
    # A play grant's MAC does not open segments, nor a segment grant the playlist.
    assert grants.play_user(row, f"{USER.hex}.{GRANTEE.valid_from_ms}.{grant}") is None
    play = grant_of(grants.play_urls("https://radio.example", row, PRINCIPAL).hls)
    assert not grants.segment_ok(row, play.split(".", 2)[2])
    clock.now = NOON.replace(second=0) + timedelta(minutes=1, seconds=SEGMENT_GRANT_SECONDS + 1)
    assert not grants.segment_ok(row, grant)


@pytest.mark.parametrize("grant", HOSTILE)
def test_hostile_grants_are_refused_without_an_error(grant: str) -> None:
    stream_grants = StreamGrants(SIGNER, 3600, Clock(NOON))
    assert stream_grants.play_user(stream(), grant) is None
    assert not stream_grants.segment_ok(stream(), grant)
    assert PlaylistGrants(SIGNER, Clock(NOON)).user_of(playlist(), grant) is None


def playlist(**changes: object) -> PlaylistRow:
    row = PlaylistRow(
        playlist_id=uuid.uuid4(),
        owner_id=uuid.uuid4(),
        title="Chill",
        description="",
        visibility="private",
        monetization_enabled=False,
        hls_ready=True,
        manifest_key=None,
        created_at=NOON,
        updated_at=NOON,
        track_count=1,
    )
    return replace(row, **changes)


def test_a_playlist_grant_is_bound_to_playlist_user_and_rules() -> None:
    clock = Clock(NOON)
    grants = PlaylistGrants(SIGNER, clock)
    row = playlist()
    grant = grant_of(grants.query(row, PRINCIPAL))
    assert grant.startswith(f"{USER.hex}.") and grants.user_of(row, grant) == GRANTEE
    assert grants.query(row, PRINCIPAL) == f"?grant={grant}"  # the same within the minute
    assert grants.user_of(replace(row, monetization_enabled=True), grant) is None
    assert grants.user_of(replace(row, playlist_id=uuid.uuid4()), grant) is None
    assert grants.user_of(row, grant.replace(USER.hex, uuid.uuid4().hex)) is None
    clock.now = NOON.replace(second=0) + timedelta(minutes=1, seconds=GRANT_SECONDS)
    assert grants.user_of(row, grant) == GRANTEE  # the last second of its six hours
    clock.now += timedelta(seconds=1)
    assert grants.user_of(row, grant) is None
