"""On-demand playlists (US-3.3 – US-3.8, US-5.2, US-6.3, US-11.1) end to end: uploads and
external tracks served by a real web server on loopback, played by libavformat as an HLS
client over HTTP and as one continuous MP3, with play counts, access rules and the errors
a DJ meets."""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

import mediaserver.app
from control.grants import SIGNED_OUT
from mediaserver.app import build_app
from relay.mp3 import Mp3FrameReader
from tests.accounts import sign_out_everywhere, user_headers
from tests.audio import decode_duration, make_mp3
from tests.loopback import RawHttpServer, Request, response_head
from tests.playlists import (
    PLAYLISTS,
    CountingStore,
    Host,
    Server,
    audio_frames,
    create,
    detail,
    error_of,
    external_track,
    playlist_body,
    plays,
    start_host,
    upload_track,
    wait_settled,
)
from tests.streams import fresh_database, subscriber_of
from tests.uploads import UPLOADS, ready_upload, upload_mp3

FRAME = 1152 / 44_100  # seconds of one MPEG-1 Layer III frame at 44.1 kHz


@pytest.fixture
async def database(make_database: Any) -> str:
    return await fresh_database(make_database)


@pytest.fixture
async def host(aiohttp_server: Any) -> Host:
    return await start_host(aiohttp_server)


async def start(make_client: Any, database: str, **overrides: Any) -> TestClient:
    settings = {"database_url": database, "allow_private_media_urls": True, **overrides}
    return await make_client(**settings)


@dataclass
class Mixed:
    """A ready playlist of two uploads and an external track, and the three MP3 files."""

    node: TestClient
    dj: dict[str, str]
    playlist_id: str
    tracks: list[dict[str, Any]]
    sources: list[bytes]
    body: dict[str, Any]

    @property
    def path(self) -> str:
        return f"{PLAYLISTS}/{self.playlist_id}"

    async def expected_seconds(self) -> float:
        """What a decoder gets out of the three files, one after the other."""
        return sum([await asyncio.to_thread(decode_duration, data) for data in self.sources])


@pytest.fixture
async def mixed(make_client: Any, database: str, host: Host) -> Mixed:
    node = await start(make_client, database)
    _, dj = await user_headers(node)
    sources = [make_mp3(12.0, id3_title="Opening"), make_mp3(8.0, frequency=660.0)]
    uploads = [await ready_upload(node, dj, data) for data in sources]
    tracks = [upload_track(u["upload_id"]) for u in uploads]
    tracks.append(external_track(host.url("ext.mp3"), title="Track Three", artist="Artist C"))
    response = await node.post(PLAYLISTS, json=playlist_body(tracks), headers=dj)
    assert response.status == 201, await response.text()
    created = await response.json()
    playlist_id = created["playlist_id"]
    base = str(node.make_url(f"{PLAYLISTS}/{playlist_id}"))
    assert created["stream_urls"] == {"hls": f"{base}/stream.m3u8", "mp3": f"{base}/stream.mp3"}
    body = await wait_settled(node, dj, playlist_id)
    assert body["hls_ready"], body
    return Mixed(node, dj, playlist_id, tracks, [*sources, host.files["ext.mp3"]], body)


