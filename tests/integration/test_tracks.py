"""Issue 13 through the HTTP API: a DJ uploads real audio files (made by ffmpeg) in every
accepted format, the node turns them into tracks (a real PostgreSQL, the filesystem object
store, the job queue), and a listener plays what comes out with a real decoder."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any

import pytest
from mutagen.id3 import APIC, ID3, TPE1

from mediaserver.app import STORE
from tests.accounts import user_headers
from tests.audio import decode, decode_duration
from tests.playlists import create as create_playlist
from tests.playlists import upload_track, wait_settled
from tests.streams import fresh_database
from tests.tracks import (
    FORMATS,
    TRACKS,
    create_track,
    make_audio,
    make_png,
    post_track,
    ready_track,
    wait_track,
)

META = {
    "title": "Midnight Dreams",
    "artist": "Alice Producer",
    "description": "A journey through electronic soundscapes",
    "tags": ["electronic", "ambient"],
    "genre": "Electronic",
    "bpm": 128,
    "key": "Am",
    "is_public": True,
    "license": "Creative Commons BY-SA",
}


@pytest.fixture
async def database(make_database: Any) -> str:
    """A database of its own: no other test's node takes these jobs."""
    return await fresh_database(make_database)


@pytest.fixture
async def node(make_client: Any, database: str) -> Any:
    return await make_client(database_url=database)


async def fetch(node: Any, url: str, headers: dict[str, str] | None = None) -> bytes:
    path = url.split("://", 1)[1].split("/", 1)[1]
    response = await node.get("/" + path, headers=headers or {})
    assert response.status == 200, (url, response.status, await response.text())
    return bytes(await response.read())


@pytest.mark.parametrize("kind", sorted(FORMATS))
async def test_every_format_becomes_a_playable_track(node: Any, kind: str) -> None:
    """A DJ uploads each accepted format; a listener decodes every rendition, the master
    playlist's renditions and their segments, with the source's duration."""
    _, dj = await user_headers(node)
    track = await ready_track(node, dj, make_audio(kind), metadata=META)
    assert track["title"] == "Midnight Dreams" and track["bpm"] == 128
    assert track["duration_seconds"] == pytest.approx(10.0, abs=0.15)
    assert track["renditions"], track
    for rendition in track["renditions"]:
        data = await fetch(node, rendition["file_url"], dj)
        decoded = await asyncio.to_thread(decode, data)
        assert decoded.duration == pytest.approx(10.0, abs=0.2), rendition
    master = (await fetch(node, track["hls_master_url"])).decode()
    assert master.startswith("#EXTM3U") and "#EXT-X-STREAM-INF:" in master
    assert re.search(r"BANDWIDTH=\d+", master) and "CODECS=" in master
    base = track["hls_master_url"].rsplit("/", 1)[0]
    for uri in [line for line in master.splitlines() if line and not line.startswith("#")]:
        index = (await fetch(node, f"{base}/{uri}")).decode()
        segments = [line for line in index.splitlines() if line and not line.startswith("#")]
        assert segments and "#EXT-X-ENDLIST" in index
        rendition_base = f"{base}/{uri}".rsplit("/", 1)[0]
        seconds = 0.0
        for name in segments:
            data = await fetch(node, f"{rendition_base}/{name}")
            seconds += await asyncio.to_thread(decode_duration, data)
        assert seconds == pytest.approx(10.0, abs=0.3)
    waveform = json.loads(await fetch(node, track["waveform_url"]))
    assert waveform["length"] > 100 and len(waveform["data"]) == 2 * waveform["length"]


