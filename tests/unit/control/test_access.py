"""The access rules, as callers meet them: who may change a stream, playlist or podcast,
who may read it (disabled, private, monetized), and the exact 401/403/404 they get.
The paywall is the real `PaywallService` interface, autospecced (it reads PostgreSQL)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any
from unittest.mock import create_autospec

import pytest

from control import access
from control.access import Guarded, Resource, check_paywall, is_privileged, rules_of
from control.monetization.service import PaywallService
from control.playlists.queries import PlaylistRow
from control.security import ROLE_SCOPES, Principal
from control.streams.queries import StreamRow
from mediaserver.errors import Forbidden, NotFound, Unauthenticated
from tests.rows import playlist_row, stream_row

OWNER = uuid.uuid4()


def principal(role: str = "listener", scopes: tuple[str, ...] = ()) -> Principal:
    return Principal(uuid.uuid4(), f"{role}@example.com", role, frozenset(scopes), "jti")


DJ = Principal(OWNER, "dj@example.com", "dj", frozenset(ROLE_SCOPES["dj"]), "jti")
ADMIN = principal("admin", ROLE_SCOPES["admin"])


def stream(**changes: Any) -> StreamRow:
    """A public, free stream of OWNER's, with `changes`."""
    return stream_row(**{"owner_id": OWNER, "visibility": "public", **changes})


def playlist(**changes: Any) -> PlaylistRow:
    """A public, free playlist of OWNER's, with `changes`."""
    return playlist_row(**{"owner_id": OWNER, "visibility": "public", **changes})


#: Each guarded kind with a row of it.
KINDS = [(access.STREAM, stream), (access.PLAYLIST, playlist)]


def paywall(subscribed: bool = False) -> PaywallService:
    """The paywall interface: refuses (as the real one does) unless `subscribed`."""
    mock = create_autospec(PaywallService, instance=True)
    if not subscribed:
        mock.require_active_subscription.side_effect = Forbidden("Subscription required")
    return mock  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("resource", "noun"),
    [(access.STREAM, "stream"), (access.PLAYLIST, "playlist"), (access.PODCAST, "podcast")],
)
def test_changes_are_for_the_owner_or_an_admin(resource: Resource, noun: str) -> None:
    resource.check_owner(DJ, OWNER)
    resource.check_owner(ADMIN, OWNER)
    with pytest.raises(Forbidden) as refused:
        resource.check_owner(principal("dj", ROLE_SCOPES["dj"]), OWNER)
    assert refused.value.body() == {
        "error": f"Only the {noun}'s owner or an admin can do this",
        "code": 403,
    }


def test_not_found_names_the_resource() -> None:
    messages = [
        r.not_found().body()
        for r in (access.STREAM, access.PLAYLIST, access.PODCAST, access.EPISODE)
    ]
    assert messages == [
        {"error": "Stream not found", "code": 404},
        {"error": "Playlist not found", "code": 404},
        {"error": "Podcast not found", "code": 404},
        {"error": "Episode not found", "code": 404},
    ]


def test_only_the_owner_and_admins_are_privileged() -> None:
    assert is_privileged(DJ, OWNER) and is_privileged(ADMIN, OWNER)
    assert not is_privileged(None, OWNER)
    assert not is_privileged(principal("dj", ROLE_SCOPES["dj"]), OWNER)


@pytest.mark.parametrize(("resource", "row_of"), KINDS)
async def test_a_private_item_needs_a_token_with_the_read_scope(
    resource: Resource, row_of: Callable[..., Guarded]
) -> None:
    row = row_of(visibility="private")
    noun, scope = resource.noun, resource.read_scope
    with pytest.raises(Unauthenticated) as anonymous:
        await resource.check_read(None, row, paywall(), paywall_public=True)
    assert anonymous.value.body() == {
        "error": f"This {noun} is private: sign in to listen",
        "code": 401,
    }
    with pytest.raises(Forbidden) as unscoped:
        await resource.check_read(principal(), row, paywall(), paywall_public=True)
    assert unscoped.value.body() == {
        "error": f"Your token lacks the '{scope}' scope",
        "code": 403,
    }
    other_scope = "podcasts:read"
    with pytest.raises(Forbidden):
        await resource.check_read(
            principal(scopes=(other_scope,)), row, paywall(), paywall_public=True
        )
    await resource.check_read(principal(scopes=(scope,)), row, paywall(), paywall_public=True)
    for privileged in (DJ, ADMIN):
        await resource.check_read(privileged, row, paywall(), paywall_public=True)


