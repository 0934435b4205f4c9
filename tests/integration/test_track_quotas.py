"""Issue 13's per-plan upload quotas through the HTTP API: an admin puts DJs on plans, each
DJ sees their quota, and `POST /v1/tracks` holds them to it (real PostgreSQL, real files
made by ffmpeg, the filesystem object store)."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest

from control.tracks import quotas
from control.tracks.quotas import MB, PLANS
from tests.accounts import bearer, make_admin, user_headers
from tests.quotas import QUOTA, assert_month_used_up, next_month, quota, set_plan, stored
from tests.streams import fresh_database
from tests.tracks import TRACKS, create_track, make_audio, post_track, wait_track

META = {"title": "Quota Test", "artist": "DJ Quota"}
GB = 1024 * MB


@pytest.fixture
async def database(make_database: Any) -> str:
    return await fresh_database(make_database)


@pytest.fixture
async def node(make_client: Any, database: str) -> Any:
    return await make_client(database_url=database)


async def test_admin_sets_the_plan_and_the_dj_sees_it(node: Any) -> None:
    dj, dj_headers = await user_headers(node)
    admin = await make_admin(node)
    me = await (await node.get("/v1/users/me", headers=dj_headers)).json()
    assert me["upload_plan"] == "basic"  # the default: today's limits
    basic = await quota(node, dj_headers)
    assert basic["upload_plan"] == "basic" and basic["exempt"] is False
    assert basic["max_file_bytes"] == 100 * MB and basic["max_duration_seconds"] == 600
    assert basic["uploads_this_month"] == 0 and basic["uploads_per_month"] == 50
    assert basic["storage_used_bytes"] == 0 and basic["storage_bytes"] == 10 * GB
    assert datetime.fromisoformat(basic["month_resets_at"]) == next_month(datetime.now(UTC))

    changed = await set_plan(node, admin, dj["user_id"], "free")
    assert changed["upload_plan"] == "free"
    me = await (await node.get("/v1/users/me", headers=dj_headers)).json()
    assert me["upload_plan"] == "free"
    free = await quota(node, dj_headers)
    assert free["max_file_bytes"] == 50 * MB and free["max_duration_seconds"] == 360
    assert free["uploads_per_month"] == 10 and free["storage_bytes"] == 1 * GB
    listed = await (await node.get("/v1/users?per_page=100", headers=bearer(admin))).json()
    assert {u["user_id"]: u["upload_plan"] for u in listed["users"]}[dj["user_id"]] == "free"

    # Audited; a plan that does not exist, or a DJ changing their own, is refused.
    audit = await (await node.get("/v1/admin/audit", headers=bearer(admin))).json()
    entry = next(e for e in audit["entries"] if e["target_id"] == dj["user_id"])
    assert entry["action"] == "user.plan_changed"
    assert entry["details"] == {"upload_plan": ["basic", "free"]}
    bad = await node.patch(
        f"/v1/users/{dj['user_id']}", json={"upload_plan": "gold"}, headers=bearer(admin)
    )
    assert bad.status == 400 and "upload_plan" in (await bad.json())["error"]
    mine = await node.patch(
        f"/v1/users/{dj['user_id']}", json={"upload_plan": "artist"}, headers=dj_headers
    )
    assert mine.status == 403
    assert (await quota(node, dj_headers))["upload_plan"] == "free"
    # Admins are exempt: the settings alone apply to them.
    exempt = await quota(node, bearer(admin))
    assert exempt["exempt"] is True and exempt["uploads_per_month"] is None
    assert exempt["storage_bytes"] is None and exempt["max_file_bytes"] == 100 * MB
    assert (await node.get(QUOTA)).status == 401


async def test_settings_are_the_ceiling_and_plans_set_the_size(
    make_client: Any, database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With TRACK_MAX_BYTES raised to 1 GB, a pro DJ may send 500 MB, basic 100 MB, free
    50 MB; a file over the free plan's limit (made small here) is 413 for a free DJ and
    fine for a pro one. TRACK_MAX_SECONDS still caps the artist plan's unlimited length."""
    node = await make_client(database_url=database, track_max_bytes=1 * GB, track_max_seconds=3600)
    admin = await make_admin(node)
    free, free_headers = await user_headers(node)
    pro, pro_headers = await user_headers(node)
    artist, artist_headers = await user_headers(node)
    _, basic_headers = await user_headers(node)
    await set_plan(node, admin, free["user_id"], "free")
    await set_plan(node, admin, pro["user_id"], "pro")
    await set_plan(node, admin, artist["user_id"], "artist")
    assert (await quota(node, basic_headers))["max_file_bytes"] == 100 * MB
    assert (await quota(node, pro_headers))["max_file_bytes"] == 500 * MB
    assert (await quota(node, pro_headers))["max_duration_seconds"] == 1800
    assert (await quota(node, artist_headers))["max_file_bytes"] == 1 * GB
    assert (await quota(node, artist_headers))["max_duration_seconds"] == 3600

    wav = make_audio("wav", 3)  # ~530 KB
    monkeypatch.setitem(PLANS, "free", replace(PLANS["free"], max_bytes=200_000, max_seconds=2))
    too_big = await post_track(node, free_headers, wav, metadata=META)
    assert too_big.status == 413
    body = await too_big.json()
    assert body == {"error": "File is larger than the 200000 bytes limit.", "code": 413}
    assert await stored(node, free["user_id"]) == []
    # Within size but too long for the (patched) free plan: 400, as TRACK_MAX_SECONDS is.
    too_long = await post_track(node, free_headers, make_audio("mp3", 3), metadata=META)
    assert too_long.status == 400
    assert "at most" in (await too_long.json())["error"]
    assert await stored(node, free["user_id"]) == []
    track = await create_track(node, pro_headers, wav, metadata=META)
    assert track["status"] == "processing"
    await wait_track(node, pro_headers, track["track_id"])


