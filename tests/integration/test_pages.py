"""The pages a person opens (issue 12) over HTTP, on a node relaying a real (fake) source:
what they show, how they escape what DJs type, their 404, and the headers each kind of
response carries — the pages' own CSP, none on media (a browser tab plays `live.mp3`),
`default-src 'none'` on the API, and an embed any site may frame."""

from __future__ import annotations

import io
import re
import uuid
from urllib.parse import urljoin, urlsplit

import pytest

from tests.accounts import user_headers
from tests.integration.test_dj_profiles import png
from tests.live import connected, eventually, register_stream
from tests.loopback import free_port
from tests.podcasts import create_podcast
from tests.sources import IcecastSource, fake_servers_fixture  # noqa: F401 - fake_servers

PAGE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "media-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
API_CSP = "default-src 'none'; frame-ancestors 'none'"
HOSTILE = "<script>alert('x')</script> \"Bad\" & <img src=x onerror=alert(1)>"


@pytest.fixture
async def node(make_client):
    return await make_client(hls_segment_seconds=2)


async def page(client, path, status=200):
    response = await client.get(path)
    text = await response.text()
    assert response.status == status, text
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    return response, text


async def live_station(node, fake_servers, **fields):
    source = await fake_servers(IcecastSource, title="Artist One - Opening")
    _, dj = await user_headers(node)
    stream_id = await register_stream(node, source, dj, **fields)
    await connected(node, stream_id, dj)
    return source, dj, stream_id


async def test_directory_lists_stations_on_air_with_their_titles(node, fake_servers):
    _, dj, stream_id = await live_station(node, fake_servers, description="Weekly")

    async def listed():
        _, text = await page(node, "/")
        return text if "Artist One - Opening" in text else None

    text = await eventually(listed)
    assert '<html lang="en">' in text and '<main id="main"' in text
    assert f'href="/stations/{stream_id}">Friday Night</a>' in text
    assert '<label for="genre">Genre</label>' in text and '<label for="q">Search</label>' in text
    assert '<option value="House">House</option>' in text
    assert '<script type="module" src="/assets/directory.js"></script>' in text

    # The filters: the empty choice of the form is "all"; others narrow the list.
    _, every = await page(node, "/?genre=&q=&utm_source=newsletter")
    assert stream_id in every
    _, house = await page(node, "/?genre=house&q=friday")
    assert stream_id in house and '<option value="House" selected>' not in house
    _, techno = await page(node, "/?genre=Techno")
    assert stream_id not in techno and "No station matches." in techno
    too_long = await node.get("/", params={"q": "x" * 101})
    assert too_long.status == 400
    assert (await too_long.json())["code"] == 400

    # Off air: an enabled stream with no source is not in the directory.
    await node.patch(f"/v1/streams/{stream_id}", json={"enabled": False}, headers=dj)
    _, after = await page(node, "/")
    assert stream_id not in after and "No station is on air right now." in after


async def test_a_station_page_has_a_player_history_and_its_dj(node, fake_servers):
    _, dj, stream_id = await live_station(node, fake_servers, description="Weekly house")
    profile = {"stage_name": "DJ Example", "bio": "Deep house from Lisbon."}
    assert (await node.put("/v1/users/me/profile", json=profile, headers=dj)).status == 200
    avatar = await node.put("/v1/users/me/profile/avatar", data=io.BytesIO(png(64, 64)), headers=dj)
    assert avatar.status == 200
    podcast_id = await create_podcast(node, dj, title="Night Shift Talks")

    async def shown():
        _, text = await page(node, f"/stations/{stream_id}")
        return text if '<ol id="history"' in text else None

    text = await eventually(shown)
    assert '<h1 class="name">Friday Night</h1>' in text
    assert '<p class="status" id="status">On air</p>' in text
    assert "Weekly house" in text and "Artist One - Opening" in text
    assert f'data-src="/v1/streams/{stream_id}/live.mp3"' in text
    assert '<button class="play" id="play" type="button">Play</button>' in text
    assert '<label for="hls-url">HLS link for apps</label>' in text
    assert re.search(rf'value="[^"]*/v1/streams/{stream_id}/live\.m3u8"', text)
    assert f'href="/v1/streams/{stream_id}/listen.m3u"' in text
    dj_id = (await (await node.get("/v1/users/me", headers=dj)).json())["user_id"]
    assert f'<a href="/v1/djs/{dj_id}">DJ Example</a>' in text
    assert f'src="/v1/djs/{dj_id}/avatar.jpg" alt=""' in text
    assert "Deep house from Lisbon." in text
    assert re.search(
        rf'<a href="[^"]*/v1/podcasts/{podcast_id}/rss\.xml">Night Shift Talks</a>', text
    )


async def test_hostile_text_is_shown_as_text(node, fake_servers):
    _, _, stream_id = await live_station(node, fake_servers, name=HOSTILE, genre=HOSTILE)
    for path in ("/", f"/stations/{stream_id}", f"/embed/{stream_id}"):

        async def escaped(path=path):
            _, text = await page(node, path)
            return text if "&lt;script&gt;" in text else None

        text = await eventually(escaped)
        assert "<script>alert" not in text and "<img src=x" not in text
        assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &quot;Bad&quot; &amp;" in text
        # The only scripts are the page's own module.
        assert re.findall(r"<script[^>]*>", text) in (
            [],
            [f'<script type="module" src="/assets/{name}.js">' for name in ("directory",)],
            ['<script type="module" src="/assets/station.js">'],
            ['<script type="module" src="/assets/embed.js">'],
        )