async def test_tags_are_defaults_and_the_form_overrides_them(node: Any) -> None:
    _, dj = await user_headers(node)
    tagged = make_audio(
        "mp3",
        cover=True,
        extra=("-id3v2_version", "3", "-metadata", "title=Tagged Song", "-metadata",
               "artist=Tag Artist", "-metadata", "genre=Techno", "-metadata", "date=2021",
               "-metadata", "TBPM=126", "-metadata", "TKEY=F#m"),
    )  # fmt: skip
    from_tags = await ready_track(node, dj, tagged)
    assert (from_tags["title"], from_tags["artist"]) == ("Tagged Song", "Tag Artist")
    assert (from_tags["genre"], from_tags["year"], from_tags["bpm"], from_tags["key"]) == (
        "Techno",
        2021,
        126,
        "F#m",
    )
    # The embedded cover became the artwork.
    artwork = await fetch(node, from_tags["artwork_url"])
    assert artwork.startswith(b"\xff\xd8")
    overridden = await ready_track(node, dj, tagged, metadata={"title": "My Edit", "bpm": 130})
    assert (overridden["title"], overridden["artist"], overridden["bpm"]) == (
        "My Edit",
        "Tag Artist",
        130,
    )


async def test_uploaded_artwork_is_served(node: Any) -> None:
    _, dj = await user_headers(node)
    track = await ready_track(node, dj, make_audio("flac"), metadata=META, artwork=make_png())
    data = await fetch(node, track["artwork_url"])
    assert data.startswith(b"\xff\xd8")  # the PNG became a JPEG thumbnail
    plain = await ready_track(node, dj, make_audio("wav"), metadata=META)
    assert plain["artwork_url"] is None


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("png.mp3", None, "PNG image"),
        ("empty.mp3", b"", "empty"),
        ("notes.txt", b"just some text, not audio at all\n" * 40, "Unsupported file type"),
    ],
)
async def test_files_that_are_not_audio_are_refused(
    node: Any, name: str, data: bytes | None, message: str
) -> None:
    _, dj = await user_headers(node)
    body = make_png() if data is None else data
    response = await post_track(node, dj, body, metadata=META, filename=name)
    assert response.status == 400
    error = await response.json()
    assert error["code"] == 400 and message in error["error"], error
    assert (await node.get(f"{TRACKS}/{'0' * 8}-0000-0000-0000-{'0' * 12}")).status == 404


async def test_truncated_audio_is_refused(node: Any) -> None:
    _, dj = await user_headers(node)
    response = await post_track(node, dj, make_audio("mp3")[:3000], metadata=META)
    assert response.status == 400
    assert "truncated" in (await response.json())["error"]


async def test_limits_and_metadata_rules(node: Any) -> None:
    _, dj = await user_headers(node)
    low_rate = make_audio("wav", 2, rate=16_000)
    response = await post_track(node, dj, low_rate, metadata=META)
    assert response.status == 400
    assert "16000 Hz" in (await response.json())["error"]
    low_mp3 = make_audio("mp3", extra=("-b:a", "64k"))
    response = await post_track(node, dj, low_mp3, metadata=META)
    assert response.status == 400 and "64 kbps" in (await response.json())["error"]
    for bad, words in (
        ({**META, "bpm": 500}, "'bpm' must be at most 300"),
        ({**META, "key": "H"}, "'key'"),
        ({**META, "tags": [f"t{i}" for i in range(11)]}, "'tags'"),
        ({**META, "license": "GPL"}, "'license'"),
    ):
        response = await post_track(node, dj, make_audio("flac"), metadata=bad)
        assert response.status == 400
        assert words in (await response.json())["error"]
    response = await post_track(node, dj, None, metadata=META)
    assert response.status == 400 and "'audio'" in (await response.json())["error"]
    response = await post_track(node, dj, make_audio("flac"), metadata={**META, "title": "a\x00b"})
    assert response.status == 400 and "NUL" in (await response.json())["error"]
    response = await post_track(node, dj, make_audio("flac"), metadata="{not json")
    assert response.status == 400 and "JSON" in (await response.json())["error"]


