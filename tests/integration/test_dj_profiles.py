"""Issue 14: DJ public profiles (stage name, bio, genres, links, avatar) and the public DJ
page with what the DJ offers."""

from __future__ import annotations

import fractions
import io

import av

from tests.accounts import bearer, make_admin, user_headers
from tests.podcasts import create_podcast
from tests.sources import IcecastSource
from tests.streams import fresh_database, register_stream, start_node

PROFILE = {
    "stage_name": "DJ Example",
    "bio": "Deep house from Lisbon.\nEvery Friday <b>night</b>.",
    "genres": ["house", "techno"],
    "links": [{"label": "SoundCloud", "url": "https://soundcloud.com/dj-example"}],
}


def png(width: int, height: int) -> bytes:
    codec = av.CodecContext.create("png", "w")
    codec.width, codec.height, codec.pix_fmt = width, height, "rgb24"
    codec.time_base = fractions.Fraction(1, 1)
    frame = av.VideoFrame(width, height, "rgb24")
    return b"".join(bytes(p) for p in codec.encode(frame) + codec.encode(None))


def image_size(jpeg: bytes) -> tuple[int, int]:
    import io

    with av.open(io.BytesIO(jpeg), mode="r") as container:
        frame = next(container.decode(video=0))
        assert container.format.name == "jpeg_pipe"
    return frame.width, frame.height


async def test_a_dj_profile_on_the_public_dj_page(
    make_client, make_settings, test_secrets, make_database, fake_servers
):
    node = await start_node(
        make_client, make_settings, test_secrets, await fresh_database(make_database)
    )
    client = node.client
    dj, headers = await user_headers(client)
    page = f"/v1/djs/{dj['user_id']}"
    assert (await client.get(page)).status == 404  # no profile yet

    put = await client.put("/v1/users/me/profile", json=PROFILE, headers=headers)
    assert put.status == 200, await put.text()
    source = await fake_servers(IcecastSource)
    on_air = await register_stream(client, headers, source, name="Friday Night")
    await register_stream(client, headers, source, visibility="private")
    podcast = await create_podcast(client, headers)

    avatar = await client.put(
        "/v1/users/me/profile/avatar", data=io.BytesIO(png(1200, 800)), headers=headers
    )
    assert avatar.status == 200, await avatar.text()
    avatar_url = (await avatar.json())["avatar_url"]

    body = await (await client.get(page)).json()  # anonymous: public
    assert body["stage_name"] == "DJ Example" and body["genres"] == ["house", "techno"]
    assert body["bio"] == PROFILE["bio"]  # plain text, as written; clients show it as text
    assert body["links"] == PROFILE["links"]
    assert [s["stream_id"] for s in body["streams"]] == [on_air]  # not the private one
    assert [p["podcast_id"] for p in body["podcasts"]] == [podcast]
    assert body["podcasts"][0]["feed_url"].endswith(f"/v1/podcasts/{podcast}/rss.xml")
    assert body["avatar_url"] == avatar_url

    image = await client.get(avatar_url.split("radio.example.com", 1)[1])
    assert image.status == 200 and image.content_type == "image/jpeg"
    assert image_size(await image.read()) == (512, 341)  # fits 512×512, aspect kept
    cached = await client.get(
        avatar_url.split("radio.example.com", 1)[1],
        headers={"If-None-Match": image.headers["ETag"]},
    )
    assert cached.status == 304


async def test_profile_rules(make_client):
    client = await make_client()
    _, dj = await user_headers(client)
    _, listener = await user_headers(client, "listener")
    assert (await client.put("/v1/users/me/profile", json=PROFILE, headers=listener)).status == 403
    bad_link = {**PROFILE, "links": [{"label": "x", "url": "javascript:alert(1)"}]}
    refused = await client.put("/v1/users/me/profile", json=bad_link, headers=dj)
    assert refused.status == 400 and "http" in (await refused.json())["error"]
    long_bio = {**PROFILE, "bio": "x" * 2001}
    assert (await client.put("/v1/users/me/profile", json=long_bio, headers=dj)).status == 400
    # The avatar needs a profile, and an image.
    early = await client.put("/v1/users/me/profile/avatar", data=png(10, 10), headers=dj)
    assert early.status == 404
    await client.put("/v1/users/me/profile", json=PROFILE, headers=dj)
    junk = await client.put("/v1/users/me/profile/avatar", data=b"<svg/>" * 10, headers=dj)
    assert junk.status == 400 and "PNG, JPEG or WebP" in (await junk.json())["error"]


async def test_a_disabled_or_deleted_dj_has_no_public_page(make_client):
    client = await make_client()
    admin = await make_admin(client)
    dj, headers = await user_headers(client)
    await client.put("/v1/users/me/profile", json=PROFILE, headers=headers)
    page = f"/v1/djs/{dj['user_id']}"
    assert (await client.get(page)).status == 200
    patch = {"status": "disabled"}
    await client.patch(f"/v1/users/{dj['user_id']}", json=patch, headers=bearer(admin))
    assert (await client.get(page)).status == 404
    await client.delete(f"/v1/users/{dj['user_id']}", headers=bearer(admin))
    assert (await client.get(page)).status == 404
