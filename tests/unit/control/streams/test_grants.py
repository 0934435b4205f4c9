"""Signed links to live streams: a play grant is bound to its stream, its user and the
rules it was issued under (the format itself is `tests/unit/control/test_grants.py`'s); a
segment grant to its stream and the rules. Hostile input is refused, never an exception."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from control.grants import Grantee
from control.security import Principal
from control.streams.grants import SEGMENT_GRANT_SECONDS, StreamGrants
from mediaserver.crypto import UrlSigner
from tests.clock import Clock
from tests.rows import stream_row

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


def grant_of(url: str) -> str:
    return url.split("?grant=")[1]


def test_a_play_grant_names_its_user_and_holds_under_the_same_rules_only() -> None:
    clock = Clock(NOON)
    grants = StreamGrants(SIGNER, 3600, clock)
    row = stream_row()
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
    urls = grants.play_urls("https://radio.example", stream_row(visibility="public"), None)
    assert "grant" not in urls.mp3 and urls.expires_at is None
    with pytest.raises(ValueError, match="needs its user"):
        grants.play_urls("https://radio.example", stream_row(), None)


def test_a_segment_grant_is_refused_once_the_rules_change() -> None:
    clock = Clock(NOON)
    grants = StreamGrants(SIGNER, 3600, clock)
    row = stream_row()
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
    assert stream_grants.play_user(stream_row(), grant) is None
    assert not stream_grants.segment_ok(stream_row(), grant)


def test_play_links_already_handed_out_keep_working() -> None:
    """A play URL issued before grants had one module (`control.grantees`), byte for byte."""
    row = stream_row(
        stream_id=uuid.UUID("11111111-2222-3333-4444-555555555555"), monetization_enabled=True
    )
    user = uuid.UUID("0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0")
    token = replace(PRINCIPAL, user_id=user)
    grants = StreamGrants(SIGNER, 3600, Clock(NOON))
    golden = f"{user.hex}.1749556229877.1749560430.6a69def87b41c5907a0895008c08bac7"
    assert grant_of(grants.play_urls("https://radio.example", row, token).hls) == golden
    assert grants.play_user(row, golden) == Grantee(user, 1749556229877)