async def test_a_mixed_playlist_plays_through_every_track_as_hls(mixed: Mixed) -> None:
    node, body = mixed.node, mixed.body
    assert [t["title"] for t in body["tracks"]] == ["Opening", "song", "Track Three"]
    assert [t["status"] for t in body["tracks"]] == ["ready"] * 3
    assert body["tracks"][2]["url"] == mixed.tracks[2]["url"]
    assert body["tracks"][2]["duration_seconds"] == pytest.approx(6.0, abs=0.05)

    manifest = await node.get(f"{mixed.path}/stream.m3u8")
    assert manifest.status == 200
    assert manifest.headers["Content-Type"] == "application/vnd.apple.mpegurl"
    lines = (await manifest.text()).splitlines()
    assert lines[-1] == "#EXT-X-ENDLIST" and "#EXT-X-PLAYLIST-TYPE:VOD" in lines
    # Segment URIs: our segment route, absolute; the tracks in order, and a discontinuity
    # exactly where each track after the first starts.
    segment_base = str(node.make_url(f"{mixed.path}/hls/"))
    uris = [line for line in lines if line and not line.startswith("#")]
    owners = [uri.removeprefix(segment_base).split("/")[0] for uri in uris]
    assert list(dict.fromkeys(owners)) == [t["track_id"] for t in body["tracks"]]
    starts = [n for n in range(1, len(uris)) if owners[n] != owners[n - 1]]
    marked = [
        uris.index(next(x for x in lines[n:] if not x.startswith("#")))
        for n, line in enumerate(lines)
        if line == "#EXT-X-DISCONTINUITY"
    ]
    assert marked == starts and len(starts) == 2

    expected = await mixed.expected_seconds()
    url = str(node.make_url(f"{mixed.path}/stream.m3u8"))
    assert await asyncio.to_thread(decode_duration, url) == pytest.approx(expected, abs=0.2)

    counted = await plays(node, mixed.dj, mixed.playlist_id)
    assert counted >= 2  # our GET and the player's
    assert (await node.get(f"{mixed.path}/stream.m3u8")).status == 200
    assert await plays(node, mixed.dj, mixed.playlist_id) == counted + 1


async def test_a_mixed_playlist_plays_as_one_continuous_mp3(mixed: Mixed, host: Host) -> None:
    node = mixed.node
    mp3 = await node.get(f"{mixed.path}/stream.mp3")
    assert mp3.status == 200 and mp3.headers["Content-Type"] == "audio/mpeg"
    assert mp3.headers["Transfer-Encoding"] == "chunked"
    data = await mp3.read()
    reader = Mp3FrameReader()
    frames = reader.feed(data) + reader.flush()
    assert (reader.skipped_bytes, reader.tag_bytes) == (0, 0)  # no garbage, no ID3 tags
    assert not [f for f in frames if f.is_info_frame]  # no Xing/Info/LAME frame anywhere
    assert len(frames) == sum(audio_frames(s) for s in mixed.sources)
    joined = await asyncio.to_thread(decode_duration, data)
    assert joined == pytest.approx(await mixed.expected_seconds(), abs=3 * FRAME * 2)
    assert await plays(node, mixed.dj, mixed.playlist_id) == 0  # plays count HLS loads

    # Saving it again keeps the fetched copy: an external track is fetched once.
    body = playlist_body(mixed.tracks, title="Renamed")
    renamed = await node.put(mixed.path, json=body, headers=mixed.dj)
    assert renamed.status == 200
    assert await renamed.json() == {"playlist_id": mixed.playlist_id, "updated": True}
    again = await detail(node, mixed.dj, mixed.playlist_id)
    assert again["hls_ready"] and again["title"] == "Renamed"
    assert [t["track_id"] for t in again["tracks"]] == [t["track_id"] for t in mixed.body["tracks"]]
    assert host.gets == {"ext.mp3": 1}