async def test_the_eleventh_upload_of_a_free_month_is_429(node: Any) -> None:
    dj, headers = await user_headers(node)
    admin = await make_admin(node)
    await set_plan(node, admin, dj["user_id"], "free")
    audio = make_audio("mp3", 1)
    created = [await create_track(node, headers, audio, metadata=META) for _ in range(9)]
    # A deleted track still counts: the upload was made.
    last = await create_track(node, headers, audio, metadata=META)
    await wait_track(node, headers, last["track_id"])
    gone = await node.delete(f"{TRACKS}/{last['track_id']}?force=true", headers=headers)
    assert gone.status == 204
    before = await stored(node, dj["user_id"])
    used = await quota(node, headers)
    assert used["uploads_this_month"] == 10 and used["uploads_per_month"] == 10

    refused = await post_track(node, headers, audio, metadata=META)
    await assert_month_used_up(refused, 10, "free")
    assert await stored(node, dj["user_id"]) == before  # nothing stored
    assert (await quota(node, headers))["uploads_this_month"] == 10
    # A bigger plan: uploads open again at once.
    await set_plan(node, admin, dj["user_id"], "basic")
    more = await create_track(node, headers, audio, metadata=META)
    for track in (*created, more):
        await wait_track(node, headers, track["track_id"])


async def test_storage_quota_counts_sources_and_renditions(
    node: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    dj, headers = await user_headers(node)
    admin = await make_admin(node)
    await set_plan(node, admin, dj["user_id"], "free")
    audio = make_audio("flac", 2)
    first = await create_track(node, headers, audio, metadata=META)
    ready = await wait_track(node, headers, first["track_id"])
    assert ready["status"] == "ready", ready
    used = (await quota(node, headers))["storage_used_bytes"]
    renditions = used - len(audio)
    assert renditions > 0  # the ladder's files count too
    before = await stored(node, dj["user_id"])

    # Room for less than this file: refused once its real size is known, nothing kept.
    room = used + len(audio) - 1
    monkeypatch.setitem(PLANS, "free", replace(PLANS["free"], storage_bytes=room))
    refused = await post_track(node, headers, audio, metadata=META)
    assert refused.status == 429
    message = (await refused.json())["error"]
    assert message.startswith("Storage quota exceeded: the free plan holds ")
    assert "this file adds" in message and "delete tracks to make room" in message
    assert await stored(node, dj["user_id"]) == before
    assert (await quota(node, headers))["uploads_this_month"] == 1

    # Full: refused before the body is read.
    monkeypatch.setitem(PLANS, "free", replace(PLANS["free"], storage_bytes=used))
    full = await post_track(node, headers, audio, metadata=META)
    assert full.status == 429
    assert "this file adds" not in (await full.json())["error"]
    assert await stored(node, dj["user_id"]) == before
    # Deleting a track frees its room.
    gone = await node.delete(f"{TRACKS}/{first['track_id']}", headers=headers)
    assert gone.status == 204
    assert (await quota(node, headers))["storage_used_bytes"] == 0
    again = await create_track(node, headers, audio, metadata=META)
    await wait_track(node, headers, again["track_id"])
    assert quotas.PLANS["free"].storage_bytes == used  # (the patched plan applied)


async def test_two_uploads_at_once_cannot_both_take_the_last_one(
    node: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two uploads race for the last one of the month: exactly one is recorded (the DJ's
    row is locked while a track is recorded, and the count checked again there)."""
    dj, headers = await user_headers(node)
    admin = await make_admin(node)
    await set_plan(node, admin, dj["user_id"], "free")
    monkeypatch.setitem(PLANS, "free", replace(PLANS["free"], uploads_per_month=1))
    audio = make_audio("mp3", 1)
    responses = await asyncio.gather(
        post_track(node, headers, audio, metadata=META),
        post_track(node, headers, audio, metadata=META),
    )
    assert sorted(r.status for r in responses) == [201, 429]
    created = next(r for r in responses if r.status == 201)
    refused = next(r for r in responses if r.status == 429)
    assert (await refused.json())["error"].startswith("Upload quota exceeded: 1 upload a month")
    assert "Retry-After" in refused.headers
    track = await created.json()
    keys = await stored(node, dj["user_id"])
    assert keys and all(track["track_id"] in key for key in keys)  # the refused one left nothing
    assert (await quota(node, headers))["uploads_this_month"] == 1
    await wait_track(node, headers, track["track_id"])
