"""`POST /v1/uploads/audio` (the MP3s of playlists and episodes) held to the DJ's upload plan
as `POST /v1/tracks` is: the month's uploads (tracks and uploads together, each once), the
storage, the file size and the length; admins exempt (real PostgreSQL, real MP3s, the
filesystem object store)."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

import pytest

from control.tracks.quotas import PLANS
from tests.accounts import bearer, make_admin, user_headers
from tests.audio import make_mp3
from tests.quotas import assert_month_used_up, quota, set_plan, stored
from tests.streams import fresh_database
from tests.tracks import create_track, make_audio, post_track, wait_track
from tests.uploads import post_upload, upload_mp3, wait_processed

META = {"title": "Quota Test", "artist": "DJ Quota"}


@pytest.fixture
async def node(make_client: Any, make_database: Any) -> Any:
    return await make_client(database_url=await fresh_database(make_database))


async def free_dj(node: Any) -> tuple[dict[str, Any], dict[str, str], dict[str, Any]]:
    """A DJ on the free plan, their headers, and an admin."""
    dj, headers = await user_headers(node)
    admin = await make_admin(node)
    await set_plan(node, admin, dj["user_id"], "free")
    return dj, headers, admin


async def test_uploads_and_tracks_share_the_month_each_counted_once(
    node: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    dj, headers, admin = await free_dj(node)
    monkeypatch.setitem(PLANS, "free", replace(PLANS["free"], uploads_per_month=3))
    mp3 = make_mp3(1.0)
    track = await create_track(node, headers, make_audio("mp3", 1), metadata=META)
    first = await upload_mp3(node, headers, mp3)
    assert (await quota(node, headers))["uploads_this_month"] == 2  # a track is one upload
    second = await upload_mp3(node, headers, mp3)
    assert (await quota(node, headers))["uploads_this_month"] == 3
    # Their processing writes HLS objects: done before the store is compared.
    for made in (first, second):
        assert (await wait_processed(node, headers, made["upload_id"]))["status"] == "ready"
    before = await stored(node, dj["user_id"])

    refused = await post_upload(node, headers, mp3)
    await assert_month_used_up(refused, 3, "free")
    assert await stored(node, dj["user_id"]) == before  # nothing stored
    # The uploads used up the month for tracks too.
    assert (await post_track(node, headers, make_audio("mp3", 1), metadata=META)).status == 429
    # A deleted upload still counts: it was made.
    gone = await node.delete(f"/v1/uploads/audio/{second['upload_id']}", headers=headers)
    assert gone.status == 204
    assert (await post_upload(node, headers, mp3)).status == 429
    # Admins are exempt.
    exempt = await upload_mp3(node, bearer(admin), mp3)
    assert (await wait_processed(node, bearer(admin), exempt["upload_id"]))["status"] == "ready"
    await wait_track(node, headers, track["track_id"])


async def test_size_and_storage_follow_the_plan_before_and_after_the_body(
    node: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    dj, headers, _ = await free_dj(node)
    mp3, free = make_mp3(2.0), PLANS["free"]
    # The plan's size when it is below UPLOAD_MAX_BYTES: 413 while the body arrives.
    monkeypatch.setitem(PLANS, "free", replace(free, max_bytes=len(mp3) - 1))
    too_big = await post_upload(node, headers, mp3)
    assert too_big.status == 413
    assert await too_big.json() == {
        "error": f"File is larger than the {len(mp3) - 1} bytes limit.",
        "code": 413,
    }
    assert await stored(node, dj["user_id"]) == []
    assert (await quota(node, headers))["uploads_this_month"] == 0

    monkeypatch.setitem(PLANS, "free", replace(free, storage_bytes=len(mp3) + 100))
    kept = await upload_mp3(node, headers, mp3)
    assert (await wait_processed(node, headers, kept["upload_id"]))["status"] == "ready"
    assert (await quota(node, headers))["storage_used_bytes"] == len(mp3)
    before = await stored(node, dj["user_id"])
    # Room for less than this file: refused once its real size is known, nothing kept.
    no_room = await post_upload(node, headers, mp3)
    assert no_room.status == 429
    message = (await no_room.json())["error"]
    assert message.startswith("Storage quota exceeded: the free plan holds ")
    assert "this file adds" in message
    assert await stored(node, dj["user_id"]) == before
    # Full: refused before the body is read.
    monkeypatch.setitem(PLANS, "free", replace(free, storage_bytes=len(mp3)))
    full = await post_upload(node, headers, mp3)
    assert full.status == 429
    assert "this file adds" not in (await full.json())["error"]
    assert await stored(node, dj["user_id"]) == before
    assert (await quota(node, headers))["uploads_this_month"] == 1


async def test_an_upload_longer_than_the_plan_fails_with_the_reason(
    node: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An upload's length is known once it is processed: longer than the plan allows, it
    fails saying so (its HLS is not kept); a pro DJ's same file is ready."""
    _, headers, admin = await free_dj(node)
    monkeypatch.setitem(PLANS, "free", replace(PLANS["free"], max_seconds=2))
    mp3 = make_mp3(3.0)
    created = await upload_mp3(node, headers, mp3)
    failed = await wait_processed(node, headers, created["upload_id"])
    assert failed["status"] == "failed"
    assert failed["error_message"] == (
        "Transcoding error: the audio is 0.1 minutes long: the free plan allows at most "
        "0.0333333 minutes."
    )
    manifest = await node.get(f"/v1/uploads/audio/{created['upload_id']}/hls/manifest.m3u8",
                              headers=headers)  # fmt: skip
    assert manifest.status == 409
    assert "free plan allows" in (await manifest.json())["error"]
    pro, pro_headers = await user_headers(node)
    await set_plan(node, admin, pro["user_id"], "pro")
    ready = await upload_mp3(node, pro_headers, mp3)
    assert (await wait_processed(node, pro_headers, ready["upload_id"]))["status"] == "ready"


async def test_two_uploads_at_once_cannot_both_take_the_last_one(
    node: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    dj, headers, _ = await free_dj(node)
    monkeypatch.setitem(PLANS, "free", replace(PLANS["free"], uploads_per_month=1))
    mp3 = make_mp3(1.0)
    responses = await asyncio.gather(
        post_upload(node, headers, mp3), post_upload(node, headers, mp3)
    )
    assert sorted(r.status for r in responses) == [201, 429]
    created = await next(r for r in responses if r.status == 201).json()
    refused = await next(r for r in responses if r.status == 429).json()
    assert refused["error"].startswith("Upload quota exceeded: 1 upload a month")
    keys = await stored(node, dj["user_id"])
    assert keys and all(created["upload_id"] in key for key in keys)
    assert (await quota(node, headers))["uploads_this_month"] == 1
    await wait_processed(node, headers, created["upload_id"])