async def test_invalid_bodies_are_400_and_unusable_tracks_422(
    make_client: Any, database: str, host: Host, unused_tcp_port: int
) -> None:
    node = await start(make_client, database, job_workers=0)  # uploads stay `processing`
    _, dj = await user_headers(node)
    _, other = await user_headers(node)
    pending = await upload_mp3(node, dj, make_mp3(2.0))
    theirs = await upload_mp3(node, other, make_mp3(2.0))
    ext = external_track(host.url("ext.mp3"))
    for bad in (
        {"tracks": [ext]},
        playlist_body([]),
        playlist_body([{"source_type": "upload"}]),
        playlist_body([external_track("ftp://example.com/a.mp3")]),
        playlist_body([ext], visibility="secret"),
        playlist_body([ext], surprise=1),
    ):
        response = await node.post(PLAYLISTS, json=bad, headers=dj)
        assert response.status == 400, bad
    assert (await node.post(PLAYLISTS, data=b"{", headers=dj)).status == 400

    refused = {
        "is not ready (status processing)": upload_track(pending["upload_id"]),
        "is not one of your uploads": upload_track(theirs["upload_id"]),
        "serves text/html": external_track(host.url("page.html")),
        "answered HEAD with HTTP 404": external_track(host.url("gone.mp3")),
        "could not be reached": external_track(f"http://127.0.0.1:{unused_tcp_port}/a.mp3"),
    }
    for message, track in refused.items():
        response = await node.post(PLAYLISTS, json=playlist_body([ext, track]), headers=dj)
        status, error = await error_of(response)
        assert (status, error.startswith("Track 2: ")) == (422, True), error
        assert message in error
    listed = await (await node.get(PLAYLISTS, headers=dj)).json()
    assert listed["playlists"] == []  # nothing was created


class HostileLengthHost(RawHttpServer):
    """Answers every request with 200 `audio/mpeg` and `Content-Length: ²` (Latin-1 byte
    0xB2: `str.isdigit` says it is a digit, `int` refuses it)."""

    async def _handle(self, request: Request, writer: asyncio.StreamWriter) -> None:
        head = response_head("HTTP/1.1 200 OK", [("Content-Type", "audio/mpeg")])[:-2]
        writer.write(head + b"Content-Length: \xb2\r\nConnection: close\r\n\r\n")


async def test_a_hostile_content_length_is_a_clear_422(
    make_client: Any, database: str, fake_servers: Any
) -> None:
    hostile = await fake_servers(HostileLengthHost)
    node = await start(make_client, database)
    _, dj = await user_headers(node)
    body = playlist_body([external_track(f"{hostile.url}/track.mp3")])
    status, error = await error_of(await node.post(PLAYLISTS, json=body, headers=dj))
    assert (status, error) == (422, "Track 1: The track URL did not answer with valid HTTP")
    assert (await (await node.get(PLAYLISTS, headers=dj)).json())["playlists"] == []


async def test_others_unknown_ids_and_playlists_not_ready(
    make_client: Any, database: str, host: Host
) -> None:
    node = await start(make_client, database, job_workers=0)  # external tracks stay pending
    _, dj = await user_headers(node)
    _, other = await user_headers(node)
    _, listener = await user_headers(node, "listener")
    ext = external_track(host.url("ext.mp3"))
    assert (await node.post(PLAYLISTS, json=playlist_body([ext]))).status == 401
    listener_post = await node.post(PLAYLISTS, json=playlist_body([ext]), headers=listener)
    assert listener_post.status == 403  # no playlists:write

    playlist_id = await create(node, dj, [ext])
    path = f"{PLAYLISTS}/{playlist_id}"
    assert (await node.put(path, json=playlist_body([ext]), headers=other)).status == 403
    assert (await node.delete(path, headers=other)).status == 403
    assert (await node.get(path, headers=listener)).status == 200  # public
    unknown = f"{PLAYLISTS}/{uuid.uuid4()}"
    assert (await node.get(unknown)).status == 404
    assert (await node.get(f"{PLAYLISTS}/not-a-uuid")).status == 404
    assert (await node.put(unknown, json=playlist_body([ext]), headers=dj)).status == 404
    assert (await node.delete(unknown, headers=dj)).status == 404
    assert (await node.get(f"{unknown}/stream.m3u8")).status == 404

    # Its external track is never fetched on this node: 409, and no play counted.
    for stream in ("stream.m3u8", "stream.mp3"):
        response = await node.get(f"{path}/{stream}")
        status, error = await error_of(response)
        assert (status, response.headers["Retry-After"]) == (409, "5")
        assert error.startswith("The playlist is being prepared (1 of 1 tracks")
    assert await plays(node, dj, playlist_id) == 0