async def test_huge_tag_is_fine(node: Any, tmp_path: Path) -> None:
    """A 3 MB ID3 tag (a scan of the sleeve in it) does not stop the track."""
    _, dj = await user_headers(node)
    path = tmp_path / "big.mp3"
    path.write_bytes(make_audio("mp3"))
    tags = ID3()
    tags.add(TPE1(encoding=3, text=["Big Tag"]))
    tags.add(APIC(encoding=3, mime="image/png", type=3, data=make_png() + bytes(3 << 20)))
    tags.save(path)
    track = await ready_track(node, dj, path.read_bytes(), metadata={"title": "Big"})
    assert track["artist"] == "Big Tag"
    assert track["duration_seconds"] == pytest.approx(10.0, abs=0.15)


async def test_size_limit_is_413(make_client: Any, database: str) -> None:
    node = await make_client(database_url=database, track_max_bytes=100_000)
    _, dj = await user_headers(node)
    response = await post_track(node, dj, make_audio("wav"), metadata=META)
    assert response.status == 413


async def test_private_tracks_and_permissions(node: Any) -> None:
    _, dj = await user_headers(node)
    _, other = await user_headers(node)
    _, admin = await user_headers(node, "admin")
    private = await ready_track(node, dj, make_audio("flac"), metadata={**META, "is_public": False})
    url = f"{TRACKS}/{private['track_id']}"
    assert private["visibility"] == "private"
    assert (await node.get(url)).status == 404
    assert (await node.get(url, headers=other)).status == 404
    assert (await node.get(url, headers=admin)).status == 200
    assert (await node.get(f"{url}/master.m3u8")).status == 404
    own = await node.get(f"{url}/master.m3u8", headers=dj)
    assert own.status == 200 and own.headers["Cache-Control"].startswith("private")
    assert "Authorization" in own.headers["Vary"]
    assert (await node.patch(url, json={"title": "x"}, headers=other)).status == 404
    # Public, then others read it but cannot change it.
    changed = await node.patch(url, json={"visibility": "unlisted", "bpm": 90}, headers=dj)
    assert changed.status == 200, await changed.text()
    assert (await changed.json())["bpm"] == 90
    renamed = await node.patch(url, json={"title": "Renamed"}, headers=dj)
    assert (await renamed.json())["title"] == "Renamed"
    upload = await (await node.get(f"/v1/uploads/audio/{private['track_id']}", headers=dj)).json()
    assert upload["title"] == "Renamed"  # what playlists show for it
    assert (await node.get(url)).status == 200
    assert (await node.patch(url, json={"title": "x"}, headers=other)).status == 403
    assert (await node.delete(url, headers=other)).status == 403
    bad = await node.patch(url, json={"bpm": 20}, headers=dj)
    assert bad.status == 400
    # The lossless file: the owner's, shown and served to them only.
    qualities = {r["quality"] for r in private["renditions"]}
    assert "lossless" in qualities
    public_view = await (await node.get(url)).json()
    assert "lossless" not in {r["quality"] for r in public_view["renditions"]}
    lossless = f"{url}/stream?quality=lossless"
    assert (await node.get(lossless)).status == 404
    assert (await node.get(lossless, headers=dj)).status == 200
    assert (await node.get(f"{TRACKS}/not-a-uuid")).status == 404