async def test_unknown_private_or_malformed_station_is_a_404_page(node, fake_servers):
    _, _, private = await live_station(node, fake_servers, visibility="private")
    for path in (
        f"/stations/{uuid.uuid4()}",
        "/stations/not-a-uuid",
        f"/stations/{private}",
        f"/embed/{uuid.uuid4()}",
    ):
        response, text = await page(node, path, 404)
        assert "<h1>No such station</h1>" in text and 'href="/"' in text
        assert response.headers["Content-Security-Policy"] == PAGE_CSP


async def test_an_offline_station_says_so(make_client):
    node = await make_client(ingest_port=free_port())
    _, dj = await user_headers(node)
    created = await node.post(
        "/v1/streams",
        json={"name": "Later Tonight", "source_type": "push", "genre": "Jazz"},
        headers=dj,
    )
    assert created.status == 201, await created.text()
    stream_id = (await created.json())["stream_id"]
    _, text = await page(node, f"/stations/{stream_id}")
    assert '<p class="status" id="status">Off air</p>' in text
    assert 'id="play" type="button" disabled>Play</button>' in text
    assert '<p class="offline" id="offline">This station is off air' in text
    _, embed = await page(node, f"/embed/{stream_id}")
    assert "disabled>Play</button>" in embed


async def test_a_paid_station_names_the_plans_and_keeps_the_audio_paywalled(node, fake_servers):
    _, dj, stream_id = await live_station(node, fake_servers, monetization_enabled=True)
    plan = {
        "name": "Friday Club",
        "price_cents": 500,
        "currency": "eur",
        "billing_interval": "monthly",
        "features": ["live_streams"],
    }
    created = await node.post("/v1/monetization/plans", json=plan, headers=dj)
    assert created.status == 201, await created.text()
    _, text = await page(node, f"/stations/{stream_id}")
    assert "Subscribers only." in text
    assert '<span class="plan">Friday Club</span>: 5.00 EUR per month' in text
    assert "/v1/monetization/plans?owner_id=" in text
    assert "live.mp3" not in text and 'id="play"' not in text
    assert (await node.get(f"/v1/streams/{stream_id}/live.mp3")).status in (401, 403)
    _, embed = await page(node, f"/embed/{stream_id}")
    assert "Subscribers only" in embed and "live.mp3" not in embed


async def test_each_kind_of_response_has_its_own_headers(node, fake_servers):
    _, dj, stream_id = await live_station(node, fake_servers)
    profile = {"stage_name": "DJ Example"}
    assert (await node.put("/v1/users/me/profile", json=profile, headers=dj)).status == 200
    avatar = await node.put("/v1/users/me/profile/avatar", data=io.BytesIO(png(32, 32)), headers=dj)
    avatar_path = "/v1/djs/" + (await avatar.json())["avatar_url"].split("/v1/djs/", 1)[1]

    for path in ("/", f"/stations/{stream_id}"):
        response, _ = await page(node, path)
        assert response.headers["Content-Security-Policy"] == PAGE_CSP
        assert response.headers["X-Frame-Options"] == "DENY"
        assert response.headers["X-Content-Type-Options"] == "nosniff"

    embed, _ = await page(node, f"/embed/{stream_id}")
    assert "frame-ancestors *" in embed.headers["Content-Security-Policy"]
    assert "X-Frame-Options" not in embed.headers
    assert "script-src 'self'" in embed.headers["Content-Security-Policy"]

    api = await node.get("/v1/streams")
    assert api.headers["Content-Security-Policy"] == API_CSP
    assert api.headers["X-Frame-Options"] == "DENY"

    mp3 = await node.get(f"/v1/streams/{stream_id}/live.mp3")
    assert mp3.status == 200 and mp3.headers["Content-Type"] == "audio/mpeg"
    assert await mp3.content.readexactly(4096)
    mp3.close()
    for path in (
        f"/v1/streams/{stream_id}/listen.m3u",
        f"/v1/streams/{stream_id}/listen.pls",
        avatar_path,
    ):
        response = await node.get(path)
        assert response.status == 200, path
        assert "Content-Security-Policy" not in response.headers, path
        assert "X-Frame-Options" not in response.headers, path
        assert response.headers["X-Content-Type-Options"] == "nosniff"

    async def playlist():
        response = await node.get(f"/v1/streams/{stream_id}/live.m3u8")
        return response if response.status == 200 else None

    hls = await eventually(playlist)
    assert "Content-Security-Policy" not in hls.headers
    segment = re.search(r"^[^#\s].*$", await hls.text(), re.M)
    assert segment is not None
    parts = urlsplit(urljoin(f"/v1/streams/{stream_id}/live.m3u8", segment.group(0)))
    ts = await node.get(f"{parts.path}?{parts.query}" if parts.query else parts.path)
    assert ts.status == 200 and "Content-Security-Policy" not in ts.headers


async def test_the_pages_assets_are_served_from_the_package(node):
    for name, kind in (
        ("pages.css", "text/css"),
        ("directory.js", "text/javascript"),
        ("station.js", "text/javascript"),
        ("embed.js", "text/javascript"),
        ("live.js", "text/javascript"),
        ("player.js", "text/javascript"),
    ):
        response = await node.get(f"/assets/{name}")
        assert response.status == 200, name
        assert response.headers["Content-Type"].startswith(kind), name
        assert len(await response.read()) > 100
    for name in ("nope.js", "..%2Froutes.py", "__init__.py"):
        response = await node.get(f"/assets/{name}")
        assert response.status == 404
        assert (await response.json())["error"] == "No such page asset"