async def test_private_addresses_are_refused_unless_allowed(
    make_client: Any, database: str, host: Host
) -> None:
    node = await start(make_client, database, allow_private_media_urls=False)
    _, dj = await user_headers(node)
    body = playlist_body([external_track(host.url("ext.mp3"))])
    status, error = await error_of(await node.post(PLAYLISTS, json=body, headers=dj))
    assert status == 422 and "private, loopback or link-local" in error
    assert host.gets == {}


async def test_external_tracks_that_cannot_play_fail_and_can_be_replaced(
    make_client: Any, database: str, host: Host
) -> None:
    node = await start(make_client, database, external_track_max_bytes=50_000)
    _, dj = await user_headers(node)
    too_big = playlist_body([external_track(host.url("ext.mp3"))])  # Content-Length says so
    status, error = await error_of(await node.post(PLAYLISTS, json=too_big, headers=dj))
    too_large = "The track is larger than the 50000 bytes limit for external tracks"
    assert (status, error) == (422, f"Track 1: {too_large}")
    failures = {
        "big-chunked.mp3": f"External track: {too_large}",
        "noise.mp3": "External track: not a playable MP3",
    }
    for name, message in failures.items():
        playlist_id = await create(node, dj, [external_track(host.url(name))])
        body = await wait_settled(node, dj, playlist_id)
        [track] = body["tracks"]
        assert (track["status"], body["hls_ready"]) == ("failed", False)
        assert track["error_message"].startswith(message)
        status, error = await error_of(await node.get(f"{PLAYLISTS}/{playlist_id}/stream.m3u8"))
        assert status == 409 and error.startswith(f"Track 1 could not be prepared ({message}")

    upload = await ready_upload(node, dj, make_mp3(3.0))
    fixed = playlist_body([upload_track(upload["upload_id"])])
    assert (await node.put(f"{PLAYLISTS}/{playlist_id}", json=fixed, headers=dj)).status == 200
    assert (await detail(node, dj, playlist_id))["hls_ready"]
    assert (await node.get(f"{PLAYLISTS}/{playlist_id}/stream.m3u8")).status == 200


async def test_list_replace_delete_and_uploads_in_use(make_client: Any, database: str) -> None:
    node = await start(make_client, database)
    _, dj = await user_headers(node)
    first = await ready_upload(node, dj, make_mp3(3.0), title="First")
    second = await ready_upload(node, dj, make_mp3(2.0), title="Second")
    empty = await (await node.get(PLAYLISTS, headers=dj)).json()
    assert empty["playlists"] == [] and empty["message"] == (
        "You have not created any playlists yet. Use POST /v1/playlists to add one!"
    )
    tracks = [upload_track(first["upload_id"]), upload_track(second["upload_id"])]
    playlist_id = await create(node, dj, tracks)
    path = f"{PLAYLISTS}/{playlist_id}"
    listed = await (await node.get(PLAYLISTS, headers=dj)).json()
    assert [p["playlist_id"] for p in listed["playlists"]] == [playlist_id]
    assert listed["message"] is None and listed["playlists"][0]["track_count"] == 2
    before = await detail(node, dj, playlist_id)
    assert before["hls_ready"]  # uploads only: ready at once

    broken = [tracks[1], upload_track(str(uuid.uuid4()))]
    response = await node.put(path, json=playlist_body(broken, title="New"), headers=dj)
    assert response.status == 422
    assert await detail(node, dj, playlist_id) == before  # nothing changed

    swapped = playlist_body(tracks[::-1], title="Swapped", visibility="private")
    assert (await node.put(path, json=swapped, headers=dj)).status == 200
    after = await detail(node, dj, playlist_id)
    assert (after["title"], after["visibility"]) == ("Swapped", "private")
    assert [t["title"] for t in after["tracks"]] == ["Second", "First"]
    assert [t["track_id"] for t in after["tracks"]] == [
        t["track_id"] for t in before["tracks"][::-1]
    ]
    text = await (await node.get(f"{path}/stream.m3u8", headers=dj)).text()
    first_uri = next(line for line in text.splitlines() if line.startswith("http"))
    assert f"/hls/{after['tracks'][0]['track_id']}/segment000.ts?grant=" in first_uri

    in_use = await node.delete(f"{UPLOADS}/{first['upload_id']}", headers=dj)
    status, error = await error_of(in_use)
    assert status == 409 and "used by a playlist" in error
    assert (await in_use.json())["details"] == ["playlist 'Swapped'"]

    assert (await node.delete(path, headers=dj)).status == 204
    assert (await node.get(path, headers=dj)).status == 404
    assert (await node.get(f"{path}/stream.m3u8", headers=dj)).status == 404
    assert (await node.session.get(first_uri)).status == 404
    assert (await node.delete(path, headers=dj)).status == 404
    assert (await (await node.get(PLAYLISTS, headers=dj)).json())["playlists"] == []
    assert (await node.delete(f"{UPLOADS}/{first['upload_id']}", headers=dj)).status == 204