@pytest.mark.parametrize(("resource", "row_of"), KINDS)
async def test_a_public_free_item_is_for_everyone(
    resource: Resource, row_of: Callable[..., Guarded]
) -> None:
    gate = paywall()
    for caller in (None, principal(), DJ):
        await resource.check_read(caller, row_of(), gate, paywall_public=True)
    gate.require_active_subscription.assert_not_called()  # type: ignore[attr-defined]


@pytest.mark.parametrize(("resource", "row_of"), KINDS)
async def test_a_monetized_item_needs_a_subscription_where_the_paywall_applies(
    resource: Resource, row_of: Callable[..., Guarded]
) -> None:
    public = row_of(monetization_enabled=True)
    private = row_of(visibility="private", monetization_enabled=True)
    listener = principal(scopes=(resource.read_scope,))
    # Public and monetized: readable unless the domain puts public items behind the paywall
    # (then "subscribe" even for an anonymous caller, never "sign in").
    await resource.check_read(None, public, paywall(), paywall_public=False)
    for caller in (None, listener):
        with pytest.raises(Forbidden, match=r"^Subscription required$"):
            await resource.check_read(caller, public, paywall(), paywall_public=True)
    # Private and monetized: always behind it.
    with pytest.raises(Forbidden, match=r"^Subscription required$"):
        await resource.check_read(listener, private, paywall(), paywall_public=False)
    subscribed = paywall(subscribed=True)
    await resource.check_read(listener, private, subscribed, paywall_public=False)
    subscribed.require_active_subscription.assert_awaited_once_with(  # type: ignore[attr-defined]
        listener, OWNER
    )
    # The owner and admins never meet the paywall.
    gate = paywall()
    for privileged in (DJ, ADMIN):
        await resource.check_read(privileged, private, gate, paywall_public=True)
    gate.require_active_subscription.assert_not_called()  # type: ignore[attr-defined]


async def test_a_disabled_stream_is_not_found_except_to_its_owner_and_admins() -> None:
    row = stream(enabled=False)
    for caller in (None, principal(scopes=("streams:read",))):
        with pytest.raises(NotFound, match=r"^Stream not found$"):
            await access.STREAM.check_read(
                caller, row, paywall(), paywall_public=False, enabled=row.enabled
            )
    for privileged in (DJ, ADMIN):
        await access.STREAM.check_read(
            privileged, row, paywall(), paywall_public=False, enabled=row.enabled
        )
        # Its media: no relay runs, so not even for them.
        with pytest.raises(NotFound, match=r"^Stream not found$"):
            await access.STREAM.check_read(
                privileged, row, paywall(), paywall_public=True, enabled=False, live_only=True
            )


async def test_the_podcast_paywall_only_applies_to_paywalled_content() -> None:
    gate = paywall()
    await check_paywall(gate, None, OWNER, False)
    gate.require_active_subscription.assert_not_called()  # type: ignore[attr-defined]
    with pytest.raises(Forbidden) as refused:
        await check_paywall(gate, principal(), OWNER, True)
    assert refused.value.body()["error"] == "Subscription required"
    await check_paywall(paywall(subscribed=True), principal(), OWNER, True)


@pytest.mark.parametrize("row_of", [stream, playlist])
def test_the_rules_a_grant_is_signed_under_are_visibility_and_monetization(
    row_of: Callable[..., Guarded],
) -> None:
    assert rules_of(row_of()) == ("public", False)
    assert rules_of(row_of(visibility="private", monetization_enabled=True)) == ("private", True)
