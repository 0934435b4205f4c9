"""Playlist segment grants: bound to playlist, user and rules, the same within a minute,
lasting six hours; what was handed out before keeps working. Hostile input is refused,
never an exception."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from control.grants import Grantee
from control.playlists.grants import GRANT_SECONDS, PlaylistGrants
from control.security import Principal
from mediaserver.crypto import UrlSigner
from tests.clock import Clock
from tests.rows import playlist_row

NOON = datetime(2025, 6, 10, 12, 0, 30, tzinfo=UTC)
USER = uuid.UUID("0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0")
ISSUED = NOON.timestamp() - 600.123  # the token's `iat`, with its milliseconds
PRINCIPAL = Principal(USER, "dj@example.com", "listener", frozenset(), "jti", issued_at=ISSUED)
GRANTEE = Grantee(USER, round(ISSUED * 1000))
SIGNER = UrlSigner(b"k" * 32)


def grant_of(query: str) -> str:
    return query.split("?grant=")[1]


def test_a_playlist_grant_is_bound_to_playlist_user_and_rules() -> None:
    clock = Clock(NOON)
    grants = PlaylistGrants(SIGNER, clock)
    row = playlist_row()
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


def test_segment_links_already_handed_out_keep_working() -> None:
    """A grant issued before grants had one module (`control.grantees`), byte for byte."""
    row = playlist_row(
        playlist_id=uuid.UUID("22222222-3333-4444-5555-666666666666"),
        visibility="public",
        monetization_enabled=True,
    )
    grants = PlaylistGrants(SIGNER, Clock(NOON))
    golden = f"{USER.hex}.1749556229877.1749578460.4312075b4d8bb1ec0ca4fd62a9e84b80"
    assert grants.query(row, PRINCIPAL) == f"?grant={golden}"
    assert grants.user_of(row, golden) == GRANTEE


@pytest.mark.parametrize(
    "grant",
    ["", ".", "\u00b2", f"{USER.hex}.\u00b2.{'0' * 32}", f"{USER.hex}.1.2.3", "\u00b2." + "0" * 32],
)
def test_hostile_grants_are_refused_without_an_error(grant: str) -> None:
    assert PlaylistGrants(SIGNER, Clock(NOON)).user_of(playlist_row(), grant) is None