async def test_a_forced_upload_delete_fails_its_tracks_instead_of_breaking_players(
    make_client: Any, database: str
) -> None:
    node = await start(make_client, database)
    _, dj = await user_headers(node)
    kept = await ready_upload(node, dj, make_mp3(3.0), title="Kept")
    doomed = await ready_upload(node, dj, make_mp3(2.0), title="Doomed")
    tracks = [upload_track(kept["upload_id"]), upload_track(doomed["upload_id"])]
    playlist_id = await create(node, dj, tracks, title="Both")
    alone = await create(node, dj, [upload_track(doomed["upload_id"])], title="Alone")
    other = await create(node, dj, [upload_track(kept["upload_id"])], title="Other")
    path = f"{PLAYLISTS}/{playlist_id}"
    text = await (await node.get(f"{path}/stream.m3u8")).text()
    doomed_uri = [line for line in text.splitlines() if line.startswith("http")][-1]
    assert (await node.session.get(doomed_uri)).status == 200
    store = node.app[mediaserver.app.STORE]
    manifests = [f"playlists/{pid}/hls/manifest.m3u8" for pid in (playlist_id, alone, other)]
    assert [(await store.head(key)).size > 0 for key in manifests] == [True] * 3

    deleted = await node.delete(f"{UPLOADS}/{doomed['upload_id']}?force=true", headers=dj)
    assert deleted.status == 204

    # Each playlist playing it is no longer ready, names the track, and plays neither way.
    expected = (
        "Track {} could not be prepared (its upload was deleted); replace or remove it with PUT"
    )
    for pid, n in ((playlist_id, 2), (alone, 1)):
        body = await detail(node, dj, pid)
        assert body["hls_ready"] is False
        track = body["tracks"][n - 1]
        assert (track["status"], track["error_message"]) == ("failed", "its upload was deleted")
        for media in ("stream.m3u8", "stream.mp3"):
            response = await node.get(f"{PLAYLISTS}/{pid}/{media}")
            assert await error_of(response) == (409, expected.format(n))
    assert [t["status"] for t in (await detail(node, dj, playlist_id))["tracks"]] == [
        "ready",
        "failed",
    ]
    assert (await node.session.get(doomed_uri)).status == 404  # its segments are gone
    stored = {info.key async for info in store.list("playlists/")}
    assert [key in stored for key in manifests] == [False, False, True]
    # A playlist without it is untouched.
    assert (await detail(node, dj, other))["hls_ready"] is True
    assert (await node.get(f"{PLAYLISTS}/{other}/stream.m3u8")).status == 200

    # Replacing the track makes the playlist play again.
    fixed = playlist_body([upload_track(kept["upload_id"])], title="Both")
    assert (await node.put(path, json=fixed, headers=dj)).status == 200
    assert (await detail(node, dj, playlist_id))["hls_ready"] is True
    text = await (await node.get(f"{path}/stream.m3u8")).text()
    assert doomed_uri not in text
    played = await asyncio.to_thread(decode_duration, str(node.make_url(f"{path}/stream.m3u8")))
    assert played == pytest.approx(await asyncio.to_thread(decode_duration, make_mp3(3.0)), abs=0.1)