async def test_stream_ranges_and_play_counts(node: Any) -> None:
    _, dj = await user_headers(node)
    _, fan = await user_headers(node, "listener")
    track = await ready_track(node, dj, make_audio("m4a"), metadata=META)
    stream = track["renditions"][0]["file_url"]
    whole = await fetch(node, stream)
    path = "/" + stream.split("://", 1)[1].split("/", 1)[1]
    part = await node.get(path, headers={"Range": "bytes=100-1099"})
    assert part.status == 206 and await part.read() == whole[100:1100]
    assert part.headers["Content-Range"] == f"bytes 100-1099/{len(whole)}"
    etag = part.headers["ETag"]
    assert (await node.get(path, headers={"If-None-Match": etag})).status == 304
    assert (await node.get(path, headers={"Range": f"bytes={len(whole) + 5}-"})).status == 416
    missing = await node.get(f"{TRACKS}/{track['track_id']}/stream?quality=high&format=wav")
    assert missing.status == 404 and "medium/mp3" in (await missing.json())["error"]
    master = "/" + track["hls_master_url"].split("://", 1)[1].split("/", 1)[1]
    # libavformat's own HLS client plays the adaptive master playlist over HTTP.
    played = await asyncio.to_thread(decode_duration, str(node.make_url(master)))
    assert played == pytest.approx(10.0, abs=0.3)
    for _ in range(3):
        assert (await node.get(master, headers=fan)).status == 200
    after = await (await node.get(f"{TRACKS}/{track['track_id']}")).json()
    # The DJ's stream fetches (anonymous: the test client's address) and the fan: two.
    assert after["stats"]["plays"] == 2 and after["stats"]["unique_listeners"] == 2
    assert after["stats"]["by_day"][0]["plays"] == 2
    cache = (await node.get(master)).headers["Cache-Control"]
    assert cache.startswith("public")


async def test_a_track_plays_in_a_playlist_and_deleting_it_asks_first(node: Any) -> None:
    """A ready track is an upload: a playlist plays it (HLS and MP3 decoded), and deleting
    the track is refused while that playlist uses it, unless forced."""
    _, dj = await user_headers(node)
    track = await ready_track(node, dj, make_audio("flac"), metadata=META)
    playlist_id = await create_playlist(node, dj, [upload_track(track["track_id"])])
    assert (await wait_settled(node, dj, playlist_id))["hls_ready"]
    hls = str(node.make_url(f"/v1/playlists/{playlist_id}/stream.m3u8"))
    assert await asyncio.to_thread(decode_duration, hls) == pytest.approx(10.0, abs=0.3)
    mp3 = await fetch(node, str(node.make_url(f"/v1/playlists/{playlist_id}/stream.mp3")))
    assert await asyncio.to_thread(decode_duration, mp3) == pytest.approx(10.0, abs=0.3)
    url = f"{TRACKS}/{track['track_id']}"
    refused = await node.delete(url, headers=dj)
    assert refused.status == 409 and "playlist" in str(await refused.json())
    assert (await node.get(url)).status == 200  # nothing was deleted
    assert (await node.delete(f"{url}?force=true", headers=dj)).status == 204
    assert (await node.get(url, headers=dj)).status == 404
    assert (await node.get(f"{url}/master.m3u8", headers=dj)).status == 404
    gone = await node.get(f"/v1/uploads/audio/{track['track_id']}", headers=dj)
    assert gone.status == 404


async def test_related_tracks(node: Any) -> None:
    _, dj = await user_headers(node)
    first = await create_track(node, dj, make_audio("wav"), metadata=META)
    second = await ready_track(
        node, dj, make_audio("flac"), metadata={**META, "title": "Second Dream"}
    )
    await wait_track(node, dj, first["track_id"])
    detail = await (await node.get(f"{TRACKS}/{first['track_id']}")).json()
    assert [r["track_id"] for r in detail["related"]] == [second["track_id"]]


async def test_uploading_needs_a_verified_email_when_required(
    make_client: Any, database: str
) -> None:
    node = await make_client(database_url=database, require_verified_email=True)
    _, dj = await user_headers(node)
    refused = await post_track(node, dj, make_audio("flac"), metadata=META)
    assert refused.status == 403 and "Confirm your email" in (await refused.json())["error"]
    anonymous = await post_track(node, {}, make_audio("flac"), metadata=META)
    assert anonymous.status == 401


async def test_downloadable_opens_the_lossless_file_to_everyone(node: Any) -> None:
    _, dj = await user_headers(node)
    track = await ready_track(node, dj, make_audio("aiff"), metadata=META)
    url = f"{TRACKS}/{track['track_id']}"
    assert (await node.get(f"{url}/stream?quality=lossless")).status == 404
    changed = await node.patch(url, json={"is_downloadable": True}, headers=dj)
    assert changed.status == 200
    lossless = await node.get(f"{url}/stream?quality=lossless")
    assert lossless.status == 200
    decoded = await asyncio.to_thread(decode, bytes(await lossless.read()))
    assert decoded.duration == pytest.approx(10.0, abs=0.05)


