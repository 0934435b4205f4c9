"""US-5.1 – 5.4 on a real PostgreSQL: daily counters recorded by the service (as streams
and playlists will), reported through the HTTP API to owners and admins."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, date, datetime

import pytest

from control.analytics.service import ANALYTICS, AnalyticsService
from mediaserver.app import build_app
from tests.accounts import user_headers

JUNE_1, JUNE_2, JUNE_3 = date(2025, 6, 1), date(2025, 6, 2), date(2025, 6, 3)


def register_owners(service: AnalyticsService, resource_type: str) -> dict[uuid.UUID, uuid.UUID]:
    """A fake owner lookup over a dict: what the streams/playlists domains will provide."""
    owners: dict[uuid.UUID, uuid.UUID] = {}

    async def lookup(resource_id: uuid.UUID) -> uuid.UUID | None:
        return owners.get(resource_id)

    service.register_owner_lookup(resource_type, lookup)
    return owners


async def own(client, resource_type: str, role: str = "dj"):
    """A new account, a resource of `resource_type` it owns, and its auth headers."""
    owners = register_owners(client.app[ANALYTICS], resource_type)
    user, headers = await user_headers(client, role)
    resource_id = uuid.uuid4()
    owners[resource_id] = uuid.UUID(user["user_id"])
    return resource_id, headers, owners


async def get_json(client, url, headers, status=200, **params):
    response = await client.get(url, params=params, headers=headers)
    assert response.status == status, await response.text()
    return await response.json()


def between(first: str, last: str) -> dict[str, str]:
    return {"from": first, "to": last}


async def test_stream_listeners_add_up_per_day_within_the_range(client):
    stream_id, headers, _ = await own(client, "stream")
    service = client.app[ANALYTICS]
    await service.record("stream", stream_id, "listeners", 120, day=JUNE_1)
    await service.record("stream", stream_id, "listeners", 80, day=JUNE_1)
    await service.record("stream", stream_id, "listeners", 98, day=JUNE_2)
    await service.record("stream", stream_id, "listeners", 500, day=JUNE_3)  # after `to`
    await service.record("stream", stream_id, "play_count", 7, day=JUNE_2)  # other metric
    await service.record("stream", uuid.uuid4(), "listeners", 9, day=JUNE_2)  # other stream

    report = await get_json(
        client, f"/v1/analytics/streams/{stream_id}", headers, **between("2025-06-01", "2025-06-02")
    )
    assert report == {
        "stream_id": str(stream_id),
        "daily_listeners": [
            {"date": "2025-06-01", "listeners": 200},
            {"date": "2025-06-02", "listeners": 98},
        ],
        "peak_listeners": 200,
        "total_listens": 298,
    }


async def test_hundred_concurrent_plays_are_all_counted(client):
    playlist_id, headers, _ = await own(client, "playlist")
    service = client.app[ANALYTICS]
    # The first of these races to insert the row; none of the others may be lost.
    await asyncio.gather(
        *(service.record("playlist", playlist_id, "play_count", day=JUNE_2) for _ in range(100))
    )
    await asyncio.gather(
        *(service.record("playlist", playlist_id, "play_count", n, day=JUNE_3) for n in range(100))
    )

    report = await get_json(
        client,
        f"/v1/analytics/playlists/{playlist_id}",
        headers,
        **between("2025-06-01", "2025-06-30"),
    )
    assert report == {
        "playlist_id": str(playlist_id),
        "plays": [
            {"date": "2025-06-02", "play_count": 100},
            {"date": "2025-06-03", "play_count": 4950},
        ],
        "total_plays": 5050,
    }


async def test_empty_range_reports_zeros(client):
    stream_id, headers, _ = await own(client, "stream")
    await client.app[ANALYTICS].record("stream", stream_id, "listeners", 5, day=JUNE_3)
    report = await get_json(
        client, f"/v1/analytics/streams/{stream_id}", headers, **between("2025-06-01", "2025-06-02")
    )
    assert report == {
        "stream_id": str(stream_id),
        "daily_listeners": [],
        "peak_listeners": 0,
        "total_listens": 0,
    }


async def test_default_range_is_the_last_thirty_days(make_client, make_settings, test_secrets):
    clock = lambda: datetime(2025, 6, 3, 23, 30, tzinfo=UTC)  # noqa: E731
    client = await make_client(build_app(make_settings(), test_secrets, clock=clock))
    playlist_id, headers, _ = await own(client, "playlist")
    service = client.app[ANALYTICS]
    await service.record("playlist", playlist_id, "play_count")  # today by the clock
    await service.record("playlist", playlist_id, "play_count", 2, day=date(2025, 5, 5))
    await service.record("playlist", playlist_id, "play_count", 3, day=date(2025, 5, 4))

    report = await get_json(client, f"/v1/analytics/playlists/{playlist_id}", headers)
    assert report["plays"] == [
        {"date": "2025-05-05", "play_count": 2},
        {"date": "2025-06-03", "play_count": 1},
    ]
    only_to = await get_json(
        client, f"/v1/analytics/playlists/{playlist_id}", headers, to="2025-05-04"
    )
    assert only_to["total_plays"] == 3


@pytest.mark.parametrize(
    ("params", "message"),
    [
        (
            {"from": "2025-06-02", "to": "2025-06-01"},
            "Query parameter 'from' (2025-06-02) must be on or before 'to' (2025-06-01).",
        ),
        ({"from": "yesterday"}, "Query parameter 'from' must be a date in YYYY-MM-DD format."),
        ({"from": "2025-13-01"}, "Query parameter 'from' must be a date in YYYY-MM-DD format."),
        ({"from": "1717200000"}, "Query parameter 'from' must be a date in YYYY-MM-DD format."),
        ({"to": "2025-6-1"}, "Query parameter 'to' must be a date in YYYY-MM-DD format."),
        ({"from": "2024-01-01", "to": "2025-01-01"}, "The date range must not exceed 366 days."),
        ({"since": "2025-06-01"}, "Query parameter 'since' is not a recognised field."),
    ],
)
async def test_bad_ranges_are_400(client, params, message):
    stream_id, headers, _ = await own(client, "stream")
    body = await get_json(
        client, f"/v1/analytics/streams/{stream_id}", headers, status=400, **params
    )
    assert body["error"] == message and body["code"] == 400


async def test_a_leap_year_is_the_longest_range(client):
    stream_id, headers, _ = await own(client, "stream")
    await get_json(
        client, f"/v1/analytics/streams/{stream_id}", headers, **between("2024-01-01", "2024-12-31")
    )


async def test_only_the_owner_or_an_admin_sees_analytics(client):
    stream_id, _, _ = await own(client, "stream")
    url = f"/v1/analytics/streams/{stream_id}"
    await client.app[ANALYTICS].record("stream", stream_id, "listeners", 42, day=JUNE_1)
    range_ = between("2025-06-01", "2025-06-01")

    _, other_dj = await user_headers(client, "dj")
    denied = await get_json(client, url, other_dj, status=403, **range_)
    assert denied == {
        "error": "Only the stream's owner or an admin can see its analytics",
        "code": 403,
    }

    _, admin = await user_headers(client, "admin")
    assert (await get_json(client, url, admin, **range_))["total_listens"] == 42

    _, listener = await user_headers(client, "listener")
    body = await get_json(client, url, listener, status=403, **range_)
    assert body["error"] == "Your token lacks the 'analytics:read' scope"
    assert (await client.get(url)).status == 401


async def test_unknown_resources_are_404(client):
    stream_id, headers, _ = await own(client, "stream")
    for url, message in [
        (f"/v1/analytics/streams/{uuid.uuid4()}", "Stream not found"),
        ("/v1/analytics/streams/not-a-uuid", "Stream not found"),
        # Nobody registered a playlist owner lookup in this app: every id is unknown.
        (f"/v1/analytics/playlists/{stream_id}", "Playlist not found"),
    ]:
        assert await get_json(client, url, headers, status=404) == {"error": message, "code": 404}
    _, admin = await user_headers(client, "admin")
    missing = await get_json(client, f"/v1/analytics/playlists/{uuid.uuid4()}", admin, status=404)
    assert missing["error"] == "Playlist not found"