async def test_private_and_monetized_playlists(make_client: Any, database: str) -> None:
    node = await start(make_client, database)
    _, dj = await user_headers(node)
    _, listener = await user_headers(node, "listener")
    subscriber = await subscriber_of(node, dj)
    upload = await ready_upload(node, dj, make_mp3(3.0))
    tracks = [upload_track(upload["upload_id"])]
    private = f"{PLAYLISTS}/{await create(node, dj, tracks, visibility='private')}"
    assert (await node.get(private)).status == 401
    assert (await node.get(f"{private}/stream.m3u8")).status == 401
    assert (await node.get(private, headers=listener)).status == 200
    text = await (await node.get(f"{private}/stream.m3u8", headers=listener)).text()
    segment = next(line for line in text.splitlines() if line.startswith("http"))
    granted = await node.session.get(segment)  # no token: the grant is enough
    assert granted.status == 200 and granted.headers["Content-Type"] == "video/mp2t"
    assert granted.headers["Cache-Control"] == "private, max-age=86400, immutable"
    assert (await granted.read())[0] == 0x47  # MPEG-TS sync byte
    assert (await node.session.get(segment.split("?")[0])).status == 401
    assert (await node.session.get(segment[:-4] + "0000")).status == 403  # tampered grant

    monetized_id = await create(node, dj, tracks, monetization_enabled=True)
    monetized = f"{PLAYLISTS}/{monetized_id}"
    assert (await node.get(monetized)).status == 200  # the track list stays readable
    for stream in ("stream.m3u8", "stream.mp3"):
        for headers in ({}, listener):
            status, error = await error_of(await node.get(f"{monetized}/{stream}", headers=headers))
            assert (status, error) == (403, "Subscription required")
        assert (await node.get(f"{monetized}/{stream}", headers=subscriber)).status == 200
        assert (await node.get(f"{monetized}/{stream}", headers=dj)).status == 200
    assert await plays(node, dj, monetized_id) == 2  # the two HLS plays served, no refusals

    both_id = await create(node, dj, tracks, visibility="private", monetization_enabled=True)
    both = f"{PLAYLISTS}/{both_id}"
    assert (await node.get(both, headers=listener)).status == 403
    assert (await node.get(both, headers=subscriber)).status == 200


async def first_segment(node: TestClient, path: str, headers: dict[str, str]) -> str:
    """The first segment URL of the playlist's manifest as served to `headers`' caller."""
    response = await node.get(f"{path}/stream.m3u8", headers=headers)
    assert response.status == 200, await response.text()
    return next(line for line in (await response.text()).splitlines() if line.startswith("http"))