async def test_a_cut_off_wav_is_the_audio_it_holds(node: Any) -> None:
    """The header announces 10 s, the file holds 5: the track (if not refused with the
    reason) says 5 s and its renditions decode to 5 s — never a track of the wrong length."""
    _, dj = await user_headers(node)
    wav = make_audio("wav")
    response = await post_track(node, dj, wav[: len(wav) // 2], metadata=META)
    if response.status == 400:
        assert "truncated" in (await response.json())["error"]
        return
    assert response.status == 201, await response.text()
    track = await wait_track(node, dj, (await response.json())["track_id"])
    if track["status"] == "failed":
        assert "truncated" in track["error_message"] and track["renditions"] == []
        return
    assert track["duration_seconds"] == pytest.approx(5.0, abs=0.1)
    for rendition in track["renditions"]:
        data = await fetch(node, rendition["file_url"], dj)
        decoded = await asyncio.to_thread(decode, data)
        assert decoded.duration == pytest.approx(5.0, abs=0.2)


async def test_audio_damaged_before_processing_fails_with_the_reason(
    make_client: Any, database: str
) -> None:
    """The job fails for good (no retries) and the owner reads why; nothing is served."""
    idle = await make_client(database_url=database, job_workers=0)
    _, dj = await user_headers(idle)
    created = await create_track(idle, dj, make_audio("flac"), metadata=META)
    folder = f"uploads/audio/{created['uploader_id']}/{created['track_id']}/"
    await idle.app[STORE].put_bytes(folder + "source", make_png())
    worker = await make_client(database_url=database)
    track = await wait_track(worker, dj, created["track_id"])
    assert track["status"] == "failed"
    assert track["error_message"].startswith("Processing error:"), track
    master = await worker.get(f"{TRACKS}/{created['track_id']}/master.m3u8", headers=dj)
    assert master.status == 409 and "could not be processed" in (await master.json())["error"]


async def test_malformed_forms_are_400(node: Any) -> None:
    user, dj = await user_headers(node)
    json_body = await node.post(TRACKS, json=META, headers=dj)
    assert json_body.status == 400 and "'audio'" in (await json_body.json())["error"]
    cut = b'--B\r\nContent-Disposition: form-data; name="audio"; filename="a.mp3"\r\n\r\nxx'
    headers = {**dj, "Content-Type": "multipart/form-data; boundary=B"}
    broken = await node.post(TRACKS, data=cut, headers=headers)
    assert broken.status == 400 and (await broken.json())["code"] == 400
    extra = await post_track(node, dj, make_audio("flac"), metadata=META, artwork=b"not an image")
    assert extra.status == 400 and "artwork" in (await extra.json())["error"]
    assert (await node.get("/v1/uploads/audio", headers=dj)).status == 200
    listed = await (await node.get("/v1/uploads/audio", headers=dj)).json()
    assert listed["total"] == 0  # nothing refused was kept
    kept = [info.key async for info in node.app[STORE].list(f"uploads/audio/{user['user_id']}/")]
    assert kept == []


async def test_a_queued_track_is_processed_by_another_node(make_client: Any, database: str) -> None:
    """The source is durable before 201 and the job lives in PostgreSQL: a node that never
    ran it (no workers, then gone) loses nothing; another node finishes the track."""
    idle = await make_client(database_url=database, job_workers=0)
    _, dj = await user_headers(idle)
    created = await create_track(idle, dj, make_audio("opus"), metadata=META)
    await idle.close()
    worker = await make_client(database_url=database)
    track = await wait_track(worker, dj, created["track_id"])
    assert track["status"] == "ready" and track["duration_seconds"] == pytest.approx(10, abs=0.15)