async def test_segment_links_follow_the_rules_and_their_user(
    make_client: Any, database: str
) -> None:
    node = await start(make_client, database)
    _, dj = await user_headers(node)
    _, listener = await user_headers(node, "listener")
    subscriber = await subscriber_of(node, dj)
    upload = await ready_upload(node, dj, make_mp3(3.0))
    tracks = [upload_track(upload["upload_id"])]
    private = f"{PLAYLISTS}/{await create(node, dj, tracks, visibility='private')}"
    segment = await first_segment(node, private, listener)
    me = await (await node.get("/v1/users/me", headers=listener)).json()
    assert segment.split("grant=")[1].split(".")[0] == me["user_id"].replace("-", "")
    assert (await node.session.get(segment)).status == 200

    # Signed out everywhere (a password change): the links end with the old sessions;
    # those of a manifest loaded after logging in again work.
    listener = await sign_out_everywhere(node, listener)
    assert await error_of(await node.session.get(segment)) == (403, SIGNED_OUT)
    fresh = await first_segment(node, private, listener)
    assert fresh != segment and (await node.session.get(fresh)).status == 200
    segment = fresh

    # Monetization switched on: the listener's six-hour links stop at once.
    paid = playlist_body(tracks, visibility="private", monetization_enabled=True)
    assert (await node.put(private, json=paid, headers=dj)).status == 200
    status, error = await error_of(await node.session.get(segment))
    assert (status, error) == (403, "This segment link has expired; reload the playlist")
    status, error = await error_of(await node.get(f"{private}/stream.m3u8", headers=listener))
    assert (status, error) == (403, "Subscription required")

    # A subscriber's links work until the subscription ends, then within a second no more.
    segment = await first_segment(node, private, subscriber)
    assert (await node.session.get(segment)).status == 200
    listed = await (await node.get("/v1/monetization/subscriptions", headers=subscriber)).json()
    for subscription in listed["subscriptions"]:
        url = f"/v1/monetization/subscriptions/{subscription['subscription_id']}"
        assert (await node.delete(url, headers=subscriber)).status == 200

    async def lapsed() -> tuple[int, str] | None:
        response = await node.session.get(segment)
        return await error_of(response) if response.status == 403 else None

    deadline = time.monotonic() + 10
    while (answer := await lapsed()) is None:
        assert time.monotonic() < deadline, "the lapsed subscriber's link still works"
        await asyncio.sleep(0.1)
    assert answer == (403, "Subscription required")
    # A hostile grant is a 403 like any forgery, not a server error.
    bare = segment.split("?")[0]
    for grant in (f"{me['user_id'].replace('-', '')}.\u00b2.{'0' * 32}", "\u00b2"):
        assert (await node.session.get(bare, params={"grant": grant})).status == 403


@pytest.mark.parametrize("cancel", [False, True], ids=["write-fails", "cancelled"])
async def test_a_listener_leaving_stream_mp3_stops_the_reading(
    aiohttp_client: Any,
    make_settings: Any,
    test_secrets: Any,
    database: str,
    monkeypatch: pytest.MonkeyPatch,
    cancel: bool,
) -> None:
    stores: list[CountingStore] = []

    async def open_counting(settings: Any) -> CountingStore:
        store = CountingStore(settings.data_dir.resolve() / "objects")
        await store.open()
        stores.append(store)
        return store

    monkeypatch.setattr(mediaserver.app, "open_object_store", open_counting)
    app = build_app(make_settings(database_url=database), test_secrets)
    node = await aiohttp_client(Server(app, cancel))
    [store] = stores
    _, dj = await user_headers(node)
    upload = await ready_upload(node, dj, make_mp3(20.0, bitrate=320_000))
    playlist_id = await create(node, dj, [upload_track(upload["upload_id"])] * 30)
    total = 30 * upload["size_bytes"]
    store.bytes_read = 0

    response = await node.get(f"{PLAYLISTS}/{playlist_id}/stream.mp3")
    assert response.status == 200
    await response.content.readexactly(16 * 1024)
    assert store.bytes_read < total  # the first bytes came before the whole was read
    response.close()  # the listener leaves
    deadline = time.monotonic() + 10
    while store.open_reads:
        assert time.monotonic() < deadline, "the server is still reading the playlist"
        await asyncio.sleep(0.02)
    # The next listener gets the whole playlist; by the time it has, a server still reading
    # for the one who left would have read it all again too.
    full = await (await node.get(f"{PLAYLISTS}/{playlist_id}/stream.mp3")).read()
    assert len(full) > 0.99 * total
    assert store.bytes_read - total < total / 10  # a track or two, of thirty
